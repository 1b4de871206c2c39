package sgsclient_test

import (
	"testing"

	"github.com/starbus/starbus/internal/depstest"
)

// TestLinksNoServer: the client links nothing of the server (no
// nats-server, no NATS client, no edge, no state), nor the Starbus
// protocol's codec: it is written from SimpleSgsProtocol's.
func TestLinksNoServer(t *testing.T) {
	for _, dep := range depstest.Deps(t) {
		if depstest.Server(dep) || dep == "github.com/starbus/starbus/edge/wire" {
			t.Errorf("sgsclient links %s", dep)
		}
	}
}
