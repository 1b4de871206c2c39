package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/config"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/examples/gridworld/livemap"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/bank"
	"github.com/starbus/starbus/kv"
	"github.com/starbus/starbus/metrics"
)

// errUsage reports a command line that could not be parsed; the message
// has already been printed.
var errUsage = errors.New("usage")

const usage = `usage: starbus <command> [flags]

commands:
  dev      a whole world on this machine: embedded NATS (files under -data),
           the worker runtime with the reference game (examples/gridworld),
           an edge for clients, and the live map, a page to play it in a
           browser (/play) and /metrics on -http, which also serves the
           edge's WebSocket at /ws; -sgs serves Darkstar clients
  edge     an edge against an external NATS (-nats); -websocket serves
           WebSocket too, -tls-cert and -tls-key TLS on both; /metrics on -http;
           -sgs serves Darkstar clients (SimpleSgsProtocol), relocated to
           other edges when it stops
  worker   a worker running the reference game (or -game bank) against an
           external NATS (-nats); start several to share the world's events;
           /metrics on -http
  nats     one node of a NATS JetStream cluster (-data, -port, -cluster, -routes);
           scripts/cluster starts three on loopback
  client   an interactive terminal client for an edge (-addr or -ws, -name)
  bots     simulated players that load a world and report (-players, -duration)
  info     a world's stream as JSON: its size, its messages by kind, ended
           sessions' outboxes, expiring or orphaned (-nats, -world)

Run 'starbus <command> -h' for its flags. Every flag can also be set in a
JSON config file (-config) or the environment (STARBUS_WORLD, STARBUS_NATS,
STARBUS_DATA, STARBUS_LISTEN, STARBUS_WEBSOCKET, STARBUS_HTTP); flags win over the
environment, which wins over the file.

NATS credentials and TLS are never flags: the config file's nats.users (the
users "starbus dev" and "starbus nats" accept, each with a role: edge, worker
or admin, and a password file), nats.tls_cert and nats.tls_key (their TLS);
nats.user, nats.password_file (or STARBUS_NATS_USER and STARBUS_NATS_PASSWORD)
and nats.ca_file for the processes that connect to them.
`

// run is the whole program; main only wires signals and exit codes.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "dev", "edge", "worker":
		cfg, err := loadConfig(cmd, args, stderr)
		if err != nil {
			return err
		}
		log := newLogger(stderr, cfg.LogLevel)
		stop, err := startPprof(cfg.Pprof, stderr)
		if err != nil {
			return err
		}
		defer stop()
		switch cmd {
		case "dev":
			return runDev(ctx, cfg, stdout, log)
		case "edge":
			return runEdge(ctx, cfg, stdout, log)
		default:
			return runWorker(ctx, cfg, stdout, log)
		}
	case "client":
		return runClient(ctx, args, stdin, stdout, stderr)
	case "bots":
		return runBots(ctx, args, stdout, stderr)
	case "nats":
		return runNATS(ctx, args, stdout, stderr)
	case "info":
		return runInfo(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "starbus: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

// readConfigFile reads the JSON config file over cfg.
func readConfigFile(file string, cfg config.Config) (config.Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return cfg, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", file, err)
	}
	return cfg, nil
}

