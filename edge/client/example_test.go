package client_test

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// Example logs in to an edge, sends a message and reads the world's
// answers. The edge and its world run in-process here; a real client only
// needs the edge's address.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, stop := exampleWorld(ctx)
	defer stop()

	c, err := client.Dial(ctx, addr, "ann", "secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = c.Send([]byte("hello"))
	for range 2 {
		m := <-c.Messages()
		fmt.Println(string(m.Payload))
	}
	fmt.Println(c.Logout(ctx))
	// Output:
	// welcome ann
	// echo: hello
	// <nil>
}

// exampleWorld runs a world with an echo game and an edge.
func exampleWorld(ctx context.Context) (addr string, stop func()) {
	dir, _ := os.MkdirTemp("", "starbus-example")
	srv, _ := bus.StartEmbedded(bus.EmbeddedConfig{Dir: dir, Port: -1})
	nc, _ := srv.Connect()
	js, _ := jetstream.New(nc)
	world, _ := bus.NewWorld("example")
	_, _ = bus.Provision(ctx, js, world, bus.StreamConfig{})
	store, _ := kv.Open(ctx, js, world, kv.Options{})
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		return t.Send(t.Session, []byte("welcome "+string(t.Data)))
	})
	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
		return t.Send(t.Session, append([]byte("echo: "), t.Data...))
	})
	mux.HandleFunc(bus.EventDisconnect, func(context.Context, *handlers.Task) error { return nil })
	rt, _ := handlers.New(handlers.Config{Store: store, JS: js, Handler: mux})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- rt.Run(rctx) }()
	e := &edge.Server{JS: js, World: world, Auth: &edge.StoreAuth{Store: store, Register: true}}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error)
	go func() { served <- e.Serve(l) }()
	return l.Addr().String(), func() {
		_ = e.Shutdown(context.Background())
		<-served
		cancel()
		<-done
		store.Close()
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
	}
}

// ExampleConnect connects with automatic reconnection: when the
// connection is lost (Drop stands for a network failure here), the client
// resumes its session by itself and says so on Events; what it sent is
// handled once.
func ExampleConnect() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, stop := exampleWorld(ctx)
	defer stop()

	c, err := client.Connect(ctx, client.Config{Addrs: []string{addr}, Name: "bob", Password: "secret", AutoReconnect: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string((<-c.Messages()).Payload))
	session := c.Session()
	_ = c.Drop()
	_ = c.Send([]byte("still there?"))
	fmt.Println((<-c.Events()).Kind)
	fmt.Println((<-c.Events()).Kind, c.Session() == session)
	fmt.Println(string((<-c.Messages()).Payload))
	fmt.Println(c.Logout(ctx))
	// Output:
	// welcome bob
	// reconnecting
	// resumed true
	// echo: still there?
	// <nil>
}
