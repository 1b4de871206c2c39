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
// their time (under a second: not at all); keys written since stay where
// they are.
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
	// A tombstone of another store's, whose deletions last a second.
	short := second(t, env, kv.Options{TombstoneTTL: time.Second})
	for _, del := range []bool{false, true} {
		err := short.Update(ctx, func(tx *kv.Tx) error {
			if del {
				return tx.Delete("brief")
			}
			return tx.PutBytes("brief", []byte("x"))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	briefRev, _ := rev("brief")
	below := briefRev + 1
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

	if r, _ := rev("gone"); r != goneRev {
		t.Errorf("gone moved to %d by a rewrite of the 2 oldest", r)
	}
	// The rest: the 2 values left and the tombstone; the tombstone with
	// under a second left expires where it is.
	if n, err := s.Rewrite(ctx, below, 0); err != nil || n != 3 {
		t.Fatalf("Rewrite: %d, %v; want the 2 values left and one tombstone", n, err)
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
	ttl, _ := strconv.Atoi(m.Header.Get(jetstream.MsgTTLHeader))
	if m.Sequence < below || !bus.IsDelete(m.Header) || ttl < 590 || ttl >= 600 {
		t.Errorf("gone: revision %d, headers %v; want a tombstone above %d with under the 600 s it had", m.Sequence, m.Header, below)
	}
	// Copied forward again, it keeps losing time: a tombstone copied
	// round after round still expires.
	if _, err := s.Rewrite(ctx, m.Sequence+1, 0); err != nil {
		t.Fatal(err)
	}
	again, err := env.Stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if ttl2, _ := strconv.Atoi(again.Header.Get(jetstream.MsgTTLHeader)); again.Sequence <= m.Sequence || ttl2 >= ttl {
		t.Errorf("gone copied again: revision %d → %d, TTL %d → %d; want a later revision and less time", m.Sequence, again.Sequence, ttl, ttl2)
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
	// Nothing left below the first floor: a call has nothing to do.
	if n, err := s.Rewrite(ctx, below, 0); err != nil || n != 0 {
		t.Fatalf("Rewrite again: %d, %v; want 0", n, err)
	}
}

// TestRevisions: a write leaves the revision it supersedes stored, a
// deletion rolls its key up; Revisions counts both and finds the oldest
// latest revision, below which a purge of the keys removes only
// superseded revisions, and a rewrite moves it up.
func TestRevisions(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	s := open(t, env, kv.Options{})
	ctx := t.Context()
	update := func(fn func(tx *kv.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	last := func(key string) uint64 {
		t.Helper()
		subj, _ := env.World.Key(key)
		m, err := env.Stream.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return m.Sequence
	}
	revisions := func() kv.Revisions {
		t.Helper()
		rv, err := s.Revisions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rv
	}
	// What the world holds before the test's keys (the store's own).
	base := revisions()

	update(func(tx *kv.Tx) error { return tx.Put("cold", "c") })
	for i := range 5 {
		update(func(tx *kv.Tx) error { return tx.Put("hot", i) })
	}
	for i := range 3 {
		update(func(tx *kv.Tx) error { return tx.Put("gone", i) })
	}
	update(func(tx *kv.Tx) error { return tx.Delete("gone") })

	rv := revisions()
	// cold 1, hot 5, gone 3 and its tombstone.
	if got, want := rv.Stored-base.Stored, uint64(10); got != want {
		t.Errorf("stored %d messages on the keys, want %d: %+v", got, want, rv)
	}
	if got, want := rv.Keys-base.Keys, uint64(3); got != want {
		t.Errorf("%d keys, want %d: %+v", got, want, rv)
	}
	if got, want := rv.Superseded()-base.Superseded(), uint64(7); got != want {
		t.Errorf("%d superseded, want %d: %+v", got, want, rv)
	}
	if base.Keys == 0 && rv.Floor != last("cold") {
		t.Errorf("floor %d, want cold's %d", rv.Floor, last("cold"))
	}

	// Purged below the oldest latest revision, after the rewrite that
	// moves it up: the superseded revisions go, every value stays.
	if _, err := s.Rewrite(ctx, last("gone"), 0); err != nil {
		t.Fatal(err)
	}
	rv = revisions()
	if want := last("gone"); rv.Floor != want {
		t.Fatalf("floor %d after the rewrite, want gone's tombstone at %d", rv.Floor, want)
	}
	if err := env.Stream.Purge(ctx, jetstream.WithPurgeSubject(env.World.KeyFilter()), jetstream.WithPurgeSequence(rv.Floor)); err != nil {
		t.Fatal(err)
	}
	if rv = revisions(); rv.Superseded() != 0 {
		t.Errorf("%d superseded after the purge: %+v", rv.Superseded(), rv)
	}
	fresh := second(t, env, kv.Options{}) // nothing cached
	err := fresh.View(ctx, func(tx *kv.Tx) error {
		var cold string
		var hot int
		if err := tx.Get(ctx, "cold", &cold); err != nil || cold != "c" {
			t.Errorf("cold = %q, %v; want \"c\"", cold, err)
		}
		if err := tx.Get(ctx, "hot", &hot); err != nil || hot != 4 {
			t.Errorf("hot = %d, %v; want 4", hot, err)
		}
		if ok, err := tx.Exists(ctx, "gone"); err != nil || ok {
			t.Errorf("gone exists: %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
