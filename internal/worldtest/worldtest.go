package worldtest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/starbustest"
)

// World is a running reference world, on the public test kit.
type World struct {
	*starbustest.World
	Game *gridworld.Game
}

// Start runs a world with cfg, its handler wrapped in mw, and an edge.
// Logins are accepted without passwords (the edge's argon2id hashing is
// tested in package edge).
func Start(tb testing.TB, cfg gridworld.Config, mw ...func(*gridworld.Game) handlers.Middleware) *World {
	tb.Helper()
	g, err := gridworld.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	h := g.Handler()
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](g)(h)
	}
	w := starbustest.Start(tb, starbustest.Options{Name: "grid", Handler: h, Init: g.Init(), Timeout: 30 * time.Second})
	return &World{World: w, Game: g}
}

// Player is a logged-in test client that speaks the world's JSON
// protocol. Messages that answer no command (notices) stay queued for
// Wait.
type Player struct {
	*starbustest.Session
	tb testing.TB
	// Welcome is the world's first message.
	Welcome gridworld.Reply

	mu     sync.Mutex
	nextID uint64
}

// Login logs name in and waits for the welcome.
func (w *World) Login(tb testing.TB, name string) *Player {
	tb.Helper()
	p := &Player{Session: w.World.Login(name), tb: tb}
	p.Welcome = p.Wait(func(r gridworld.Reply) bool { return r.T == gridworld.TypeWelcome || r.T == gridworld.TypeRefused })
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
	p.Send(b)
	return p.Wait(func(r gridworld.Reply) bool { return r.Re == c.ID })
}

// Wait returns the first reply or notice (already received or still to
// come) that match accepts, leaving the others queued.
func (p *Player) Wait(match func(gridworld.Reply) bool) gridworld.Reply {
	p.tb.Helper()
	return starbustest.ExpectJSON(context.Background(), p.Session, match)
}
