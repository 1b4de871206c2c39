package kv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestBucket is #12's acceptance 6 (the Go side): a world provisioned with
// its bucket shows its state to nats.go's KeyValue, as any KV client reads
// it: values, deletions, and a watch that follows commits.
func TestBucket(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := bus.Provision(ctx, env.JS, env.World, bus.StreamConfig{Bucket: true}); err != nil {
		t.Fatal(err)
	}
	s := open(t, env, kv.Options{})
	err := s.Update(ctx, func(tx *kv.Tx) error {
		return errors.Join(tx.Put("player.ann", map[string]int{"hp": 7}), tx.Put("player.bob", 1))
	})
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := env.JS.KeyValue(ctx, env.World.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	var e jetstream.KeyValueEntry
	natstest.Eventually(t, 10*time.Second, func() bool {
		e, err = bucket.Get(ctx, "player.ann")
		return err == nil
	}, "player.ann in the bucket: %v", err)
	if string(e.Value()) != `{"hp":7}` || e.Operation() != jetstream.KeyValuePut {
		t.Fatalf("player.ann = %q (%v)", e.Value(), e.Operation())
	}
	// Both puts mirrored before the watch starts, or it may see bob's put
	// as its first update (the mirror copies one message at a time).
	natstest.Eventually(t, 10*time.Second, func() bool {
		_, err = bucket.Get(ctx, "player.bob")
		return err == nil
	}, "player.bob in the bucket: %v", err)
	w, err := bucket.Watch(ctx, "player.*", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := s.Update(ctx, func(tx *kv.Tx) error {
		return errors.Join(tx.Put("player.ann", map[string]int{"hp": 8}), tx.Delete("player.bob"))
	}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]jetstream.KeyValueOp{}
	for len(seen) < 2 {
		select {
		case u := <-w.Updates():
			if u != nil {
				seen[u.Key()] = u.Operation()
			}
		case <-ctx.Done():
			t.Fatalf("watch saw %v", seen)
		}
	}
	if seen["player.ann"] != jetstream.KeyValuePut || seen["player.bob"] != jetstream.KeyValueDelete {
		t.Fatalf("watch saw %v, want a put of player.ann and a delete of player.bob", seen)
	}
	if _, err := bucket.Get(ctx, "player.bob"); !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		t.Fatalf("deleted key: %v", err)
	}
	keys, err := bucket.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0] != "player.ann" {
		t.Fatalf("keys %v, %v", keys, err)
	}
	// The bucket answers only its own reads: the world's direct gets are
	// the world stream's alone (a mirror would answer them too, with none
	// of the world's subjects: "no message" for keys that exist).
	subj, _ := env.World.Key("player.ann")
	for range 50 {
		if _, err := env.Stream.GetLastMsgForSubject(ctx, subj); err != nil {
			t.Fatalf("a direct get of the world's stream: %v", err)
		}
	}
	// Read-only: a put through the KV API stores nothing in the world.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	if _, err := bucket.Put(pctx, "player.eve", []byte("1")); err == nil {
		t.Fatal("a KV put was taken")
	}
	err = s.View(ctx, func(tx *kv.Tx) error {
		if ok, err := tx.Exists(ctx, "player.eve"); err != nil || ok {
			t.Errorf("player.eve exists %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestIsDeleteReadsBothHeaders(t *testing.T) {
	for _, h := range []string{bus.HeaderOp, "Starbus-Op"} {
		m := map[string][]string{h: {bus.OpDelete}}
		if !bus.IsDelete(m) {
			t.Errorf("%s: DEL is not a deletion", h)
		}
	}
	if bus.IsDelete(map[string][]string{}) {
		t.Error("no header is a deletion")
	}
}
