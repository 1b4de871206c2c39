package kv_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/kv"
)

// Example shows a world's state used directly: an embedded server, the
// world's stream, and a transfer that commits both sides or neither.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "starbus-example")
	defer os.RemoveAll(dir)
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: dir, Port: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()
	nc, _ := srv.Connect()
	defer nc.Close()
	js, _ := jetstream.New(nc)
	world, _ := bus.NewWorld("example")
	if _, err := bus.Provision(ctx, js, world, bus.StreamConfig{}); err != nil {
		fmt.Println(err)
		return
	}
	store, err := kv.Open(ctx, js, world, kv.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	_ = store.Update(ctx, func(tx *kv.Tx) error {
		return errors.Join(tx.Put("gold.ann", 100), tx.Put("gold.bob", 5))
	})
	transfer := func(from, to string, amount int) error {
		return store.Update(ctx, func(tx *kv.Tx) error {
			var a, b int
			if err := errors.Join(tx.Get(ctx, from, &a), tx.Get(ctx, to, &b)); err != nil {
				return err
			}
			if a < amount {
				return fmt.Errorf("%s has %d gold, needs %d", from, a, amount)
			}
			return errors.Join(tx.Put(from, a-amount), tx.Put(to, b+amount))
		})
	}
	fmt.Println(transfer("gold.ann", "gold.bob", 30))
	fmt.Println(transfer("gold.bob", "gold.ann", 500))

	var ann, bob int
	_ = store.View(ctx, func(tx *kv.Tx) error {
		return errors.Join(tx.Get(ctx, "gold.ann", &ann), tx.Get(ctx, "gold.bob", &bob))
	})
	fmt.Println(ann, bob)
	// Output:
	// <nil>
	// gold.bob has 35 gold, needs 500
	// 70 35
}
