package sgsclient_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoServer: the client links nothing of the server: no
// nats-server, no NATS client, no edge, no state.
func TestLinksNoServer(t *testing.T) {
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
		for _, prefix := range []string{"github.com/nats-io/", "github.com/starbus/starbus/kv", "github.com/starbus/starbus/bus", "github.com/starbus/starbus/edge/wire"} {
			server = server || strings.HasPrefix(dep, prefix)
		}
		if server {
			t.Errorf("sgsclient links %s", dep)
		}
	}
}
