package kv_test

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestRewrite: keys last written below the given sequence are copied
// forward, oldest first, unchanged, deleted keys with what is left of
// their time; keys written since stay where they are.
func TestRewrite(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	s := open(t, env, kv.Options{})
	ctx := t.Context()

	put := func(key, val string) {
		t.Helper()
		if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.PutBytes(key, []byte(val)) }); err != nil {
			t.Fatal(err)
		}
	}
	rev := func(key string) (uint64, []byte) {
		t.Helper()
		subj, _ := env.World.Key(key)
		m, err := env.Stream.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return m.Sequence, m.Data
	}
	for i := range 4 {
		put(fmt.Sprintf("cold.%d", i), fmt.Sprintf("v%d", i))
	}
	put("hot", "old")
	put("gone", "x")
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Delete("gone") }); err != nil {
		t.Fatal(err)
	}
	goneRev, _ := rev("gone")
	below := goneRev + 1
	put("hot", "new")
	hotRev, _ := rev("hot")
	before := map[string]uint64{}
	for i := range 4 {
		key := fmt.Sprintf("cold.%d", i)
		before[key], _ = rev(key)
	}

	// A limit takes the oldest first.
	n, err := s.Rewrite(ctx, below, 2)
	if err != nil || n != 2 {
		t.Fatalf("Rewrite limit 2: %d, %v; want 2", n, err)
	}
	for i := range 4 {
		key := fmt.Sprintf("cold.%d", i)
		r, val := rev(key)
		if moved := r != before[key]; moved != (i < 2) {
			t.Errorf("%s: revision %d → %d after a rewrite of the 2 oldest", key, before[key], r)
		}
		if want := fmt.Sprintf("v%d", i); !bytes.Equal(val, []byte(want)) {
			t.Errorf("%s = %q, want %q", key, val, want)
		}
	}

	// Another process's store, whose tombstones last a second, copies the
	// two values left and finds the tombstone about to expire: it stays.
	short := second(t, env, kv.Options{TombstoneTTL: time.Second})
	if n, err := short.Rewrite(ctx, below, 0); err != nil || n != 2 {
		t.Fatalf("Rewrite with 1 s tombstones: %d, %v; want the 2 values left", n, err)
	}
	if r, _ := rev("gone"); r != goneRev {
		t.Errorf("gone: revision %d, want its tombstone left at %d (under a second left)", r, goneRev)
	}
	if n, err := s.Rewrite(ctx, below, 0); err != nil || n != 1 {
		t.Fatalf("Rewrite: %d, %v; want the tombstone", n, err)
	}
	for i := range 4 {
		key := fmt.Sprintf("cold.%d", i)
		if r, _ := rev(key); r < below {
			t.Errorf("%s still at revision %d, below %d", key, r, below)
		}
	}
	if r, val := rev("hot"); r != hotRev || string(val) != "new" {
		t.Errorf("hot: revision %d %q, want %d \"new\" (written above the floor)", r, val, hotRev)
	}
	subj, _ := env.World.Key("gone")
	m, err := env.Stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if ttl, _ := strconv.Atoi(m.Header.Get(jetstream.MsgTTLHeader)); m.Sequence < below || !bus.IsDelete(m.Header) || ttl < 1 || ttl > 600 {
		t.Errorf("gone: revision %d, headers %v; want a tombstone above %d with at most the 600 s it had", m.Sequence, m.Header, below)
	}
	// Reads through the store see the same values.
	err = s.View(ctx, func(tx *kv.Tx) error {
		for i := range 4 {
			v, err := tx.GetBytes(ctx, fmt.Sprintf("cold.%d", i))
			if err != nil || string(v) != fmt.Sprintf("v%d", i) {
				t.Errorf("cold.%d: %q, %v", i, v, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing left below: a second call has nothing to do.
	if n, err := s.Rewrite(ctx, below, 0); err != nil || n != 0 {
		t.Fatalf("Rewrite again: %d, %v; want 0", n, err)
	}
}
