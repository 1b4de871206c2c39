package bustest_test

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/bus/bustest"
)

// ExampleNew starts a server and a world outside a test, stores an event
// in the world's stream and reads it back. A test calls Start instead,
// and its cleanup closes the Env.
func ExampleNew() {
	env, err := bustest.New(bustest.Options{World: "demo"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer env.Close()

	subj, _ := env.World.Event("r0", "ann")
	m := nats.NewMsg(subj)
	m.Header.Set(bus.HeaderType, "hello")
	ack, err := env.JS.PublishMsg(context.Background(), m)
	if err != nil {
		fmt.Println(err)
		return
	}
	stored, err := env.Stream.GetMsg(context.Background(), ack.Sequence)
	if err != nil {
		fmt.Println(err)
		return
	}
	region, part, _ := env.World.ParseEvent(stored.Subject)
	fmt.Println(env.World.Stream(), region, part, stored.Header.Get(bus.HeaderType))
	// Output: SB_demo r0 ann hello
}
