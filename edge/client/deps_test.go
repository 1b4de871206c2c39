package client_test

import (
	"strings"
	"testing"

	"github.com/starbus/starbus/internal/depstest"
)

// TestClientLinksNoServer is #12's acceptance 2: a player's client links
// no part of the server: no nats-server, no NATS client, no JetStream, no
// state, no password hashing.
func TestClientLinksNoServer(t *testing.T) {
	for _, dep := range depstest.Deps(t) {
		if depstest.Server(dep) || strings.HasPrefix(dep, "golang.org/x/crypto/argon2") {
			t.Errorf("edge/client links %s", dep)
		}
	}
}
