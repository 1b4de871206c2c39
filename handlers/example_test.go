package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// Example runs a one-handler game: every client message is counted and
// echoed back to its session, both in one transaction.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, world, stream, store, stop := exampleWorld(ctx, "echo")
	defer stop()

	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
		var n int
		if err := t.Get(ctx, "count."+t.Session, &n); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if err := t.Put("count."+t.Session, n+1); err != nil {
			return err
		}
		return t.Send(t.Session, fmt.Appendf(nil, "#%d: %s", n+1, t.Data))
	})
	rt, _ := handlers.New(handlers.Config{Store: store, JS: js, Handler: mux})
	done := make(chan error)
	go func() { done <- rt.Run(ctx) }()

	// What an edge does when client "s1" sends two messages.
	ev, _ := world.Event("r0", "s1")
	for _, text := range []string{"hello", "again"} {
		m := nats.NewMsg(ev)
		m.Header.Set(bus.HeaderType, bus.EventMessage)
		m.Header.Set(bus.HeaderSession, "s1")
		m.Data = []byte(text)
		_, _ = js.PublishMsg(ctx, m)
	}

	// What an edge delivers to the client.
	out, _ := world.Session("s1")
	replies, _ := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{out}})
	for range 2 {
		m, err := replies.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(m.Data()))
	}
	cancel()
	<-done
	// Output:
	// #1: hello
	// #2: again
}

// exampleWorld starts an embedded NATS server in a temporary directory and
// provisions the world name on it.
func exampleWorld(ctx context.Context, name string) (jetstream.JetStream, bus.World, jetstream.Stream, *kv.Store, func()) {
	dir, _ := os.MkdirTemp("", "starbus-example")
	srv, _ := bus.StartEmbedded(bus.EmbeddedConfig{Dir: dir, Port: -1})
	nc, _ := srv.Connect()
	js, _ := jetstream.New(nc)
	world, _ := bus.NewWorld(name)
	stream, _ := bus.Provision(ctx, js, world, bus.StreamConfig{})
	store, _ := kv.Open(ctx, js, world, kv.Options{})
	return js, world, stream, store, func() {
		store.Close()
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
	}
}

// ExampleTask_CreateChannel puts every player who logs in into a lobby
// channel and announces them there: the join and the announcement are
// committed with the login's task.
func ExampleTask_CreateChannel() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, world, stream, store, stop := exampleWorld(ctx, "lobby")
	defer stop()

	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		ch, err := t.Channel(ctx, "lobby")
		if errors.Is(err, handlers.ErrNoChannel) {
			ch, err = t.CreateChannel(ctx, "lobby", handlers.ChannelOptions{Delivery: handlers.Reliable})
		}
		if err != nil {
			return err
		}
		if err := ch.Join(ctx, t.Session); err != nil {
			return err
		}
		return ch.Send([]byte(string(t.Data) + " joined the lobby"))
	})
	rt, _ := handlers.New(handlers.Config{Store: store, JS: js, Handler: mux})
	done := make(chan error)
	go func() { done <- rt.Run(ctx) }()

	// What edges publish when "ann" and then "bob" log in (on one ordering
	// key here, so that the output has one order).
	for _, player := range []string{"ann", "bob"} {
		ev, _ := world.Event("r0", "door")
		m := nats.NewMsg(ev)
		m.Header.Set(bus.HeaderType, bus.EventLogin)
		m.Header.Set(bus.HeaderSession, player)
		m.Data = []byte(player)
		_, _ = js.PublishMsg(ctx, m)
	}

	// What the edges deliver: each session's join notice, then the
	// channel's messages, in the stream's one order.
	out, _ := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{world.OutFilter()}})
	for range 4 {
		m, err := out.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		if n := m.Headers().Get(bus.HeaderNotice); n != "" {
			fmt.Printf("%s: %s %s\n", m.Subject(), n, m.Headers().Get(bus.HeaderChannel))
			continue
		}
		fmt.Printf("%s: %s\n", m.Subject(), m.Data())
	}
	cancel()
	<-done
	// Output:
	// sb.lobby.out.s.ann: join lobby
	// sb.lobby.out.c.lobby: ann joined the lobby
	// sb.lobby.out.s.bob: join lobby
	// sb.lobby.out.c.lobby: bob joined the lobby
}
