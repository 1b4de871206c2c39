package kv_test

import (
	"errors"
	"testing"

	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestReplicated runs the transaction guarantees on a 3-node JetStream
// cluster with the world's stream replicated on every node (R3), with one
// store connected to each node. On a replicated stream the server reports
// a stale expected sequence with another error code (10164) than on a
// single server (10071); both must be conflicts.
func TestReplicated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := natstest.StartCluster(t, 3, natstest.Options{})
	var stores []*kv.Store
	for i := range 3 {
		s, err := kv.Open(t.Context(), c.JetStream(t, i), c.World, patient)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	ctx := t.Context()

	t.Run("conflict", func(t *testing.T) {
		if err := stores[0].Update(ctx, func(tx *kv.Tx) error { return tx.Put("c", 1) }); err != nil {
			t.Fatal(err)
		}
		stale := stores[1].Begin()
		var n int
		if err := stale.Get(ctx, "c", &n); err != nil {
			t.Fatal(err)
		}
		if err := stores[2].Update(ctx, func(tx *kv.Tx) error {
			var m int
			if err := tx.Get(ctx, "c", &m); err != nil {
				return err
			}
			return tx.Put("c", m+1)
		}); err != nil {
			t.Fatal(err)
		}
		_ = stale.Put("c", n+10)
		_ = stale.Put("other", 1) // two messages: an atomic batch
		if err := stores[1].Commit(ctx, stale); !errors.Is(err, kv.ErrConflict) {
			t.Fatalf("stale commit on R3: %v, want ErrConflict", err)
		}
	})
	// Checks read through a store without a cache, from the stream leader's
	// view once replicas agree.
	check := func(t *testing.T) *kv.Store {
		s, err := kv.Open(ctx, c.JetStream(t, 0), c.World, kv.Options{CacheSize: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("counter", func(t *testing.T) { counter(t, stores, check(t), 24, 50) })
	t.Run("bank", func(t *testing.T) { bank(t, stores, check(t), 12, 40) })
}
