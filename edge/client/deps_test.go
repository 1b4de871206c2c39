package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientLinksNoServer is #12's acceptance 2: a player's client links
// no part of the server: no nats-server, no NATS client, no JetStream, no
// state, no password hashing.
func TestClientLinksNoServer(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		server := dep == "github.com/starbus/starbus/edge"
		for _, prefix := range []string{"github.com/nats-io/", "github.com/starbus/starbus/kv", "github.com/starbus/starbus/bus", "golang.org/x/crypto/argon2"} {
			server = server || strings.HasPrefix(dep, prefix)
		}
		if server {
			t.Errorf("edge/client links %s", dep)
		}
	}
}