// loadConfig builds the configuration: defaults, then the file, then the
// environment, then flags; and validates it.
func loadConfig(cmd string, args []string, stderr io.Writer) (config.Config, error) {
	cfg := config.Default()
	httpHelp := "address of the live map and /metrics (default " + cfg.HTTP + `; "off" for none)`
	if cmd != "dev" {
		// An edge's or a worker's HTTP server is asked for, not assumed.
		cfg.HTTP = ""
		httpHelp = "serve /metrics and /healthz on this address, e.g. 127.0.0.1:9090 (default: none)"
	}
	fs := flag.NewFlagSet("starbus "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "JSON config file")
	world := fs.String("world", "", "world name (default "+cfg.World+")")
	natsURL := fs.String("nats", "", "NATS URL(s) of an external cluster (edge, worker)")
	data := fs.String("data", "", "data directory of the embedded NATS server (dev; default "+cfg.NATS.DataDir+")")
	natsPort := fs.Int("nats-port", 0, "client port of the embedded NATS server (dev; default: a free port)")
	listen := fs.String("listen", "", "TCP address of the edge (default "+cfg.Edge.Listen+")")
	wsAddr := fs.String("websocket", "", "address of the edge's WebSocket listener, at /ws (default none)")
	sgsAddr := fs.String("sgs", "", "address of the edge's SimpleSgs listener, for Darkstar clients (edge, dev; default none)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate of the edge's listeners: TLS over TCP, wss (and https for dev's -http)")
	tlsKey := fs.String("tls-key", "", "PEM key of -tls-cert")
	httpAddr := fs.String("http", "", httpHelp)
	logLevel := fs.String("log", "", "log level: debug, info, warn, error")
	replicas := fs.Int("replicas", 0, "replicas of the world's stream: 1, or 3 on a cluster (default 1)")
	syncAlways := fs.Bool("sync-always", false, "fsync every commit before acknowledging it (dev): survives power loss, slower")
	member := fs.String("member", "", "the worker's name in the world's worker group (worker; default: a random name)")
	lease := fs.Duration("lease", 0, "how long a silent worker keeps its partitions (worker; default "+cfg.Worker.Lease.D().String()+")")
	game := fs.String("game", "", "the game a worker runs: gridworld or bank (worker; default "+cfg.Worker.Game+")")
	stats := fs.Duration("stats", 0, "print the worker's counters on stdout at this interval (worker)")
	pprofAddr := pprofFlag(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, errUsage
		}
		return cfg, errUsage
	}
	if *file != "" {
		var err error
		if cfg, err = readConfigFile(*file, cfg); err != nil {
			return cfg, err
		}
	}
	for env, dst := range map[string]*string{
		"STARBUS_WORLD": &cfg.World, "STARBUS_NATS": &cfg.NATS.URL, "STARBUS_NATS_USER": &cfg.NATS.User,
		"STARBUS_DATA": &cfg.NATS.DataDir, "STARBUS_LISTEN": &cfg.Edge.Listen, "STARBUS_HTTP": &cfg.HTTP,
		"STARBUS_WEBSOCKET": &cfg.Edge.WebSocket, "STARBUS_SGS": &cfg.Edge.SGS,
	} {
		if v, ok := os.LookupEnv(env); ok {
			*dst = v
		}
	}
	for flagValue, dst := range map[*string]*string{
		world: &cfg.World, natsURL: &cfg.NATS.URL, data: &cfg.NATS.DataDir, listen: &cfg.Edge.Listen, logLevel: &cfg.LogLevel,
		httpAddr: &cfg.HTTP, member: &cfg.Worker.Member, game: &cfg.Worker.Game, pprofAddr: &cfg.Pprof,
		wsAddr: &cfg.Edge.WebSocket, tlsCert: &cfg.Edge.TLSCert, tlsKey: &cfg.Edge.TLSKey, sgsAddr: &cfg.Edge.SGS,
	} {
		if *flagValue != "" {
			*dst = *flagValue
		}
	}
	if cfg.HTTP == "off" {
		cfg.HTTP = ""
	}
	if *natsPort != 0 {
		cfg.NATS.Port = *natsPort
	}
	if *syncAlways {
		cfg.NATS.SyncAlways = true
	}
	if *replicas != 0 {
		cfg.NATS.Replicas = *replicas
	}
	if *lease != 0 {
		cfg.Worker.Lease = config.Duration(*lease)
	}
	if *stats != 0 {
		cfg.Worker.StatsInterval = config.Duration(*stats)
	}
	return cfg, cfg.Validate()
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// world is what every subcommand but client needs: a connection, the
// world's stream, its state.
type world struct {
	js    jetstream.JetStream
	w     bus.World
	store *kv.Store
}

