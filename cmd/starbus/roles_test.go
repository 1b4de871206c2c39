package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/starbus/starbus/config"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/internal/tlstest"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeConfig writes a config file holding only what edit sets.
func writeConfig(t *testing.T, dir, name string, edit func(*config.Config)) string {
	t.Helper()
	var c config.Config
	edit(&c)
	// Only the fields set: the rest keeps the defaults when read over them.
	b, err := json.Marshal(map[string]any{"world": c.World, "nats": map[string]any{
		"user": c.NATS.User, "password_file": c.NATS.PasswordFile, "role": c.NATS.Role, "ca_file": c.NATS.CAFile,
		"users": c.NATS.Users, "tls_cert": c.NATS.TLSCert, "tls_key": c.NATS.TLSKey,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, string(b))
}

// TestNATSRolesAndTLS is #12's acceptance 7 end to end: `starbus nats`
// with users and TLS from its config file; `starbus worker` and `starbus
// edge` connect over TLS as their roles, with passwords from files, and a
// client plays through them; an edge with a wrong password does not get
// in, nor one that does not trust the server's certificate.
func TestNATSRolesAndTLS(t *testing.T) {
	dir := t.TempDir()
	cert := tlstest.New(t)
	pw := map[string]string{}
	var users []config.NATSUser
	for _, role := range []string{"admin", "worker", "edge"} {
		pw[role] = writeFile(t, dir, role+".pw", role+"-secret\n")
		users = append(users, config.NATSUser{Name: role + "1", Role: role, PasswordFile: pw[role]})
	}
	serverCfg := writeConfig(t, dir, "nats.json", func(c *config.Config) {
		c.World, c.NATS.Users, c.NATS.TLSCert, c.NATS.TLSKey = "guarded", users, cert.CertFile, cert.KeyFile
	})
	client := func(role string) string {
		return writeConfig(t, dir, role+".json", func(c *config.Config) {
			c.World, c.NATS.User, c.NATS.PasswordFile, c.NATS.CAFile = "guarded", role+"1", pw[role], cert.CertFile
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var natsOut, logs syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	done := make(chan error, 3)
	go func() {
		done <- run(ctx, []string{"nats", "-data", t.TempDir(), "-port", "-1", "-config", serverCfg}, nil, &natsOut, &logs)
	}()
	var url string
	natstest.Eventually(t, 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("nats: %v\n%s", err, logs.String())
		default:
		}
		m := regexp.MustCompile(`clients ((?:nats|tls)://127\.0\.0\.1:\d+)`).FindStringSubmatch(natsOut.String())
		if m != nil && strings.Contains(natsOut.String(), "ready") {
			url = m[1]
		}
		return url != ""
	}, "nats ready:\n%s\n%s", natsOut.String(), logs.String())

	var edgeOut syncBuffer
	go func() {
		done <- run(ctx, []string{"worker", "-config", client("worker"), "-nats", url, "-log", "warn"}, nil, io.Discard, &logs)
	}()
	go func() {
		done <- run(ctx, []string{"edge", "-config", client("edge"), "-nats", url, "-listen", "127.0.0.1:0", "-log", "info"}, nil, &edgeOut, &logs)
	}()
	var addr string
	natstest.Eventually(t, 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("nats, worker or edge: %v\n%s", err, logs.String())
		default:
		}
		if m := regexp.MustCompile(`edge (127\.0\.0\.1:\d+)`).FindStringSubmatch(edgeOut.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	}, "edge ready:\n%s", logs.String())
	playClient(ctx, t, &logs, "inv", `"t":"inv"`, "-addr", addr, "-name", "ann")

	// A wrong password, and a CA that is not the server's, keep an edge out.
	wrong := writeFile(t, dir, "wrong.pw", "guess\n")
	bad := writeConfig(t, dir, "bad.json", func(c *config.Config) {
		c.World, c.NATS.User, c.NATS.PasswordFile, c.NATS.CAFile = "guarded", "edge1", wrong, cert.CertFile
	})
	other := tlstest.New(t)
	untrusting := writeConfig(t, dir, "untrusting.json", func(c *config.Config) {
		c.World, c.NATS.User, c.NATS.PasswordFile, c.NATS.CAFile = "guarded", "edge1", pw["edge"], other.CertFile
	})
	for _, cfg := range []string{bad, untrusting} {
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		err := run(rctx, []string{"edge", "-config", cfg, "-nats", url, "-listen", "127.0.0.1:0", "-log", "error"}, nil, io.Discard, io.Discard)
		timedOut := rctx.Err() != nil
		rcancel()
		if err == nil || timedOut {
			t.Errorf("an edge with %s: %v, want a refusal", filepath.Base(cfg), err)
		}
	}
	cancel()
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
