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
	dir, _ := os.MkdirTemp("", "starbus-example")
	defer os.RemoveAll(dir)
	srv, _ := bus.StartEmbedded(bus.EmbeddedConfig{Dir: dir, Port: -1})
	defer srv.Shutdown()
	nc, _ := srv.Connect()
	defer nc.Close()
	js, _ := jetstream.New(nc)
	world, _ := bus.NewWorld("echo")
	stream, _ := bus.Provision(ctx, js, world, bus.StreamConfig{})
	store, _ := kv.Open(ctx, js, world, kv.Options{})
	defer store.Close()

	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
		var n int
		if err := t.Tx.Get(ctx, "count."+t.Session, &n); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if err := t.Tx.Put("count."+t.Session, n+1); err != nil {
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
