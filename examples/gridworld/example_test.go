package gridworld_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// Example serves the reference world on one machine (embedded NATS, a
// worker runtime, an edge) and plays it with two clients.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "gridworld-example")
	defer os.RemoveAll(dir)
	srv, _ := bus.StartEmbedded(bus.EmbeddedConfig{Dir: dir, Port: -1})
	defer srv.Shutdown()
	nc, _ := srv.Connect()
	defer nc.Close()
	js, _ := jetstream.New(nc)
	world, _ := bus.NewWorld("grid")
	_, _ = bus.Provision(ctx, js, world, bus.StreamConfig{})
	store, _ := kv.Open(ctx, js, world, kv.Options{})
	defer store.Close()

	cfg := gridworld.Default()
	cfg.NPCs, cfg.ItemCap = 0, 0 // nothing moves on its own: the output is the same every run
	game, _ := gridworld.New(cfg)
	rt, _ := handlers.New(handlers.Config{Store: store, JS: js, Handler: game.Handler(), Init: game.Init()})
	ran := make(chan error)
	go func() { ran <- rt.Run(ctx) }()
	gate := &edge.Server{JS: js, World: world, Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error)
	go func() { served <- gate.Serve(l) }()

	// next returns the next message of type typ the world sends c, skipping
	// others (channel notices, position updates).
	next := func(c *client.Client, typ string) gridworld.Reply {
		for m := range c.Messages() {
			var r gridworld.Reply
			if json.Unmarshal(m.Payload, &r) == nil && r.T == typ {
				return r
			}
		}
		return gridworld.Reply{}
	}
	ann, _ := client.Dial(ctx, l.Addr().String(), "ann", "pw")
	w := next(ann, gridworld.TypeWelcome)
	fmt.Printf("%s: %s at %d,%d in %s of a %d×%d world\n", w.T, w.N, *w.X, *w.Y, w.Region, w.W, w.H)

	_ = ann.Send([]byte(`{"id":1,"op":"move","dir":"s"}`))
	m := next(ann, gridworld.TypeMoved)
	fmt.Printf("re %d: %s to %d,%d\n", m.Re, m.T, *m.X, *m.Y)

	bob, _ := client.Dial(ctx, l.Addr().String(), "bob", "pw")
	next(bob, gridworld.TypeWelcome)
	_ = bob.Send([]byte("shout hello, world")) // the text form of a command
	fmt.Printf("bob: %s\n", next(bob, gridworld.TypeSaid).T)
	c := next(ann, gridworld.TypeChat) // on the channel "global"
	fmt.Printf("ann hears: %s (%s) %q\n", c.From, c.Scope, c.Text)

	_ = ann.Close()
	_ = bob.Close()
	_ = gate.Shutdown(ctx)
	<-served
	cancel()
	<-ran
	// Output:
	// welcome: ann at 40,3 in r2-0 of a 64×64 world
	// re 1: moved to 40,4
	// bob: said
	// ann hears: bob (global) "hello, world"
}
