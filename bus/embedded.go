package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures an in-process NATS server with JetStream.
type EmbeddedConfig struct {
	// Dir is the JetStream store directory. Required: Starbus state is
	// durable, so the embedded server always stores to files.
	Dir string
	// Host and Port are the client listener. Port 0 picks the default 4222;
	// -1 picks a random free port (tests). Host defaults to 127.0.0.1.
	Host string
	Port int
	// ServerName names the server (defaults to "starbus").
	ServerName string
	// MaxStore and MaxMemory bound JetStream's storage (0: server default).
	MaxStore  int64
	MaxMemory int64
	// StartTimeout bounds how long Start waits for the server to accept
	// connections (default 10s).
	StartTimeout time.Duration
}

// Server is an embedded NATS server with JetStream enabled.
type Server struct {
	ns *server.Server
}

// ErrServerStart reports that the embedded server did not become ready.
var ErrServerStart = errors.New("bus: embedded server did not start")

// StartEmbedded starts an in-process NATS server and waits until it accepts
// connections. It installs no signal handlers and logs nothing.
func StartEmbedded(cfg EmbeddedConfig) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("bus: embedded server: Dir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "starbus"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName:         cfg.ServerName,
		Host:               cfg.Host,
		Port:               cfg.Port,
		JetStream:          true,
		StoreDir:           cfg.Dir,
		JetStreamMaxStore:  cfg.MaxStore,
		JetStreamMaxMemory: cfg.MaxMemory,
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         8 << 20,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(cfg.StartTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, ErrServerStart
	}
	return &Server{ns: ns}, nil
}

// ClientURL returns the URL other processes connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Connect opens an in-process connection (no TCP) to the server.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.ns), nats.MaxReconnects(-1)}, opts...)
	return nats.Connect("", opts...)
}

// NATS returns the underlying server, for tests that need to reach inside.
func (s *Server) NATS() *server.Server { return s.ns }

// Shutdown stops the server and waits for its goroutines to end.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
