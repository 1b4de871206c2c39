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
	s := openStore(t, env)
	const n, ended = 1100, 7
	for i := range n {
		err := s.Update(ctx, func(tx *kv.Tx) error {
			return tx.Put(bus.SessionKey(fmt.Sprint("s", i)), map[string]string{"player": "p"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.Update(ctx, func(tx *kv.Tx) error {
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

// TestInfoKeys: starbus info counts the keys apart from their revisions,
// which a write leaves stored until compaction purges them.
func TestInfoKeys(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s := openStore(t, env)
	before, err := collectInfo(ctx, env.JS, env.World)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "a", "a", "b"} {
		if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put(k, 1) }); err != nil {
			t.Fatal(err)
		}
	}
	after, err := collectInfo(ctx, env.JS, env.World)
	if err != nil {
		t.Fatal(err)
	}
	if keys, revs := after.Keys-before.Keys, after.ByKind["state"]-before.ByKind["state"]; keys != 2 || revs != 4 {
		t.Fatalf("info: %d more keys and %d more state messages, want 2 and 4", keys, revs)
	}
}

// openStore opens a store on env's world, closed when the test ends.
func openStore(t *testing.T, env *natstest.Env) *kv.Store {
	t.Helper()
	s, err := kv.Open(t.Context(), env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
