package bus_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/internal/tlstest"
)

// TestEmbeddedTLS is #12's acceptance 7 (TLS to NATS): an embedded server
// with a certificate accepts TLS clients that trust it, as the role they
// authenticate as, and refuses plain-text ones and ones that do not trust
// it.
func TestEmbeddedTLS(t *testing.T) {
	cert := tlstest.New(t)
	w, _ := bus.NewWorld("tls")
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: t.TempDir(), Port: -1, TLS: cert.Server,
		Users: []bus.User{{Name: "admin", Password: "apw", Role: bus.RoleAdmin}, {Name: "worker", Password: "pw", Role: bus.RoleWorker, World: w}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	url := strings.Replace(srv.ClientURL(), "nats://", "tls://", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := bus.Dial(ctx, url, "tls test", nats.Secure(cert.Client), nats.UserInfo("worker", "pw"))
	if err != nil {
		t.Fatalf("TLS client that trusts the server: %v", err)
	}
	defer nc.Close()
	if !nc.TLSRequired() {
		t.Fatal("the connection is not TLS")
	}
	if _, err := nats.Connect(srv.ClientURL(), nats.UserInfo("worker", "pw"), nats.NoReconnect()); err == nil {
		t.Fatal("a plain-text client got in")
	}
	if _, err := nats.Connect(url, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}), nats.UserInfo("worker", "pw"), nats.NoReconnect()); err == nil {
		t.Fatal("a client that does not trust the certificate got in")
	}
}
