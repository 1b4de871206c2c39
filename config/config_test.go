package config_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/starbus/starbus/config"
)

func TestDefaultIsValid(t *testing.T) {
	if err := config.Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "edge.pem")
	if err := os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for field, mutate := range map[string]func(*config.Config){
		"world":                    func(c *config.Config) { c.World = "a.b" },
		"nats.url":                 func(c *config.Config) { c.NATS.URL = "" },
		"nats.port":                func(c *config.Config) { c.NATS.Port = 70000 },
		"nats.replicas":            func(c *config.Config) { c.NATS.Replicas = 2 },
		"edge.listen":              func(c *config.Config) { c.Edge.Listen = "nowhere" },
		"edge.websocket":           func(c *config.Config) { c.Edge.WebSocket = "7422" },
		"edge.websocket_origins":   func(c *config.Config) { c.Edge.WebSocketOrigins = []string{"[bad"} },
		"edge.sgs":                 func(c *config.Config) { c.Edge.SGS = "62964" },
		"edge.sgs_advertise":       func(c *config.Config) { c.Edge.SGSAdvertise = "host" },
		"edge.sgs_max_sessions":    func(c *config.Config) { c.Edge.SGSMaxSessions = -1 },
		"edge.tls_key":             func(c *config.Config) { c.Edge.TLSCert = pem },
		"edge.tls_cert":            func(c *config.Config) { c.Edge.TLSKey = pem },
		"edge.tls_cert unreadable": func(c *config.Config) { c.Edge.TLSCert, c.Edge.TLSKey = missing, pem },
		"edge.max_frame":           func(c *config.Config) { c.Edge.MaxFrame = 1 },
		"edge.rate_per_second":     func(c *config.Config) { c.Edge.RatePerSecond = 0 },
		"edge.burst":               func(c *config.Config) { c.Edge.Burst = 10 },
		"edge.write_timeout":       func(c *config.Config) { c.Edge.WriteTimeout = -1 },
		"edge.fanout_delay":        func(c *config.Config) { c.Edge.FanoutDelay = config.Duration(2 * time.Second) },
		"edge.area_delay":          func(c *config.Config) { c.Edge.AreaDelay = config.Duration(2 * time.Second) },
		"worker.task_timeout":      func(c *config.Config) { c.Worker.TaskTimeout = 0 },
		"worker.member":            func(c *config.Config) { c.Worker.Member = "a b" },
		"worker.lease":             func(c *config.Config) { c.Worker.Lease = config.Duration(time.Millisecond) },
		"worker.game":              func(c *config.Config) { c.Worker.Game = "chess" },
		"worker.compact_interval":  func(c *config.Config) { c.Worker.CompactInterval = config.Duration(time.Second) },
		"http":                     func(c *config.Config) { c.HTTP = "8080" },
		"pprof":                    func(c *config.Config) { c.Pprof = "localhost" },
		"log_level":                func(c *config.Config) { c.LogLevel = "loud" },
	} {
		c := config.Default()
		mutate(&c)
		err := c.Validate()
		// A key is the field's path, then, if need be, what is wrong.
		if name, _, _ := strings.Cut(field, " "); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), name+":") {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func TestAddresses(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9090": true, ":9090": true, "[::1]:0": true, "localhost:65535": true,
		"9090": false, "127.0.0.1:": false, "127.0.0.1:http": false, "127.0.0.1:65536": false, "127.0.0.1:-1": false,
	} {
		c := config.Default()
		c.HTTP = addr
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("http %q: %v", addr, err)
		}
	}
}

func TestJSON(t *testing.T) {
	c := config.Default()
	if err := json.Unmarshal([]byte(`{"world":"w2","edge":{"login_timeout":"250ms"}}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.World != "w2" || c.Edge.LoginTimeout.D() != 250*time.Millisecond || c.Edge.RatePerSecond != 50 {
		t.Fatalf("decoded %+v", c)
	}
	if err := json.Unmarshal([]byte(`{"edge":{"login_timeout":10}}`), &c); err == nil {
		t.Fatal("a number accepted as a duration")
	}
}

// TestTLSFiles: a readable pair is valid (Validate does not parse it; the
// command that loads it does).
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	c := config.Default()
	c.Edge.TLSCert, c.Edge.TLSKey = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []string{c.Edge.TLSCert, c.Edge.TLSKey} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.Edge.WebSocket = "127.0.0.1:7422"
	c.Edge.WebSocketOrigins = []string{"*.example.com", "https://example.com"}
	c.Edge.SGS, c.Edge.SGSAdvertise, c.Edge.SGSMaxSessions = "127.0.0.1:62964", "edge1.example.com:62964", 5000
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
