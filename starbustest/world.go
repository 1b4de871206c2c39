package starbustest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/bus/bustest"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// DefaultTimeout is how long a world's waits last unless [Options.Timeout]
// says otherwise: a reply normally comes in milliseconds, but a test
// machine under load can be slow, and a test that fails should say so
// rather than hang.
const DefaultTimeout = 20 * time.Second

// Options configures a world started by [Start]. Only Handler is
// required.
type Options struct {
	// Handler is the game: it handles every event and scheduled task.
	Handler handlers.Handler
	// Init, if set, initialises the world before its first event
	// (handlers.Config.Init); [Start] returns after it has run.
	Init handlers.Handler
	// Name names the world (default "test").
	Name string
	// Stream configures the world's stream (default: R1 file storage).
	Stream bus.StreamConfig
	// Runtime tunes the handler runtime (TaskTimeout, MaxErrors, ...).
	// Store, JS, Handler and Init are the kit's to set; Logger defaults to
	// the test's log, warnings and errors only.
	Runtime handlers.Config
	// NoEdge starts no edge: [World.Login] then publishes the session's
	// events itself, as an edge would.
	NoEdge bool
	// Edge, if set, is the edge to serve (ReconnectGrace, Region, Auth,
	// limits...); Start sets its JS, World and Store, and Auth and Logger
	// if they are nil. By default the edge accepts any name with any
	// password, and the player is the name.
	Edge *edge.Server
	// Timeout bounds every wait of the world and its sessions: for a
	// message, a condition, a login (default [DefaultTimeout]).
	Timeout time.Duration
	// SGS also serves the edge's SimpleSgs listener, for Darkstar clients
	// (edge.Server.ServeSGS), on another loopback port: [World.SGSAddr].
	SGS bool
}

// World is a running world: an embedded JetStream server ([bustest.Env]), the
// world's state ([kv.Store]), a handler runtime running the game, and, unless
// [Options.NoEdge], an edge on a loopback port. Its methods report failures
// to the test that started it, so call them from that test's goroutine.
type World struct {
	*bustest.Env
	// Store is the world's state, shared with the runtime and the edge.
	Store *kv.Store
	// Runtime runs the game's handler.
	Runtime *handlers.Runtime
	// Edge serves clients on Addr; nil with [Options.NoEdge].
	Edge *edge.Server
	// Addr is the edge's address (127.0.0.1 and a free port), for
	// [github.com/starbus/starbus/edge/client.Dial].
	Addr string
	// SGSAddr is the address of the edge's SimpleSgs listener, with
	// [Options.SGS], for [github.com/starbus/starbus/edge/sgs/sgsclient.Dial].
	SGSAddr string
	// Timeout bounds the world's waits (see [Options.Timeout]).
	Timeout time.Duration

	tb       testing.TB
	mu       sync.Mutex
	sessions map[string]bool // ids of direct sessions
}

// NewWorld starts a world that runs h with the default [Options], and an
// edge. Everything it starts is stopped by a cleanup of tb.
func NewWorld(tb testing.TB, h handlers.Handler) *World {
	tb.Helper()
	return Start(tb, Options{Handler: h})
}

// Start starts a world as opts says: an embedded server on a random
// loopback port with its store in tb.TempDir(), the world's stream, a
// [kv.Store], a [handlers.Runtime] running opts.Handler (after opts.Init)
// and an edge on 127.0.0.1:0. It returns once the runtime consumes every
// partition of the world's events. A cleanup of tb stops them all, in
// reverse order, and waits for their goroutines.
func Start(tb testing.TB, opts Options) *World {
	tb.Helper()
	if opts.Handler == nil {
		tb.Fatal("starbustest: Options.Handler is required")
	}
	w := &World{
		Env:      bustest.Start(tb, bustest.Options{World: opts.Name, Stream: opts.Stream}),
		Timeout:  opts.Timeout,
		tb:       tb,
		sessions: map[string]bool{},
	}
	if w.Timeout <= 0 {
		w.Timeout = DefaultTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ran := make(chan error, 1)
	tb.Cleanup(func() {
		if w.Edge != nil {
			sctx, scancel := context.WithTimeout(context.Background(), w.Timeout)
			if err := w.Edge.Shutdown(sctx); err != nil {
				tb.Errorf("starbustest: edge shutdown: %v", err)
			}
			scancel()
		}
		cancel()
		wg.Wait()
		select {
		case err := <-ran: // the runtime has stopped, if it ever ran
			if err != nil {
				tb.Errorf("starbustest: the runtime: %v", err)
			}
		default:
		}
		if w.Store != nil {
			_ = w.Store.Close()
		}
	})
	var err error
	if w.Store, err = kv.Open(ctx, w.JS, w.World, kv.Options{}); err != nil {
		tb.Fatalf("starbustest: open the store: %v", err)
	}
	log := slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := opts.Runtime
	cfg.Store, cfg.JS, cfg.Handler, cfg.Init = w.Store, w.JS, opts.Handler, opts.Init
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	if w.Runtime, err = handlers.New(cfg); err != nil {
		tb.Fatalf("starbustest: %v", err)
	}
	wg.Go(func() {
		if err := w.Runtime.Run(ctx); err != nil {
			ran <- err
		}
		close(ran)
	})
	bustest.Eventually(tb, w.Timeout, func() bool {
		select {
		case err := <-ran:
			tb.Fatalf("starbustest: the runtime stopped: %v", err)
		default:
		}
		return len(w.Runtime.Partitions()) == bus.Partitions
	}, "starbustest: the runtime takes every partition of the world's events")
	if !opts.NoEdge {
		w.serve(&wg, opts.Edge, log, opts.SGS)
	}
	return w
}

// serve starts the edge e (a new one if nil) on a loopback port, and its
// SimpleSgs listener on another if sgs.
func (w *World) serve(wg *sync.WaitGroup, e *edge.Server, log *slog.Logger, sgs bool) {
	w.tb.Helper()
	if e == nil {
		e = &edge.Server{}
	}
	e.JS, e.World, e.Store = w.JS, w.World, w.Store
	if e.Auth == nil {
		e.Auth = edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })
	}
	if e.Logger == nil {
		e.Logger = log
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.tb.Fatalf("starbustest: listen: %v", err)
	}
	w.Edge, w.Addr = e, l.Addr().String()
	wg.Go(func() {
		if err := e.Serve(l); err != nil && !errors.Is(err, edge.ErrServerClosed) {
			w.tb.Errorf("starbustest: edge: %v", err)
		}
	})
	if !sgs {
		return
	}
	ls, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.tb.Fatalf("starbustest: listen: %v", err)
	}
	w.SGSAddr = ls.Addr().String()
	wg.Go(func() {
		if err := e.ServeSGS(ls); err != nil && !errors.Is(err, edge.ErrServerClosed) {
			w.tb.Errorf("starbustest: edge's SimpleSgs listener: %v", err)
		}
	})
}

