package edge_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/internal/natstest"
)

func natsMsg(subject string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	return m
}

// testLogger logs through t.Log, so a failing test shows the edge's view.
// Benchmarks log nothing: their log would be held in memory and measured.
func testLogger(t testing.TB) *slog.Logger {
	if _, ok := t.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// bareEdge is an edge on a world with no workers: the tests play the game's
// part, reading events from the stream and publishing to session subjects.
type bareEdge struct {
	env  *natstest.Env
	edge *edge.Server
	addr string
}

// startBareEdge starts an edge that lets anyone in under any name.
func startBareEdge(t testing.TB, configure func(*edge.Server)) *bareEdge {
	t.Helper()
	env := natstest.Start(t, natstest.Options{})
	srv := &edge.Server{
		JS: env.JS, World: env.World, Logger: testLogger(t),
		Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil }),
	}
	if configure != nil {
		configure(srv)
	}
	return &bareEdge{env: env, edge: srv, addr: serve(t, srv)}
}

// serve runs srv on a loopback port until the test's cleanup shuts it
// down, and returns its address.
func serve(t testing.TB, srv *edge.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, srv, l)
}

// serveOn runs srv on l until the test's cleanup shuts it down, and
// returns its address.
func serveOn(t testing.TB, srv *edge.Server, l net.Listener) string {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, edge.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return l.Addr().String()
}

// toSession stores a message for a session, as a committing task would.
func (b *bareEdge) toSession(t testing.TB, session string, payload []byte) uint64 {
	t.Helper()
	subj, err := b.env.World.Session(session)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := b.env.JS.Publish(context.Background(), subj, payload)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// events returns the events stored so far.
func (b *bareEdge) events(t testing.TB) []*jetstream.RawStreamMsg {
	t.Helper()
	return storedEvents(t, b.env)
}

// storedEvents returns the events stored in env's world (those the workers
// have not purged), read one by one with direct gets: polling with a
// consumer per call would run into the server's limit on consumers.
func storedEvents(t testing.TB, env *natstest.Env) []*jetstream.RawStreamMsg {
	t.Helper()
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := env.Stream.GetMsg(context.Background(), seq, jetstream.WithGetMsgSubject(env.World.EventFilter()))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

// nextMessage waits for c's next message, until ctx ends.
func nextMessage(ctx context.Context, t testing.TB, c *client.Client) client.Message {
	t.Helper()
	select {
	case m := <-c.Messages():
		return m
	case <-ctx.Done():
		t.Fatal("timed out waiting for a message")
	}
	return client.Message{}
}

// dialClient logs name in with the Go client; the returned context bounds
// the test's waits.
func dialClient(t testing.TB, addr, name string) (context.Context, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, addr, name, "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}
