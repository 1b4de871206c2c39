package main

import (
	"fmt"
	"testing"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestSessionRecords: starbus info counts the live sessions of a world
// with more session records than one batch get answers (1,024), the
// records of ended sessions (tombstones) aside.
func TestSessionRecords(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s, err := kv.Open(ctx, env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n, ended = 1100, 7
	for i := range n {
		err := s.Update(ctx, func(tx *kv.Tx) error {
			return tx.Put(bus.SessionKey(fmt.Sprint("s", i)), map[string]string{"player": "p"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = s.Update(ctx, func(tx *kv.Tx) error {
		for i := range ended {
			if err := tx.Delete(bus.SessionKey(fmt.Sprint("s", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	live, err := sessionRecords(ctx, env.JS, env.World)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != n-ended || live["s0"] || !live["s7"] || !live[fmt.Sprint("s", n-1)] {
		t.Fatalf("%d live sessions, want %d (s0 ended: %v, s7 live: %v)", len(live), n-ended, live["s0"], live["s7"])
	}
}