// openWorld opens the world's stream and state; with reg set, the store's
// metrics are registered there.
func openWorld(ctx context.Context, nc *nats.Conn, cfg config.Config, role bus.Role, log *slog.Logger, reg *metrics.Registry) (*world, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	w, err := bus.NewWorld(cfg.World)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if role.Provisions() {
		_, err = bus.Provision(pctx, js, w, bus.StreamConfig{Replicas: cfg.NATS.Replicas, Bucket: cfg.NATS.Bucket})
	} else {
		_, err = bus.Lookup(pctx, js, w) // an edge may not configure the stream
	}
	if err != nil {
		return nil, err
	}
	// A commit takes milliseconds; one in flight to a stream leader that
	// dies is never answered, and commits behind it wait: the timeout
	// bounds that stall (the runtime then checks the event's marker and
	// tries again).
	opts := kv.Options{Logger: log, CommitTimeout: 4 * time.Second}
	if role == bus.RoleEdge {
		// An edge reads state at logins and resumes only: a cache would
		// cost it, and the server, a delivery of every state write of the
		// world to keep current (the cache's tail), for a few reads.
		opts.CacheSize = -1
	}
	if reg != nil {
		opts.Observer = reg.StoreObserver()
	}
	store, err := kv.Open(pctx, js, w, opts)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := reg.RegisterStore(store); err != nil {
			store.Close()
			return nil, err
		}
	}
	return &world{js: js, w: w, store: store}, nil
}

