package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
	"github.com/starbus/starbus/kv/index"
)

// player is what the tests store under "pl.<name>".
type player struct {
	X     int `json:"x"`
	Y     int `json:"y"`
	Score int `json:"score"`
}

// playerPoint places a player's value at its position.
func playerPoint(_ string, v []byte) (float64, float64, bool) {
	var p player
	if json.Unmarshal(v, &p) != nil {
		return 0, 0, false
	}
	return float64(p.X), float64(p.Y), true
}

func openIndex(t *testing.T, env *natstest.Env) *index.Index {
	t.Helper()
	ix, err := index.Open(t.Context(), env.JS, env.World, index.Options{Prefix: "pl.", Ordered: []string{"score"}, Point: playerPoint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := ix.Synced(ctx); err != nil {
		t.Fatal(err)
	}
	return ix
}

func put(t *testing.T, s *kv.Store, kvs map[string]any) {
	t.Helper()
	err := s.Update(t.Context(), func(tx *kv.Tx) error {
		for k, v := range kvs {
			var err error
			if v == nil {
				err = tx.Delete(k)
			} else {
				err = tx.Put(k, v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// within returns the keys in a rectangle, sorted.
func within(t *testing.T, ix *index.Index, x0, y0, x1, y1 float64) []string {
	t.Helper()
	var keys []string
	if err := ix.Within(x0, y0, x1, y1, func(k string, _ []byte) bool { keys = append(keys, k); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// TestIndex: an index opened on a world that already holds keys starts
// with their latest values (and nothing outside its prefix), then follows
// writes, moves and deletions; area, nearest and ordered queries answer
// from it.
func TestIndex(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	s, err := kv.Open(t.Context(), env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, map[string]any{"pl.ann": player{1, 1, 10}, "pl.bob": player{5, 5, 30}, "other.x": player{1, 1, 99}})
	put(t, s, map[string]any{"pl.ann": player{2, 2, 20}}) // only the latest counts

	ix := openIndex(t, env)
	if n := ix.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2 (pl.ann, pl.bob)", n)
	}
	if got := within(t, ix, 0, 0, 3, 3); !slices.Equal(got, []string{"pl.ann"}) {
		t.Fatalf("within (0,0)-(3,3): %v", got)
	}

	put(t, s, map[string]any{"pl.cat": player{3, 3, 50}, "pl.bob": player{2, 3, 5}})
	natstest.Eventually(t, 5*time.Second, func() bool {
		return slices.Equal(within(t, ix, 0, 0, 3, 3), []string{"pl.ann", "pl.bob", "pl.cat"})
	}, "the index follows new keys and moves: %v", within(t, ix, 0, 0, 3, 3))

	var board []string
	if err := ix.Descend("score", func(k string, _ []byte) bool { board = append(board, k); return len(board) < 2 }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(board, []string{"pl.cat", "pl.ann"}) {
		t.Fatalf("top two by score: %v", board)
	}
	var near []string
	var dists []float64
	if err := ix.Nearby(0, 0, func(k string, _ []byte, d float64) bool {
		near, dists = append(near, k), append(dists, d)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(near, []string{"pl.ann", "pl.bob", "pl.cat"}) || dists[0] < 2.82 || dists[0] > 2.83 {
		t.Fatalf("nearest to the origin: %v at %v", near, dists)
	}

	put(t, s, map[string]any{"pl.ann": nil})
	natstest.Eventually(t, 5*time.Second, func() bool { _, ok := ix.Get("pl.ann"); return !ok }, "a deletion leaves the index")
	if got := within(t, ix, 0, 0, 3, 3); !slices.Equal(got, []string{"pl.bob", "pl.cat"}) {
		t.Fatalf("after the deletion: %v", got)
	}
	if v, ok := ix.Get("pl.cat"); !ok || string(v) != `{"x":3,"y":3,"score":50}` {
		t.Fatalf("Get(pl.cat) = %s %v", v, ok)
	}

	if err := ix.Ascend("hp", func(string, []byte) bool { return true }); !errors.Is(err, index.ErrNoField) {
		t.Errorf("Ascend on a field not indexed: %v", err)
	}
	ix.Close()
	if err := ix.Within(0, 0, 1, 1, func(string, []byte) bool { return true }); !errors.Is(err, index.ErrClosed) {
		t.Errorf("Within after Close: %v", err)
	}
}

// TestIndexBadInput: values that are not what the index expects are kept
// out of the area queries, not fatal; options that make no sense are
// refused by name.
func TestIndexBadInput(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	for _, o := range []index.Options{
		{}, {Prefix: "pl"}, {Prefix: ".pl."}, {Prefix: "p*."}, {Prefix: "pl.", Ordered: []string{"a", "a"}},
	} {
		if ix, err := index.Open(ctx, env.JS, env.World, o); err == nil {
			ix.Close()
			t.Errorf("Open(%+v) accepted", o)
		}
	}
	ix := openIndex(t, env) // on an empty world: synced at once
	if _, err := env.JS.Publish(ctx, "sb.test.kv.pl.junk", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool { _, ok := ix.Get("pl.junk"); return ok }, "the junk value arrives")
	if got := within(t, ix, -1e9, -1e9, 1e9, 1e9); len(got) != 0 {
		t.Fatalf("a value without a point is in an area: %v", got)
	}
	var all []string
	if err := ix.Ascend("score", func(k string, _ []byte) bool { all = append(all, k); return true }); err != nil || !slices.Equal(all, []string{"pl.junk"}) {
		t.Fatalf("ordered query over a junk value: %v %v", all, err)
	}
	noPoints, err := index.Open(ctx, env.JS, env.World, index.Options{Prefix: "pl."})
	if err != nil {
		t.Fatal(err)
	}
	defer noPoints.Close()
	if err := noPoints.Nearby(0, 0, func(string, []byte, float64) bool { return true }); !errors.Is(err, index.ErrNoPoints) {
		t.Errorf("Nearby without points: %v", err)
	}
}
