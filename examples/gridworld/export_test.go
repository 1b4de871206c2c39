package gridworld

import (
	"context"

	"github.com/starbus/starbus/kv"
)

// Teleport puts an online player on a free cell (x, y), as if it had
// walked there.
func (g *Game) Teleport(ctx context.Context, store *kv.Store, name string, x, y int) error {
	return store.Update(ctx, func(tx *kv.Tx) error {
		var p pos
		if _, err := get(ctx, tx, keyPos(name), &p); err != nil {
			return err
		}
		var session string
		if _, err := get(ctx, tx, keyOnline(name), &session); err != nil {
			return err
		}
		members := func(r string, add bool) error {
			m := map[string]string{}
			if _, err := get(ctx, tx, keyMembers(r), &m); err != nil {
				return err
			}
			if add {
				m[name] = session
			} else {
				delete(m, name)
			}
			return tx.Put(keyMembers(r), m)
		}
		if err := members(g.cfg.Region(p.X, p.Y), false); err != nil {
			return err
		}
		if err := members(g.cfg.Region(x, y), true); err != nil {
			return err
		}
		if err := tx.Delete(keyCell(p.X, p.Y)); err != nil {
			return err
		}
		if err := tx.Put(keyCell(x, y), cell{P: name}); err != nil {
			return err
		}
		return tx.Put(keyPos(name), pos{X: x, Y: y, Online: true})
	})
}

// Drop spawns an item of kind on (x, y), counted as spawned.
func (g *Game) Drop(ctx context.Context, store *kv.Store, kind string, x, y int) error {
	return store.Update(ctx, func(tx *kv.Tx) error {
		r := g.cfg.Region(x, y)
		piles := map[string][]string{}
		if _, err := get(ctx, tx, keyItems(r), &piles); err != nil {
			return err
		}
		piles[pileKey(x, y)] = append(piles[pileKey(x, y)], kind)
		spawned := Items{}
		if _, err := get(ctx, tx, keySpawned, &spawned); err != nil {
			return err
		}
		spawned[kind]++
		if err := tx.Put(keySpawned, spawned); err != nil {
			return err
		}
		return tx.Put(keyItems(r), piles)
	})
}
