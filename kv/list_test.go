package kv_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

func TestList(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	s := open(t, env, kv.Options{})
	ctx := t.Context()
	err := s.Update(ctx, func(tx *kv.Tx) error {
		for _, k := range []string{"room.a.m.ann", "room.a.m.bob", "room.a.m.cy.x", "room.a", "room.ab.m.dan", "room.b.m.eve", "room.a.m.gone"} {
			if err := tx.Put(k, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Delete("room.a.m.gone") }); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.Update(ctx, func(tx *kv.Tx) error {
		if err := tx.Put("room.a.m.fay", "fay"); err != nil { // written in the tx: listed
			return err
		}
		if err := tx.Delete("room.a.m.bob"); err != nil { // deleted in the tx: not listed
			return err
		}
		var err error
		if got, err = tx.List(ctx, "room.a"); err != nil {
			return err
		}
		var v string // a listed key's value comes with the list
		if err := tx.Get(ctx, "room.a.m.ann", &v); err != nil || v != "room.a.m.ann" {
			t.Errorf("get listed key: %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"room.a.m.ann", "room.a.m.cy.x", "room.a.m.fay"}
	if !slices.Equal(got, want) {
		t.Fatalf("List(room.a) = %v, want %v", got, want)
	}
	// Empty range; invalid prefix.
	err = s.View(ctx, func(tx *kv.Tx) error {
		keys, err := tx.List(ctx, "nothing.here")
		if err != nil || len(keys) != 0 {
			t.Errorf("empty range: %v, %v", keys, err)
		}
		if _, err := tx.List(ctx, "bad..prefix"); err == nil {
			t.Error("List of an invalid prefix: no error")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestListRangeConflict: a transaction that listed a prefix conflicts with
// a commit that created, changed or deleted a key under it after the List;
// writes outside the prefix do not disturb it.
func TestListRangeConflict(t *testing.T) {
	for _, tc := range []struct {
		name     string
		write    func(tx *kv.Tx) error
		conflict bool
	}{
		{"insert under prefix", func(tx *kv.Tx) error { return tx.Put("ch.g.m.new", 1) }, true},
		{"update under prefix", func(tx *kv.Tx) error { return tx.Put("ch.g.m.a", 2) }, true},
		{"delete under prefix", func(tx *kv.Tx) error { return tx.Delete("ch.g.m.a") }, true},
		{"write elsewhere", func(tx *kv.Tx) error { return tx.Put("ch.h.m.x", 1) }, false},
		{"write the prefix key itself", func(tx *kv.Tx) error { return tx.Put("ch.g.m", 1) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := natstest.Start(t, natstest.Options{})
			s, other := open(t, env, kv.Options{}), second(t, env)
			ctx := t.Context()
			if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put("ch.g.m.a", 1) }); err != nil {
				t.Fatal(err)
			}
			tx := s.Begin()
			if _, err := tx.List(ctx, "ch.g.m"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Put("ch.g.closed", true); err != nil {
				t.Fatal(err)
			}
			if err := other.Update(ctx, tc.write); err != nil {
				t.Fatal(err)
			}
			err := s.Commit(ctx, tx)
			if got := errors.Is(err, kv.ErrConflict); got != tc.conflict {
				t.Fatalf("commit after %s: %v, want conflict %v", tc.name, err, tc.conflict)
			}
			// Validate tells the same.
			tx = s.Begin()
			if _, err := tx.List(ctx, "ch.g.m"); err != nil {
				t.Fatal(err)
			}
			if err := other.Update(ctx, tc.write); err != nil {
				t.Fatal(err)
			}
			err = s.Validate(ctx, tx)
			tx.Discard()
			if got := errors.Is(err, kv.ErrConflict); got != tc.conflict || !got && err != nil {
				t.Fatalf("Validate after %s: %v, want conflict %v", tc.name, err, tc.conflict)
			}
		})
	}
}

// TestListLarge reads a range past the server's 1,024 subjects per request.
func TestListLarge(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	s := open(t, env, kv.Options{})
	ctx := t.Context()
	const n = 1500
	for i := 0; i < n; i += 300 {
		err := s.Update(ctx, func(tx *kv.Tx) error {
			for j := i; j < i+300; j++ {
				if err := tx.Put(fmt.Sprintf("big.k%04d", j), j); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.Update(ctx, func(tx *kv.Tx) error {
		keys, err := tx.List(ctx, "big")
		if err != nil {
			return err
		}
		if len(keys) != n || keys[0] != "big.k0000" || keys[n-1] != fmt.Sprintf("big.k%04d", n-1) {
			t.Errorf("List(big): %d keys, first %q", len(keys), keys[0])
		}
		return tx.Put("big.done", true) // commits: the range is unchanged
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestListDisjointWritersDoNotConflict: many transactions writing keys of
// their own under one prefix, concurrently, from two processes, all commit
// without a single conflict, and a List afterwards sees every key.
func TestListDisjointWritersDoNotConflict(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	a, b := open(t, env, kv.Options{}), second(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const n = 300
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			tx := s.Begin()
			if err := tx.Put(fmt.Sprintf("ch.all.m.s%03d", i), true); err != nil {
				t.Error(err)
				return
			}
			if err := s.Commit(ctx, tx); errors.Is(err, kv.ErrConflict) {
				conflicts.Add(1)
			} else if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c := conflicts.Load(); c != 0 {
		t.Fatalf("%d of %d disjoint writes under one prefix conflicted", c, n)
	}
	err := a.View(ctx, func(tx *kv.Tx) error {
		keys, err := tx.List(ctx, "ch.all.m")
		if err == nil && len(keys) != n {
			t.Errorf("listed %d keys, want %d", len(keys), n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTombstoneTTL: a deleted key's record is counted expired once it has
// stood the tombstone TTL, not before, and the server leaves it; purged
// below the floor, as compaction does, nothing of the key is left, and it
// still reads as not found.
func TestTombstoneTTL(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	const ttl = 2 * time.Second
	s := open(t, env, kv.Options{TombstoneTTL: ttl})
	ctx := t.Context()
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put("tmp.k", 1) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Delete("tmp.k") }); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	// A store whose tombstones live forever: its deletion is never
	// counted expired, and its copy lives forever too.
	forever := second(t, env, kv.Options{TombstoneTTL: -1})
	if err := forever.Update(ctx, func(tx *kv.Tx) error { return tx.Delete("kept") }); err != nil {
		t.Fatal(err)
	}
	subj, _ := env.World.Key("tmp.k")
	rv, err := s.Revisions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if young := time.Since(deleted) < ttl; young && rv.Expired != 0 {
		t.Fatalf("the tombstone counts expired before its TTL: %+v", rv)
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		rv, err = s.Revisions(ctx)
		return err == nil && rv.Expired == 1
	}, "the tombstone never counted expired")
	if env.Stored(t, subj) == 0 {
		t.Fatal("the server removed the tombstone by itself, with the value it superseded below it")
	}
	if _, err := s.Rewrite(ctx, rv.Floor+1, 0); err != nil {
		t.Fatal(err)
	}
	keptSubj, _ := env.World.Key("kept")
	if m, err := env.Stream.GetLastMsgForSubject(ctx, keptSubj); err != nil || m.Sequence < rv.Floor || m.Header.Get("Starbus-TTL") != "never" || m.Header.Get(jetstream.MsgTTLHeader) != "" {
		t.Fatalf("the forever tombstone's copy: %v, %v; want one above %d that never expires", m, err, rv.Floor)
	}
	if err := env.Stream.Purge(ctx, jetstream.WithPurgeSubject(env.World.KeyFilter()), jetstream.WithPurgeSequence(rv.Floor)); err != nil {
		t.Fatal(err)
	}
	if n := env.Stored(t, subj); n != 0 {
		t.Fatalf("%d messages of the key left after the purge below the floor", n)
	}
	// A cold store reads it as not found; the store whose cache held the
	// tombstone too, and a write based on that commits (after at most one
	// conflict on the cached revision that is gone).
	err = second(t, env).View(ctx, func(tx *kv.Tx) error {
		if ok, err := tx.Exists(ctx, "tmp.k"); err != nil || ok {
			return fmt.Errorf("cold store: exists after expiry: %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx *kv.Tx) error {
		if ok, err := tx.Exists(ctx, "tmp.k"); err != nil || ok {
			return fmt.Errorf("exists after expiry: %v, %v", ok, err)
		}
		return tx.Put("tmp.k", 2)
	})
	if err != nil {
		t.Fatal(err)
	}
}
