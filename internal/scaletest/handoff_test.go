package scaletest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	edgeclient "github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// walker is what the handoff game keeps per session.
type walker struct {
	Last    int      `json:"last"`    // the last message number handled
	N       int      `json:"n"`       // messages handled
	Bad     []string `json:"bad"`     // messages that did not follow the last one
	Moves   int      `json:"moves"`   // region changes asked for
	Regions []string `json:"regions"` // regions its messages arrived from
}

// handoffGame handles messages "walk:<n>" and "chat:<n>", n counting from 1
// per session. A walk crosses a region border: the session moves to the
// next of four regions, so that its edge publishes its later messages
// there. Every message checks, in the same transaction, that it follows
// the previous one, and records the region it arrived from.
func handoffGame() handlers.Handler {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(context.Context, *handlers.Task) error { return nil })
	mux.HandleFunc(bus.EventDisconnect, func(context.Context, *handlers.Task) error { return nil })
	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
		kind, num, ok := strings.Cut(string(t.Data), ":")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			return handlers.Permanent(fmt.Errorf("bad message %q", t.Data))
		}
		var w walker
		if err := t.Get(ctx, "walker."+t.Session, &w); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if n != w.Last+1 {
			w.Bad = append(w.Bad, fmt.Sprintf("%d after %d", n, w.Last))
		}
		w.Last, w.N = n, w.N+1
		if !slices.Contains(w.Regions, t.Region) {
			w.Regions = append(w.Regions, t.Region)
		}
		if kind == "walk" {
			w.Moves++
			next := "r" + strconv.Itoa(w.Moves%4)
			if err := t.MoveSession(t.Session, next); err != nil {
				return err
			}
		}
		return t.Put("walker."+t.Session, w)
	})
	return mux
}

// TestRegionHandoff is acceptance 4: 200 players, through two real edges
// over TCP, walk across region borders while chatting, handled by three
// workers sharing the world's partitions (one of which leaves halfway).
// A player's messages after a move are published on the new region's
// subjects while earlier ones may still wait on the old region's; because a
// partition is a function of the session alone, every player's messages
// are still handled exactly once, in the order sent.
func TestRegionHandoff(t *testing.T) {
	env := natstest.Start(t, natstest.Options{World: "handoff"})
	const players = 200
	// Every fifth message is a walk. Players send slower than the world
	// handles their messages, so that moves take effect while they talk.
	each, every := 30, 150*time.Millisecond
	if raceEnabled {
		each, every = 15, 400*time.Millisecond
	}
	type running struct {
		rt    *handlers.Runtime
		store *kv.Store
		stop  func()
	}
	startWorker := func(name string) *running {
		nc := natstest.Connect(t, env.Server)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		store, err := kv.Open(t.Context(), js, env.World, kv.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rt, err := handlers.New(handlers.Config{Store: store, JS: js, Handler: handoffGame(), Member: name, Lease: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		var once sync.Once
		r := &running{rt: rt, store: store}
		r.stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("worker %s: %v", name, err)
				}
				store.Close()
			})
		}
		t.Cleanup(r.stop)
		return r
	}
	ws := []*running{startWorker("w0"), startWorker("w1"), startWorker("w2")}

	var addrs []string
	for range 2 {
		nc := natstest.Connect(t, env.Server)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		srv := &edge.Server{JS: js, World: env.World, Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		t.Cleanup(func() { // before the workers stop (cleanups run last first)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			if err := <-served; !errors.Is(err, edge.ErrServerClosed) {
				t.Errorf("edge: %v", err)
			}
		})
		addrs = append(addrs, l.Addr().String())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	sessions := make([]string, players)
	handled := func() (int, error) {
		keys := make([]string, players)
		for i, s := range sessions {
			keys[i] = "walker." + s
		}
		n := 0
		err := ws[0].store.View(ctx, func(tx *kv.Tx) error {
			n = 0
			if err := tx.Prefetch(ctx, keys...); err != nil {
				return err
			}
			for _, k := range keys {
				var w walker
				if err := tx.Get(ctx, k, &w); err != nil && !errors.Is(err, kv.ErrNotFound) {
					return err
				}
				n += w.N
			}
			return nil
		})
		return n, err
	}
	// All players log in first, then they walk and talk.
	clients := make([]*edgeclient.Client, players)
	var login sync.WaitGroup
	for i := range players {
		login.Go(func() {
			c, err := edgeclient.Dial(ctx, addrs[i%2], "p"+strconv.Itoa(i), "pw")
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { c.Close() })
			clients[i] = c
			go func() { // drain whatever the world sends
				for {
					select {
					case <-c.Messages():
					case <-c.Done():
						return
					}
				}
			}()
		})
	}
	login.Wait()
	if t.Failed() {
		return
	}
	for i, c := range clients {
		sessions[i] = c.Session()
	}
	// A worker leaves while players are mid-walk, once half of the
	// messages have been sent: its partitions move to the other two.
	var sent atomic.Int64
	var leftSent, leftCommitted int // written by the leaver, read after left is closed
	half, left := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(left)
		select {
		case <-half:
		case <-ctx.Done():
			return
		}
		leftSent, leftCommitted = int(sent.Load()), int(ws[1].rt.Stats().Committed)
		ws[1].stop()
		t.Logf("w1 left when %d messages had been sent (%d by the time it was gone), having handled %d", leftSent, sent.Load(), leftCommitted)
	}()
	var play sync.WaitGroup
	for _, c := range clients {
		play.Go(func() {
			// Players keep talking while they walk: messages are paced, not
			// held back until a move is applied, so some are published on
			// the old region after the move committed, others on the new.
			pace := time.NewTicker(every)
			defer pace.Stop()
			for n := 1; n <= each; n++ {
				<-pace.C
				kind := "chat"
				if n%5 == 0 {
					kind = "walk"
				}
				if err := c.Send([]byte(kind + ":" + strconv.Itoa(n))); err != nil {
					t.Error(err)
					return
				}
				if sent.Add(1) == int64(players*each/2) {
					close(half)
				}
			}
		})
	}
	play.Wait()
	if t.Failed() {
		return
	}
	<-left
	if leftSent >= players*each || leftCommitted == 0 {
		t.Errorf("worker w1 left after %d of %d messages were sent, having handled %d: not while players were walking", leftSent, players*each, leftCommitted)
	}
	natstest.Eventually(t, 2*time.Minute, func() bool { n, err := handled(); return err == nil && n == players*each }, "all handled")

	moves, crossed := 0, 0
	for _, s := range sessions {
		var w walker
		if err := ws[0].store.View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "walker."+s, &w) }); err != nil {
			t.Fatal(err)
		}
		if w.N != each || w.Last != each || len(w.Bad) != 0 {
			t.Errorf("session %s: handled %d, last %d, out of order %v; want 1..%d once each, in order", s, w.N, w.Last, w.Bad, each)
		}
		moves += w.Moves
		if len(w.Regions) > 1 {
			crossed++
		}
	}
	if crossed < players/2 {
		t.Errorf("only %d of %d players' messages arrived from more than one region: the test did not exercise handoffs", crossed, players)
	}
	t.Logf("%d players, %d messages each through 2 edges, %d region moves; %d players' messages arrived from several regions; 3 workers, one left halfway",
		players, each, moves, crossed)
	for i, w := range ws {
		t.Logf("worker %d: %+v", i, w.rt.Stats())
	}
}
