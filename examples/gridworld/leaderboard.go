package gridworld

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/examples/gridworld/command"
	"github.com/starbus/starbus/kv/index"
)

// Leaderboard ranks players by the items of each kind they carry. It is
// answered from a local index of the inventories (package kv/index), which
// follows the world's stream: reading it costs the world nothing, however
// often the live map asks, and it is a moment behind the latest trade.
type Leaderboard struct {
	ix *index.Index
}

// Leader is one row of a leaderboard.
type Leader struct {
	N     string `json:"n"`     // the player
	Count int    `json:"count"` // how many of the kind it carries
}

// OpenLeaderboard starts a leaderboard of world w, whose stream must be
// provisioned. Close releases it.
func OpenLeaderboard(ctx context.Context, js jetstream.JetStream, w bus.World) (*Leaderboard, error) {
	ix, err := index.Open(ctx, js, w, index.Options{Prefix: keyInv(""), Ordered: Kinds()})
	if err != nil {
		return nil, err
	}
	return &Leaderboard{ix: ix}, nil
}

// Top returns the n players carrying the most items of kind, most first;
// players carrying none are left out.
func (l *Leaderboard) Top(kind string, n int) ([]Leader, error) {
	out := []Leader{}
	if n <= 0 || !command.KnownKind(kind) {
		return out, nil
	}
	err := l.ix.Descend(kind, func(key string, v []byte) bool {
		var inv Items
		if json.Unmarshal(v, &inv) != nil {
			return true // not an inventory: not ranked
		}
		if inv[kind] <= 0 {
			return false // the rest carry none
		}
		out = append(out, Leader{N: key[len(keyInv("")):], Count: inv[kind]})
		return len(out) < n
	})
	return out, err
}

// Synced waits until the leaderboard holds every inventory stored when it
// opened.
func (l *Leaderboard) Synced(ctx context.Context) error { return l.ix.Synced(ctx) }

// Close stops the leaderboard's index.
func (l *Leaderboard) Close() error { return l.ix.Close() }