// newRuntime returns the worker runtime of game; a nil game is the bank
// workload (internal/bank). With reg set, its metrics are registered there.
func newRuntime(wd *world, game *gridworld.Game, cfg config.Config, log *slog.Logger, reg *metrics.Registry) (*handlers.Runtime, error) {
	hc := handlers.Config{
		Store: wd.store, JS: wd.js, Logger: log,
		Concurrency: cfg.Worker.Concurrency, TaskTimeout: cfg.Worker.TaskTimeout.D(),
		Member: cfg.Worker.Member, Lease: cfg.Worker.Lease.D(),
		CompactInterval: cfg.Worker.CompactInterval.D(),
		// Messages to clients are kept for a reconnect's replay: four
		// reconnect graces, and never less than the default.
		OutboxTTL: max(2*time.Minute, 4*cfg.Edge.ReconnectGrace.D()),
	}
	if game != nil {
		hc.Handler, hc.Init = game.Handler(), game.Init()
	} else {
		hc.Handler = bank.Handler()
	}
	if reg != nil {
		hc.Observer = reg.RuntimeObserver()
	}
	rt, err := handlers.New(hc)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := reg.RegisterRuntime(rt); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// newEdge returns the edge of the world; with reg set, its metrics are
// registered there.
func newEdge(wd *world, cfg config.Config, log *slog.Logger, reg *metrics.Registry) (*edge.Server, error) {
	srv := &edge.Server{
		JS: wd.js, World: wd.w, Logger: log, Store: wd.store, // one store, so one tail of the state, per process
		Auth:           &edge.StoreAuth{Store: wd.store, Register: cfg.Edge.Register},
		MaxFrame:       cfg.Edge.MaxFrame,
		LoginTimeout:   cfg.Edge.LoginTimeout.D(),
		RatePerSecond:  cfg.Edge.RatePerSecond,
		Burst:          cfg.Edge.Burst,
		OutboundQueue:  cfg.Edge.OutboundQueue,
		WriteTimeout:   cfg.Edge.WriteTimeout.D(),
		FanoutDelay:    cfg.Edge.FanoutDelay.D(),
		AreaDelay:      cfg.Edge.AreaDelay.D(),
		ReconnectGrace: cmp.Or(cfg.Edge.ReconnectGrace.D(), -1), // 0 in the config: none
		SGSAddress:     cfg.Edge.SGSAdvertise,
		SGSMaxSessions: cfg.Edge.SGSMaxSessions,
	}
	if reg != nil {
		srv.Observer = reg.EdgeObserver()
		if err := reg.RegisterEdge(srv); err != nil {
			return nil, err
		}
	}
	return srv, nil
}

// newRegistry returns the process's metrics registry, or nil if it has no
// HTTP server to serve them.
func newRegistry(cfg config.Config, log *slog.Logger) (*metrics.Registry, error) {
	if cfg.HTTP == "" {
		return nil, nil
	}
	return metrics.New(cfg.World, log)
}

// httpMux routes /metrics to reg and /healthz to a constant answer (the
// process is up and serving HTTP); anything else goes to other, if set.
func httpMux(reg *metrics.Registry, other http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	if other != nil {
		mux.Handle("/", other)
	}
	return mux
}

// edgeTLS loads the certificate of the edge's listeners, if the
// configuration names one (nil otherwise).
func edgeTLS(cfg config.Config) (*tls.Config, error) {
	if cfg.Edge.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.Edge.TLSCert, cfg.Edge.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("edge.tls_cert and edge.tls_key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// listen listens on addr, with TLS if tc is set.
func listen(addr string, tc *tls.Config) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil || tc == nil {
		return l, err
	}
	return tls.NewListener(l, tc), nil
}

// scheme is plain, or secure if tc is set.
func scheme(tc *tls.Config, plain, secure string) string {
	if tc != nil {
		return secure
	}
	return plain
}

// httpTLS is tc for an HTTP server that serves WebSocket: HTTP/1.1 only,
// which the WebSocket handshake needs.
func httpTLS(tc *tls.Config) *tls.Config {
	if tc == nil {
		return nil
	}
	tc = tc.Clone()
	tc.NextProtos = []string{"http/1.1"}
	return tc
}

// webSocketMux routes /ws to the edge's WebSocket handler and the rest to
// other (nil: not found).
func webSocketMux(srv *edge.Server, cfg config.Config, other http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ws", srv.WebSocketHandler(edge.WebSocketOptions{OriginPatterns: cfg.Edge.WebSocketOrigins}))
	if other != nil {
		mux.Handle("/", other)
	}
	return mux
}

// newHTTPServer is an HTTP server for h whose errors (a failed TLS
// handshake, a bad request) go to log at debug level.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
}

// serveEdge runs an edge on l, and on sl, its SimpleSgs listener, if
// set, until ctx ends (SIGTERM, SIGINT), then shuts it down: with a
// SimpleSgs listener it drains first, relocating its SimpleSgs clients
// to other edges of the world (edge.Server.Drain).
func serveEdge(ctx context.Context, srv *edge.Server, l, sl net.Listener) error {
	if sl == nil {
		return serveUntil(ctx, func() error { return srv.Serve(l) }, srv.Shutdown, edge.ErrServerClosed, 10*time.Second)
	}
	serve := func() error {
		// Either listener's failure stops the other.
		sgsErr := make(chan error, 1)
		go func() {
			err := srv.ServeSGS(sl)
			if !errors.Is(err, edge.ErrServerClosed) {
				stopEdge(srv)
			}
			sgsErr <- err
		}()
		err := srv.Serve(l)
		if !errors.Is(err, edge.ErrServerClosed) {
			stopEdge(srv)
		}
		if serr := <-sgsErr; !errors.Is(serr, edge.ErrServerClosed) {
			err = errors.Join(err, fmt.Errorf("sgs: %w", serr))
		}
		return err
	}
	return serveUntil(ctx, serve, srv.Drain, edge.ErrServerClosed, drainGrace)
}

// drainGrace bounds an edge's drain: the wait for its SimpleSgs clients
// to suspend (edge.Server.SuspendTimeout, 5 s), then its shutdown.
const drainGrace = 15 * time.Second

// stopEdge shuts an edge down after one of its listeners failed.
func stopEdge(srv *edge.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// listenSGS opens the edge's SimpleSgs listener, if the config has one,
// and returns the banner's words for it.
func listenSGS(cfg config.Config) (net.Listener, string, error) {
	if cfg.Edge.SGS == "" {
		return nil, "", nil
	}
	l, err := net.Listen("tcp", cfg.Edge.SGS)
	if err != nil {
		return nil, "", fmt.Errorf("-sgs: %w", err)
	}
	return l, ", sgs " + l.Addr().String(), nil
}

// serveHTTP runs an HTTP server until ctx ends, then shuts it down.
func serveHTTP(ctx context.Context, srv *http.Server, l net.Listener) error {
	return serveUntil(ctx, func() error { return srv.Serve(l) }, srv.Shutdown, http.ErrServerClosed, 5*time.Second)
}

// serveUntil runs serve until ctx ends, then calls shutdown, giving it
// grace; closed is what serve returns once shut down.
func serveUntil(ctx context.Context, serve func() error, shutdown func(context.Context) error, closed error, grace time.Duration) error {
	served := make(chan error, 1)
	go func() { served <- serve() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := shutdown(sctx)
	if serr := <-served; !errors.Is(serr, closed) {
		err = errors.Join(err, serr)
	}
	return err
}

// parts runs long-running parts until ctx ends or one fails, then stops
// the others and waits for all of them.
func parts(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(fns))
	for i, fn := range fns {
		wg.Go(func() {
			errs[i] = fn(ctx)
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func runDev(ctx context.Context, cfg config.Config, stdout io.Writer, log *slog.Logger) error {
	start := time.Now()
	tc, err := edgeTLS(cfg)
	if err != nil {
		return err
	}
	users, natsTLS, err := embeddedAuth(cfg)
	if err != nil {
		return err
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: cfg.NATS.DataDir, Port: cfg.NATS.Port, SyncAlways: cfg.NATS.SyncAlways, Users: users, TLS: natsTLS})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := srv.Connect(nats.Name("starbus dev"))
	if err != nil {
		return err
	}
	defer nc.Close()
	reg, err := newRegistry(cfg, log)
	if err != nil {
		return err
	}
	wd, err := openWorld(ctx, nc, cfg, bus.RoleAdmin, log, reg)
	if err != nil {
		return err
	}
	defer wd.store.Close()
	if err := srv.StageInMemory(wd.w.Stream()); err != nil {
		log.Warn("atomic batches staged on disk: commits are slower", "err", err)
	}
	game, err := gridworld.New(gridConfig(cfg.Worker.Gridworld))
	if err != nil {
		return err
	}
	rt, err := newRuntime(wd, game, cfg, log, reg)
	if err != nil {
		return err
	}
	es, err := newEdge(wd, cfg, log, reg)
	if err != nil {
		return err
	}
	var listeners []net.Listener // closed on an error before serving
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	l, err := listen(cfg.Edge.Listen, tc)
	if err != nil {
		return err
	}
	listeners = append(listeners, l)
	sl, sgsWords, err := listenSGS(cfg)
	if err != nil {
		return err
	}
	if sl != nil {
		listeners = append(listeners, sl)
	}
	e := es
	run := []func(context.Context) error{rt.Run, func(ctx context.Context) error { return serveEdge(ctx, e, l, sl) }}
	httpLines := ""
	if cfg.HTTP != "" {
		hl, err := listen(cfg.HTTP, httpTLS(tc))
		if err != nil {
			return fmt.Errorf("live map: %w (-http off serves none)", err)
		}
		listeners = append(listeners, hl)
		web := scheme(tc, "http", "https") + "://" + hl.Addr().String()
		httpLines = fmt.Sprintf("  map     %s/\n  play    %s/play\n  metrics %s/metrics\n  ws      %s\n", web, web, web, wsURL(hl, tc))
		leaders, err := gridworld.OpenLeaderboard(ctx, wd.js, wd.w)
		if err != nil {
			return fmt.Errorf("live map: %w", err)
		}
		defer leaders.Close()
		m := &livemap.Map{Game: game, Store: wd.store, Metrics: reg, Leaders: leaders, Logger: log}
		hs := newHTTPServer(httpMux(reg, webSocketMux(e, cfg, m)), log)
		run = append(run, func(ctx context.Context) error { return serveHTTP(ctx, hs, hl) })
	}
	if cfg.Edge.WebSocket != "" {
		wl, err := listen(cfg.Edge.WebSocket, httpTLS(tc))
		if err != nil {
			return fmt.Errorf("websocket: %w", err)
		}
		listeners = append(listeners, wl)
		httpLines += fmt.Sprintf("  ws      %s\n", wsURL(wl, tc))
		hs := newHTTPServer(webSocketMux(e, cfg, nil), log)
		run = append(run, func(ctx context.Context) error { return serveHTTP(ctx, hs, wl) })
	}
	edgeLine := l.Addr().String() + sgsWords
	try := fmt.Sprintf("try: go run ./cmd/starbus client -addr %s -name ann\n     go run ./cmd/starbus bots -addr %s -players 100 -duration 30s\n", l.Addr(), l.Addr())
	if tc != nil { // the bots speak plain TCP only
		edgeLine += " (tls)"
		try = fmt.Sprintf("try: go run ./cmd/starbus client -addr %s -ca %s -name ann\n", l.Addr(), cfg.Edge.TLSCert)
	}
	fmt.Fprintf(stdout, "starbus dev: world %q ready in %v\n  edge    %s\n%s  nats    %s\n  data    %s\n%s",
		cfg.World, time.Since(start).Round(time.Millisecond), edgeLine, httpLines, srv.ClientURL(), cfg.NATS.DataDir, try)
	listeners = nil // served, and closed, by their servers
	return parts(ctx, run...)
}

// wsURL is the URL of the WebSocket at /ws on l, an HTTP listener with TLS
// if tc is set.
func wsURL(l net.Listener, tc *tls.Config) string {
	return scheme(tc, "ws", "wss") + "://" + l.Addr().String() + "/ws"
}

// remoteWorld connects to an external NATS and opens the world; close
// releases both.
func remoteWorld(ctx context.Context, cfg config.Config, name string, role bus.Role, log *slog.Logger, reg *metrics.Registry) (wd *world, close func(), err error) {
	opts, role, err := clientAuth(cfg, role)
	if err != nil {
		return nil, nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, err := bus.Dial(dctx, cfg.NATS.URL, name, opts...)
	if err != nil {
		return nil, nil, err
	}
	if wd, err = openWorld(ctx, nc, cfg, role, log, reg); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return wd, func() { wd.store.Close(); nc.Close() }, nil
}

func runEdge(ctx context.Context, cfg config.Config, stdout io.Writer, log *slog.Logger) error {
	tc, err := edgeTLS(cfg)
	if err != nil {
		return err
	}
	reg, err := newRegistry(cfg, log)
	if err != nil {
		return err
	}
	wd, closeWorld, err := remoteWorld(ctx, cfg, "starbus edge", bus.RoleEdge, log, reg)
	if err != nil {
		return err
	}
	defer closeWorld()
	e, err := newEdge(wd, cfg, log, reg)
	if err != nil {
		return err
	}
	web, webLine, err := listenHTTPPart(cfg, reg)
	if err != nil {
		return err
	}
	l, err := listen(cfg.Edge.Listen, tc)
	if err != nil {
		web.close()
		return err
	}
	sl, more, err := listenSGS(cfg)
	if err != nil {
		l.Close()
		web.close()
		return err
	}
	run := []func(context.Context) error{func(ctx context.Context) error { return serveEdge(ctx, e, l, sl) }, web.serve}
	if tc != nil {
		more = " (tls)" + more
	}
	if cfg.Edge.WebSocket != "" {
		wl, err := listen(cfg.Edge.WebSocket, httpTLS(tc))
		if err != nil {
			l.Close()
			if sl != nil {
				sl.Close()
			}
			web.close()
			return fmt.Errorf("websocket: %w", err)
		}
		more += ", ws " + wsURL(wl, tc)
		hs := newHTTPServer(webSocketMux(e, cfg, nil), log)
		run = append(run, func(ctx context.Context) error { return serveHTTP(ctx, hs, wl) })
	}
	fmt.Fprintf(stdout, "starbus edge: world %q on %s, edge %s%s\n%s", cfg.World, cfg.NATS.URL, l.Addr(), more, webLine)
	return parts(ctx, run...)
}

// httpPart is an edge's or a worker's HTTP server (/metrics, /healthz)
// as a part of the process; the zero value, for a process without one,
// serves nothing.
type httpPart struct {
	l       net.Listener
	handler http.Handler
}

// listenHTTPPart opens the listener of an edge's or a worker's HTTP
// server, if it has one (reg set), and returns the line that announces it.
func listenHTTPPart(cfg config.Config, reg *metrics.Registry) (httpPart, string, error) {
	if reg == nil {
		return httpPart{}, "", nil
	}
	l, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return httpPart{}, "", fmt.Errorf("-http: %w", err)
	}
	return httpPart{l: l, handler: httpMux(reg, nil)}, fmt.Sprintf("  metrics http://%s/metrics\n", l.Addr()), nil
}

// serve runs the server until ctx ends. Without a server it just waits:
// a part that returns stops the others (see parts).
func (p httpPart) serve(ctx context.Context) error {
	if p.l == nil {
		<-ctx.Done()
		return nil
	}
	return serveHTTP(ctx, &http.Server{Handler: p.handler, ReadHeaderTimeout: 10 * time.Second}, p.l)
}

// close releases the listener of a server that will not be served.
func (p httpPart) close() {
	if p.l != nil {
		p.l.Close()
	}
}

func runWorker(ctx context.Context, cfg config.Config, stdout io.Writer, log *slog.Logger) error {
	reg, err := newRegistry(cfg, log)
	if err != nil {
		return err
	}
	wd, closeWorld, err := remoteWorld(ctx, cfg, "starbus worker", bus.RoleWorker, log, reg)
	if err != nil {
		return err
	}
	defer closeWorld()
	var game *gridworld.Game
	if cfg.Worker.Game == "gridworld" {
		if game, err = gridworld.New(gridConfig(cfg.Worker.Gridworld)); err != nil {
			return err
		}
	}
	rt, err := newRuntime(wd, game, cfg, log, reg)
	if err != nil {
		return err
	}
	web, webLine, err := listenHTTPPart(cfg, reg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "starbus worker: world %q on %s, game %s, member %s\n%s", cfg.World, cfg.NATS.URL, cfg.Worker.Game, rt.Member(), webLine)
	if every := cfg.Worker.StatsInterval.D(); every > 0 {
		sctx, stopStats := context.WithCancel(context.WithoutCancel(ctx))
		var printer sync.WaitGroup
		printer.Go(func() { printStats(sctx, stdout, rt, wd.store, every) })
		defer func() { stopStats(); printer.Wait() }() // the final line counts all the runtime did
	}
	return parts(ctx, rt.Run, web.serve)
}

// printStats prints a worker's counters every interval until ctx ends, and
// once more then; one line each, for people and for the scale tests.
func printStats(ctx context.Context, w io.Writer, rt *handlers.Runtime, store *kv.Store, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	line := func(what string) {
		st, ks := rt.Stats(), store.Stats()
		parts := make([]string, 0, bus.Partitions)
		for _, p := range rt.Partitions() {
			parts = append(parts, strconv.Itoa(p))
		}
		fmt.Fprintf(w, "%s t=%d committed=%d duplicates=%d conflicts=%d retries=%d errors=%d deadletters=%d acquired=%d released=%d lost=%d commits=%d groups=%d batches=%d forwards=%d forwarded=%d partitions=%s\n",
			what, time.Now().UnixMilli(), st.Committed, st.Duplicates, st.Conflicts, st.Retries, st.Errors, st.DeadLetters,
			st.Acquired, st.Released, st.Lost, ks.Commits, ks.Groups, ks.Batches, ks.Forwards, ks.Forwarded, strings.Join(parts, ","))
	}
	for {
		select {
		case <-ctx.Done():
			line("final")
			return
		case <-tick.C:
			line("stats")
		}
	}
}

// runClient is a line-oriented terminal client: each line is sent; /quit
// logs out, /drop drops the connection and /reconnect resumes the session.
// A lost connection is resumed by itself, over every address of -addr (or
// -ws), as long as the edge keeps the session.
func runClient(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("starbus client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", config.Default().Edge.Listen, "edge address (TCP); several, comma-separated, to reconnect to in turn")
	ws := fs.String("ws", "", "the edge's WebSocket URL (ws:// or wss://), instead of -addr; several, comma-separated")
	ca := fs.String("ca", "", "PEM certificates to trust: connect with TLS (TCP), or trust them for wss")
	name := fs.String("name", "", "player name (required)")
	password := fs.String("password", "starbus", "password (the first login registers it)")
	pprofAddr := pprofFlag(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	stop, err := startPprof(*pprofAddr, stderr)
	if err != nil {
		return err
	}
	defer stop()
	if *name == "" {
		fmt.Fprintln(stderr, "starbus client: -name is required")
		return errUsage
	}
	cc := client.Config{Addrs: strings.Split(*addr, ","), Name: *name, Password: *password, AutoReconnect: true}
	if *ws != "" {
		cc.Addrs = strings.Split(*ws, ",")
	}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-ca %s: no PEM certificate", *ca)
		}
		cc.TLSConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := client.Connect(dctx, cc)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(stdout, "connected as %s (session %s); /quit to leave\n", *name, c.Session())

	var out sync.Mutex
	printf := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(stdout, format, args...)
	}
	recvCtx, stopRecv := context.WithCancel(ctx)
	var recv sync.WaitGroup
	recv.Go(func() {
		for {
			select {
			case m := <-c.Messages():
				switch {
				case m.Kind == client.KindJoined:
					printf("* joined #%s\n", m.Channel)
				case m.Kind == client.KindLeft:
					printf("* left #%s\n", m.Channel)
				case m.Channel != "":
					printf("#%s< %s\n", m.Channel, m.Payload)
				default:
					printf("< %s\n", m.Payload)
				}
			case e := <-c.Errors():
				printf("! %v\n", e)
			case e := <-c.Events():
				switch e.Kind {
				case client.Reconnecting:
					printf("* connection lost (%v); reconnecting\n", e.Err)
				case client.Resumed:
					printf("* resumed on %s\n", e.Addr)
				case client.Lost:
					printf("* session lost: %v\n", e.Err)
				}
			case <-recvCtx.Done():
				return
			}
		}
	})
	defer func() { stopRecv(); recv.Wait() }()

	lines := make(chan string)
	go func() { // ends with stdin; not joined, as a read from a terminal cannot be interrupted
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
			return nil
		case <-c.Closed():
			return c.Err()
		}
		if !ok || line == "/quit" {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := drain(lctx, c); err != nil {
				return err
			}
			return c.Logout(lctx)
		}
		switch line {
		case "/drop":
			_ = c.Drop()
			printf("dropped the connection\n")
		case "/reconnect":
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.Reconnect(rctx)
			cancel()
			if err != nil {
				printf("! reconnect: %v\n", err)
			}
		default:
			if err := c.Send([]byte(line)); err != nil {
				printf("! %v\n", err)
			}
		}
	}
}

// drain waits briefly for replies still on their way, so a piped session
// prints them before it logs out.
func drain(ctx context.Context, c *client.Client) error {
	t := time.NewTimer(300 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// gridConfig is the reference world's shape that c describes.
func gridConfig(c config.Gridworld) gridworld.Config {
	g := gridworld.Default()
	for _, f := range []struct {
		to *int
		v  int
	}{
		{&g.RegionsX, c.RegionsX}, {&g.RegionsY, c.RegionsY}, {&g.RegionSize, c.RegionSize},
		{&g.View, c.View}, {&g.NPCs, c.NPCs}, {&g.ItemCap, c.ItemCap},
	} {
		if f.v > 0 {
			*f.to = f.v
		}
	}
	return g
}
