package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
	"github.com/starbus/starbus/kv/index"
)

// Example keeps a leaderboard and an area of interest over a world's
// players: each player's record is a key under "pl.", holding its position
// and its score.
func Example() {
	ctx := context.Background()
	env, stop, err := natstest.StartExample("example") // an embedded server and the world's stream
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	js, world := env.JS, env.World
	store, err := kv.Open(ctx, js, world, kv.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	type player struct {
		X, Y  int
		Score int `json:"score"`
	}
	_ = store.Update(ctx, func(tx *kv.Tx) error {
		return errors.Join(tx.Put("pl.ann", player{X: 1, Y: 2, Score: 7}),
			tx.Put("pl.bob", player{X: 40, Y: 9, Score: 12}), tx.Put("pl.cat", player{X: 3, Y: 1, Score: 3}))
	})

	ix, err := index.Open(ctx, js, world, index.Options{
		Prefix:  "pl.",
		Ordered: []string{"score"},
		Point: func(_ string, v []byte) (x, y float64, ok bool) {
			var p player
			if json.Unmarshal(v, &p) != nil {
				return 0, 0, false
			}
			return float64(p.X), float64(p.Y), true
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ix.Close()
	_ = ix.Synced(ctx)
	_ = ix.Descend("score", func(key string, v []byte) bool {
		fmt.Println("leader:", key, string(v))
		return false // the first only
	})
	var near []string
	_ = ix.Within(0, 0, 5, 5, func(key string, _ []byte) bool { near = append(near, key); return true })
	slices.Sort(near)
	fmt.Println("near the origin:", near)
	// Output:
	// leader: pl.bob {"X":40,"Y":9,"score":12}
	// near the origin: [pl.ann pl.cat]
}
