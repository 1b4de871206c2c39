// Package natstest starts real, embedded JetStream servers for tests and
// benchmarks: random port, store in the test's temp dir, no logs, no
// signals, shut down by t.Cleanup. It is the one helper every Starbus test
// uses to reach NATS. A single server is the public kit's (package
// bus/bustest, which games' tests reach through package starbustest);
// natstest names it as the tests always have, and adds what only
// Starbus's own tests need: clusters and the bare substrate's publishes.
package natstest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/bus/bustest"
)

// Env is a running server with one in-process connection and a provisioned
// world.
type Env = bustest.Env

// Options tunes [Start].
type Options = bustest.Options

// Start starts a JetStream server and provisions a world on it, stopped by
// a cleanup of tb (see [bustest.Start]).
func Start(tb testing.TB, opts Options) *Env {
	tb.Helper()
	return bustest.Start(tb, opts)
}

// StartExample is [Start] for an Example function, which has no
// testing.TB: a server with its store in a new temp dir, and world
// provisioned on it. stop shuts it down and removes the dir.
func StartExample(world string) (env *Env, stop func(), err error) {
	env, err = bustest.New(bustest.Options{World: world})
	if err != nil {
		return nil, nil, err
	}
	return env, env.Close, nil
}

// Connect opens another in-process connection, closed at cleanup.
func Connect(tb testing.TB, srv *bus.Server) *nats.Conn {
	tb.Helper()
	nc, err := srv.Connect()
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Eventually polls cond until it returns true or the deadline passes. It is
// the one waiting helper in the tests: tests wait on conditions, not sleeps.
func Eventually(tb testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	bustest.Eventually(tb, within, cond, format, args...)
}

// Cluster is a JetStream cluster of in-process servers on loopback.
type Cluster struct {
	Servers []*bus.Server
	World   bus.World
}

// StartCluster starts n clustered servers, waits for JetStream's meta
// leader, and provisions a world replicated on every node (R = n, at most 3).
func StartCluster(tb testing.TB, n int, opts Options) *Cluster {
	tb.Helper()
	if opts.World == "" {
		opts.World = "test"
	}
	c := &Cluster{}
	// A JetStream cluster node needs its routes at start, so the route
	// ports are chosen first.
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		routes[i] = "nats://" + l.Addr().String()
		l.Close()
	}
	for i := range n {
		srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
			Dir:        tb.TempDir(),
			Port:       -1,
			ServerName: "n" + strconv.Itoa(i),
			Cluster:    &bus.ClusterConfig{Name: "test", Port: ports[i], Routes: routes},
		})
		if err != nil {
			tb.Fatalf("start node %d: %v", i, err)
		}
		tb.Cleanup(srv.Shutdown)
		c.Servers = append(c.Servers, srv)
	}
	var err error
	if c.World, err = bus.NewWorld(opts.World); err != nil {
		tb.Fatal(err)
	}
	js := c.JetStream(tb, 0)
	opts.Stream.Replicas = min(n, 3)
	Eventually(tb, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = bus.Provision(ctx, js, c.World, opts.Stream)
		return err == nil
	}, "provision on the cluster: %v", err)
	return c
}

// URLs returns the client URLs of every node, for a connection that fails
// over between them.
func (c *Cluster) URLs() string {
	var s string
	for i, srv := range c.Servers {
		if i > 0 {
			s += ","
		}
		s += srv.ClientURL()
	}
	return s
}

// JetStream connects over TCP to node i (with the others as fallbacks).
func (c *Cluster) JetStream(tb testing.TB, i int) jetstream.JetStream {
	tb.Helper()
	urls := c.Servers[i].ClientURL() + "," + c.URLs()
	nc, err := nats.Connect(urls, nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatalf("connect to cluster: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// PublishBatch publishes msgs as one atomic batch, as a hand-written
// client would: past the server's limit of atomic batches in flight per
// stream it backs off and tries again. Benchmarks of the bare substrate
// use it.
func PublishBatch(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) error {
	for {
		_, err := jetstreamext.PublishMsgBatch(ctx, js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
		// Rejected for too many in flight; the commit then reports the
		// batch incomplete (10176). Either way nothing was stored.
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || (apiErr.ErrorCode != jetstreamext.JSErrCodeAtomicPublishTooManyInflight &&
			apiErr.ErrorCode != jetstreamext.JSErrCodeBatchPublishIncomplete) {
			return err
		}
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, m := range msgs {
			m.Header.Del("Nats-Batch-Id")
		}
	}
}

// PublishAsync publishes msgs asynchronously, with no atomicity, and waits
// for every acknowledgement: the substrate's ceiling for a commit.
func PublishAsync(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) error {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for j, m := range msgs {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return err
		}
		futures[j] = f
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// SyncBuffer is a bytes.Buffer safe for one writer and many readers: the
// output of a command a test runs while it reads what came so far.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