// View runs fn in a read-only transaction of the world's state and fails
// the test if it returns an error. Reads see every commit of the world's
// tasks so far.
func (w *World) View(ctx context.Context, fn func(tx *kv.Tx) error) {
	w.tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	if err := w.Store.View(ctx, fn); err != nil {
		w.tb.Fatalf("starbustest: view: %v", err)
	}
}

// Get returns the value of key in w's state, decoded into a T, and fails
// tb if the key has no value.
func Get[T any](tb testing.TB, w *World, key string) T {
	tb.Helper()
	v, ok := Lookup[T](tb, w, key)
	if !ok {
		tb.Fatalf("starbustest: key %q has no value", key)
	}
	return v
}

// Lookup returns the value of key in w's state, decoded into a T, and
// whether it has one (the zero T if not), as [handlers.Task.Lookup] does.
func Lookup[T any](tb testing.TB, w *World, key string) (v T, ok bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), w.Timeout)
	defer cancel()
	err := w.Store.View(ctx, func(tx *kv.Tx) (err error) {
		ok, err = tx.Lookup(ctx, key, &v)
		return err
	})
	if err != nil {
		tb.Fatalf("starbustest: get %q: %v", key, err)
	}
	return v, ok
}

// Members returns the ids of the sessions in channel ch, sorted (none if
// there is no such channel).
func (w *World) Members(ch string) []string {
	w.tb.Helper()
	var m []string
	w.View(w.tb.Context(), func(tx *kv.Tx) (err error) {
		m, err = handlers.ChannelMembers(w.tb.Context(), tx, ch)
		return err
	})
	return m
}

// Eventually waits until cond returns true, polling it, and fails the test
// if it has not within the world's Timeout, with the message format and
// args describe (see [bustest.Eventually]).
func (w *World) Eventually(cond func() bool, format string, args ...any) {
	w.tb.Helper()
	bustest.Eventually(w.tb, w.Timeout, cond, format, args...)
}

// Emit publishes an event of type typ for region and ordering key part, as
// [handlers.Task.Emit] would but at once, outside any task: for events the
// game emits to itself, and test-only ones.
func (w *World) Emit(region, part, typ string, data []byte) {
	w.tb.Helper()
	subj, err := w.World.Event(region, part)
	if err != nil {
		w.tb.Fatalf("starbustest: emit: %v", err)
	}
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(bus.HeaderType, typ)
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	if _, err := w.JS.PublishMsg(ctx, m); err != nil {
		w.tb.Fatalf("starbustest: emit %s: %v", typ, err)
	}
}

// Fire runs the scheduled tasks of type typ ([handlers.Task.After],
// [handlers.Task.Every]) now rather than at their time, each once (a
// periodic one goes on a period later), and returns how many it brought
// forward: a test need not wait for a long timer. It finds the schedules
// committed so far, so wait for the task that schedules one (its reply,
// its state) first; and it does not wait for them to run: wait for what
// they do, as for any task. A timer a test does not fire runs at its time,
// in real time.
func (w *World) Fire(typ string) int {
	w.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	var n int
	err := w.Store.Update(ctx, func(tx *kv.Tx) (err error) {
		n, err = handlers.FireNow(ctx, tx, w.World, typ)
		return err
	})
	if err != nil {
		w.tb.Fatalf("starbustest: fire %s: %v", typ, err)
	}
	return n
}
