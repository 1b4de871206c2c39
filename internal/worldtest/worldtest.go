package worldtest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// World is a running reference world.
type World struct {
	Env     *natstest.Env
	Game    *gridworld.Game
	Store   *kv.Store
	Runtime *handlers.Runtime
	Edge    *edge.Server
	// Addr is the edge's address.
	Addr string
}

// Start runs a world with cfg, its handler wrapped in mw. Logins are
// accepted without passwords (the edge's argon2id hashing is tested in
// package edge).
func Start(tb testing.TB, cfg gridworld.Config, mw ...func(*gridworld.Game) handlers.Middleware) *World {
	tb.Helper()
	env := natstest.Start(tb, natstest.Options{World: "grid"})
	g, err := gridworld.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	store, err := kv.Open(ctx, env.JS, env.World, kv.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	h := g.Handler()
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](g)(h)
	}
	rt, err := handlers.New(handlers.Config{Store: store, JS: env.JS, Handler: h, Init: g.Init(), Logger: slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		tb.Fatal(err)
	}
	srv := &edge.Server{JS: env.JS, World: env.World, Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = rt.Run(ctx) })
	wg.Go(func() { _ = srv.Serve(l) })
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		wg.Wait()
		store.Close()
	})
	return &World{Env: env, Game: g, Store: store, Runtime: rt, Edge: srv, Addr: l.Addr().String()}
}

// Player is a logged-in test client. Notices (messages that answer no
// command) are kept for Notices.
type Player struct {
	tb     testing.TB
	Client *client.Client
	// Welcome is the world's first message.
	Welcome gridworld.Reply

	mu      sync.Mutex
	notices []gridworld.Reply
	nextID  uint64
}

// Login logs name in and waits for the welcome.
func (w *World) Login(tb testing.TB, name string) *Player {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, w.Addr, name, "pw")
	if err != nil {
		tb.Fatalf("login %s: %v", name, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	p := &Player{tb: tb, Client: c}
	p.Welcome = p.wait(ctx, func(r gridworld.Reply) bool { return r.T == gridworld.TypeWelcome || r.T == gridworld.TypeRefused })
	return p
}

// Do sends c with a fresh ID and returns the world's reply to it.
func (p *Player) Do(c gridworld.Command) gridworld.Reply {
	p.tb.Helper()
	p.mu.Lock()
	p.nextID++
	c.ID = p.nextID
	p.mu.Unlock()
	b, err := json.Marshal(c)
	if err != nil {
		p.tb.Fatal(err)
	}
	if err := p.Client.Send(b); err != nil {
		p.tb.Fatalf("send: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.wait(ctx, func(r gridworld.Reply) bool { return r.Re == c.ID })
}

// Wait returns the first notice (already received or still to come) that
// match accepts, removing it.
func (p *Player) Wait(match func(gridworld.Reply) bool) gridworld.Reply {
	p.tb.Helper()
	p.mu.Lock()
	for i, r := range p.notices {
		if match(r) {
			p.notices = append(p.notices[:i], p.notices[i+1:]...)
			p.mu.Unlock()
			return r
		}
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.wait(ctx, match)
}

// wait reads messages until one matches, keeping the others as notices.
func (p *Player) wait(ctx context.Context, match func(gridworld.Reply) bool) gridworld.Reply {
	p.tb.Helper()
	for {
		select {
		case m := <-p.Client.Messages():
			var r gridworld.Reply
			if err := json.Unmarshal(m.Payload, &r); err != nil {
				continue // channel notices and the like
			}
			if match(r) {
				return r
			}
			p.mu.Lock()
			p.notices = append(p.notices, r)
			p.mu.Unlock()
		case <-ctx.Done():
			p.tb.Fatalf("no matching message: %v", ctx.Err())
			return gridworld.Reply{}
		}
	}
}

// TryNotice returns a notice already received, if any, without waiting
// for more than what is already queued.
func (p *Player) TryNotice() (gridworld.Reply, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.notices) > 0 {
		r := p.notices[0]
		p.notices = p.notices[1:]
		return r, true
	}
	return gridworld.Reply{}, false
}
