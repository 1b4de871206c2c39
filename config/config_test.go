package config_test

import (
	"encoding/json"
	"errors"
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
	for field, mutate := range map[string]func(*config.Config){
		"world":                func(c *config.Config) { c.World = "a.b" },
		"nats.url":             func(c *config.Config) { c.NATS.URL = "" },
		"nats.port":            func(c *config.Config) { c.NATS.Port = 70000 },
		"nats.replicas":        func(c *config.Config) { c.NATS.Replicas = 2 },
		"edge.listen":          func(c *config.Config) { c.Edge.Listen = "nowhere" },
		"edge.max_frame":       func(c *config.Config) { c.Edge.MaxFrame = 1 },
		"edge.rate_per_second": func(c *config.Config) { c.Edge.RatePerSecond = 0 },
		"edge.burst":           func(c *config.Config) { c.Edge.Burst = 10 },
		"edge.write_timeout":   func(c *config.Config) { c.Edge.WriteTimeout = -1 },
		"worker.task_timeout":  func(c *config.Config) { c.Worker.TaskTimeout = 0 },
		"worker.member":        func(c *config.Config) { c.Worker.Member = "a b" },
		"worker.lease":         func(c *config.Config) { c.Worker.Lease = config.Duration(time.Millisecond) },
		"worker.game":          func(c *config.Config) { c.Worker.Game = "chess" },
		"http":                 func(c *config.Config) { c.HTTP = "8080" },
		"pprof":                func(c *config.Config) { c.Pprof = "localhost" },
		"log_level":            func(c *config.Config) { c.LogLevel = "loud" },
	} {
		c := config.Default()
		mutate(&c)
		err := c.Validate()
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), field+":") {
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
