package gridworld

import (
	"context"
	"encoding/json"

	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// TaskTeleport is the type of the test-only task that teleports a player.
const TaskTeleport = "gw.test.teleport"

// Teleport is what a TaskTeleport event carries.
type Teleport struct {
	Name string
	X, Y int
}

// Teleporter handles TaskTeleport events: it puts an online player on a
// free cell, as if it had walked there (cells, region, channels).
func (g *Game) Teleporter() handlers.Middleware {
	return func(next handlers.Handler) handlers.Handler {
		return handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
			if t.Type != TaskTeleport {
				return next.ServeTask(ctx, t)
			}
			var tp Teleport
			if err := json.Unmarshal(t.Data, &tp); err != nil {
				return handlers.Permanent(err)
			}
			return g.teleport(ctx, t, tp)
		})
	}
}

func (g *Game) teleport(ctx context.Context, t *handlers.Task, tp Teleport) error {
	var p pos
	if _, err := t.Lookup(ctx, keyPos(tp.Name), &p); err != nil {
		return err
	}
	var session string
	if _, err := t.Lookup(ctx, keyOnline(tp.Name), &session); err != nil {
		return err
	}
	if err := t.Delete(keyCell(p.X, p.Y)); err != nil {
		return err
	}
	if err := t.Put(keyCell(tp.X, tp.Y), cell{P: tp.Name}); err != nil {
		return err
	}
	if err := t.Put(keyPos(tp.Name), pos{X: tp.X, Y: tp.Y, Online: true}); err != nil {
		return err
	}
	t.Session = session // look and cross work on the task's session
	if err := g.look(ctx, t, tp.X, tp.Y); err != nil {
		return err
	}
	from, to := g.cfg.Region(p.X, p.Y), g.cfg.Region(tp.X, tp.Y)
	if from == to {
		return nil
	}
	return g.cross(ctx, t, tp.Name, from, to)
}

// Drop spawns an item of kind on (x, y), counted as spawned.
func (g *Game) Drop(ctx context.Context, store *kv.Store, kind string, x, y int) error {
	return store.Update(ctx, func(tx *kv.Tx) error {
		r := g.cfg.Region(x, y)
		piles := map[string][]string{}
		if _, err := tx.Lookup(ctx, keyItems(r), &piles); err != nil {
			return err
		}
		piles[pileKey(x, y)] = append(piles[pileKey(x, y)], kind)
		spawned := Items{}
		if _, err := tx.Lookup(ctx, keySpawned, &spawned); err != nil {
			return err
		}
		spawned[kind]++
		if err := tx.Put(keySpawned, spawned); err != nil {
			return err
		}
		return tx.Put(keyItems(r), piles)
	})
}
