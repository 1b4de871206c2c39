package demo_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/demo"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestLoginStorm logs many players in at once. Every login rewrites one
// hot key (the online set), so every login task conflicts with all the
// others: each must still commit, none may be dead-lettered, the set must
// end up exact, and the conflicts must not storm.
func TestLoginStorm(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	store, err := kv.Open(ctx, env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rt, err := handlers.New(handlers.Config{Store: store, JS: env.JS, Handler: demo.Handler(), Init: demo.Init()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before wg.Wait: Run returns when ctx ends
	wg.Go(func() { _ = rt.Run(ctx) })
	srv := &edge.Server{JS: env.JS, World: env.World, Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = srv.Serve(l) })
	defer srv.Shutdown(context.Background())

	const players = 60
	clients := make([]*client.Client, players)
	var dial sync.WaitGroup
	errs := make(chan error, players)
	for i := range players {
		dial.Go(func() {
			c, err := client.Dial(ctx, l.Addr().String(), fmt.Sprintf("p%d", i), "pw")
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
			select {
			case m := <-c.Messages():
				if !strings.Contains(string(m.Payload), "Welcome") {
					errs <- fmt.Errorf("p%d: first message %q", i, m.Payload)
				}
			case <-time.After(60 * time.Second):
				errs <- fmt.Errorf("p%d: no welcome", i)
			}
		})
	}
	dial.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range clients {
		if c != nil {
			defer c.Close()
		}
	}
	var online map[string]string
	if err := store.View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "demo.online", &online) }); err != nil && !errors.Is(err, kv.ErrNotFound) {
		t.Fatal(err)
	}
	if len(online) != players {
		t.Errorf("%d players online, want %d", len(online), players)
	}
	st := rt.Stats()
	if st.DeadLetters != 0 {
		t.Errorf("dead letters: %+v", st)
	}
	// Losers wait their turn on the hot key instead of all re-running each
	// round: conflicts grow with the players, not with their square.
	if st.Conflicts > 3*players {
		t.Errorf("%d conflicts for %d logins: an abort storm", st.Conflicts, players)
	}
	t.Logf("runtime %+v; store %+v", st, store.Stats())
}
