// Package depstest tells a test what its package links, for the tests
// that keep clients free of the server (edge/client, edge/sgs/sgsclient).
package depstest

import (
	"os/exec"
	"strings"
	"testing"
)

// Deps returns the import paths the package in the test's directory
// depends on, itself included (go list -deps), or fails the test.
func Deps(tb testing.TB) []string {
	tb.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("no go command on PATH: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		tb.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// Server reports whether dep is a part of the server a client must not
// link: the edge, NATS (client or server), the world's state and
// subjects.
func Server(dep string) bool {
	if dep == "github.com/starbus/starbus/edge" {
		return true
	}
	for _, prefix := range []string{"github.com/nats-io/", "github.com/starbus/starbus/kv", "github.com/starbus/starbus/bus"} {
		if strings.HasPrefix(dep, prefix) {
			return true
		}
	}
	return false
}
