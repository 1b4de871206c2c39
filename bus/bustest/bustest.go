// Package bustest starts real, embedded JetStream servers for tests, in the
// shape of net/http/httptest: [Start] gives a test a server on a random
// loopback port, its store in the test's temporary directory, one
// in-process connection and a provisioned world ([bus.Provision]), all
// shut down by a cleanup of the test. The server logs nothing and installs
// no signal handlers. [New] does the same without a test, for Example
// functions and tools.
//
// It is the one place Starbus's tests and the public game test kit
// (package starbustest, which runs a game on an [Env]) start a server,
// and [Eventually] is their one way to wait: on a condition, never for a
// fixed time.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
)

// Env is a running embedded JetStream server with one in-process
// connection and a provisioned world.
type Env struct {
	Server *bus.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
	World  bus.World
	Stream jetstream.Stream
	// Dir is the server's store directory.
	Dir string

	ownDir bool // Close removes Dir
}

// Options configures an [Env]. The zero value is a world called "test"
// on R1 file storage in a new temporary directory.
type Options struct {
	// World names the world (default "test").
	World string
	// Stream configures the world's stream (default: R1 file storage).
	Stream bus.StreamConfig
	// Dir reuses a store directory, to test a restart (default:
	// tb.TempDir() for Start; for New, a new temporary directory that
	// Close removes).
	Dir string
	// DiskStaging leaves an R1 file stream's atomic batches staged on disk
	// (see [bus.Server.StageInMemory]); by default they are staged on
	// tmpfs, as starbus dev does.
	DiskStaging bool
}

// Start starts an embedded JetStream server on a random loopback port,
// its store in tb.TempDir(), connects to it and provisions a world; a
// cleanup of tb shuts it down. It fails tb if any of that fails.
func Start(tb testing.TB, opts Options) *Env {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	env, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(env.Close)
	return env
}

// New is [Start] without a test, for Example functions and tools: the
// caller calls [Env.Close].
func New(opts Options) (env *Env, err error) {
	if opts.World == "" {
		opts.World = "test"
	}
	env = &Env{Dir: opts.Dir}
	if env.Dir == "" {
		if env.Dir, err = os.MkdirTemp("", "bustest"); err != nil {
			return nil, err
		}
		env.ownDir = true
	}
	if err = env.start(opts); err != nil {
		env.Close()
		return nil, err
	}
	return env, nil
}

// start starts the server on e.Dir, connects, and provisions the world.
func (e *Env) start(opts Options) (err error) {
	if e.Server, err = bus.StartEmbedded(bus.EmbeddedConfig{Dir: e.Dir, Port: -1}); err != nil {
		return fmt.Errorf("start embedded server: %w", err)
	}
	if e.Conn, err = e.Server.Connect(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if e.JS, err = jetstream.New(e.Conn); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if e.World, err = bus.NewWorld(opts.World); err != nil {
		return fmt.Errorf("world: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.Stream, err = bus.Provision(ctx, e.JS, e.World, opts.Stream); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if !opts.Stream.Memory && !opts.DiskStaging {
		// As starbus dev does: tests measure what ships.
		if err := e.Server.StageInMemory(e.World.Stream()); err != nil && !errors.Is(err, bus.ErrNoTmpfs) {
			return err
		}
	}
	return nil
}

// Close closes the connection and shuts the server down, waiting for it;
// it removes the store directory if [New] made it.
func (e *Env) Close() {
	if e.Conn != nil {
		e.Conn.Close()
	}
	if e.Server != nil {
		e.Server.Shutdown()
	}
	if e.ownDir {
		_ = os.RemoveAll(e.Dir)
	}
}

// Stored returns how many messages the world's stream holds on the
// subjects filter matches: e.g. e.World.DeadLetterFilter() counts the
// events the runtime gave up on.
func (e *Env) Stored(tb testing.TB, filter string) int {
	tb.Helper()
	info, err := e.Stream.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// Eventually polls cond until it returns true, and fails tb if it has not
// within the time given, with the message format and args describe. Tests
// wait on conditions, never for a fixed time.
func Eventually(tb testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: "+format, append([]any{within}, args...)...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
