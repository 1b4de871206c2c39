package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	// Cluster, if set, joins the server to a JetStream cluster.
	Cluster *ClusterConfig
	// SyncAlways makes the server fsync every write before acknowledging
	// it, so that an acknowledged commit survives a power loss on a single
	// server; atomic batches are then staged on disk too (see
	// [Server.StageInMemory]). By default the server fsyncs every two
	// minutes, and an acknowledged commit survives the death of any
	// process, not the machine's.
	SyncAlways bool
	// Users, if any, are the only identities the server accepts, each
	// allowed what its role needs in its world ([World.Permissions]); one
	// of them must be an admin, whose credentials [Server.Connect] uses.
	// None: the server accepts every connection and allows it everything
	// (a dev box on loopback).
	Users []User
	// TLS, if set, makes the client listener speak TLS only (it must
	// hold the server's certificate); clients then connect with
	// nats.Secure or nats.RootCAs. In-process connections are not
	// affected.
	TLS *tls.Config
}

// User is an identity of an embedded server: a name and password, and the
// role it plays in a world.
type User struct {
	Name, Password string
	Role           Role
	World          World // not needed for RoleAdmin
}

// ClusterConfig makes an embedded server one node of a JetStream cluster.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every node.
	Name string
	// Host and Port are this node's route listener (Port -1: random).
	Host string
	Port int
	// Routes are the route URLs of the other nodes, e.g.
	// "nats://127.0.0.1:6222".
	Routes []string
}

// Server is an embedded NATS server with JetStream enabled.
type Server struct {
	ns         *server.Server
	syncAlways bool
	admin      *User // the credentials of in-process connections, if users are configured

	mu     sync.Mutex
	staged []string // tmpfs staging directories, removed at Shutdown
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
		SyncAlways:         cfg.SyncAlways,
	}
	if c := cfg.Cluster; c != nil {
		if c.Host == "" {
			c.Host = cfg.Host
		}
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: c.Host, Port: c.Port}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("bus: embedded server: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if cfg.TLS != nil {
		opts.TLS, opts.TLSConfig = true, cfg.TLS
		opts.TLSTimeout = 2 // seconds, the server's default
	}
	var admin *User
	for _, u := range cfg.Users {
		if u.Role == RoleAdmin && admin == nil {
			admin = &u
		}
		if u.Name == "" || u.Password == "" {
			return nil, fmt.Errorf("bus: embedded server: user %q of role %s needs a name and a password", u.Name, u.Role)
		}
		if u.Role != RoleAdmin && u.World.Name() == "" {
			return nil, fmt.Errorf("bus: embedded server: user %q of role %s needs a world", u.Name, u.Role)
		}
		perms, err := u.World.Permissions(u.Role)
		if err != nil {
			return nil, fmt.Errorf("bus: embedded server: user %q: %w", u.Name, err)
		}
		opts.Users = append(opts.Users, &server.User{Username: u.Name, Password: u.Password, Permissions: perms})
	}
	if len(cfg.Users) > 0 && admin == nil {
		return nil, errors.New("bus: embedded server: users need an admin among them, for the server's own connections")
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
	return &Server{ns: ns, syncAlways: cfg.SyncAlways, admin: admin}, nil
}

// JetStreamReady waits until JetStream answers requests on this server: on
// a cluster, once enough nodes are up to elect a meta leader.
func (s *Server) JetStreamReady(ctx context.Context) error {
	nc, err := s.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bus: JetStream not ready: %w", errors.Join(err, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ClientURL returns the URL other processes connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Connect opens an in-process connection (no TCP) to the server, as its
// admin user when it has users (opts may say otherwise).
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{nats.InProcessServer(s.ns), nats.MaxReconnects(-1), nats.SyncQueueLen(syncQueueLen)}
	if s.admin != nil {
		base = append(base, nats.UserInfo(s.admin.Name, s.admin.Password), nats.CustomInboxPrefix(RoleAdmin.InboxPrefix()))
	}
	opts = append(base, opts...)
	return nats.Connect("", opts...)
}

// ClusterURL returns the route URL other cluster nodes connect to, or ""
// when the server is not clustered.
func (s *Server) ClusterURL() string {
	addr := s.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats://" + addr.String()
}

// NATS returns the underlying server, for tests that need to reach inside.
func (s *Server) NATS() *server.Server { return s.ns }

// Shutdown stops the server and waits for its goroutines to end.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	// Every batch is done: what the staging directories hold is empty
	// directories of batches the server removed.
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dir := range s.staged {
		_ = os.RemoveAll(dir)
	}
	s.staged = nil
}
