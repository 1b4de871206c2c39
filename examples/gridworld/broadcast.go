package gridworld

import (
	"context"
	"encoding/json"

	"github.com/starbus/starbus/handlers"
)

// Who hears what: every player is in two channels, which the world
// creates once (in ensure), and looks at one area:
//
//	global        reliable channel       shouts
//	chat-<r>      reliable channel       what is said in region r
//	near          best-effort area       moves, NPC steps, departures within View
//
// A login joins the two channels of the player's region, moves the
// session's events to that region (Task.MoveSession) and sets its
// interest in near at its cell; a move across a region border leaves the
// old region's chat and joins the new one's, and every move moves the
// interest, in the same transaction as the move. The end of a session
// leaves them all (the runtime does it).
//
// Worlds created before the area kept moves in a best-effort channel per
// region, pos-<r>; such channels stay, unused.

// Channel names.
const (
	chanGlobal = "global"
	chanNear   = "near" // the area's channel at the client
)

func chanChat(region string) string { return "chat-" + region }

// createChannels creates every channel of the world.
func (g *Game) createChannels(ctx context.Context, t *handlers.Task) error {
	reliable := handlers.ChannelOptions{Delivery: handlers.Reliable}
	if _, err := t.CreateChannel(ctx, chanGlobal, reliable); err != nil {
		return err
	}
	for _, r := range g.cfg.Regions() {
		if _, err := t.CreateChannel(ctx, chanChat(r), reliable); err != nil {
			return err
		}
	}
	return nil
}

// enter makes session hear region (and, with global, the global channel),
// and sends its later events to the region.
func (g *Game) enter(ctx context.Context, t *handlers.Task, session, region string, global bool) error {
	if err := eachChannel(ctx, t, region, global, func(ch *handlers.Channel) error { return ch.Join(ctx, session) }); err != nil {
		return err
	}
	return t.MoveSession(session, region)
}

// leave stops session hearing region (and, with global, the global
// channel).
func (g *Game) leave(ctx context.Context, t *handlers.Task, session, region string, global bool) error {
	return eachChannel(ctx, t, region, global, func(ch *handlers.Channel) error { return ch.Leave(ctx, session) })
}

// eachChannel calls fn with the channels of region, and the global one.
func eachChannel(ctx context.Context, t *handlers.Task, region string, global bool, fn func(*handlers.Channel) error) error {
	names := []string{chanChat(region)}
	if global {
		names = append(names, chanGlobal)
	}
	for _, name := range names {
		ch, err := t.Channel(ctx, name)
		if err != nil {
			return err
		}
		if err := fn(ch); err != nil {
			return err
		}
	}
	return nil
}

// tell sends r on the channel name, if the task commits.
func tell(ctx context.Context, t *handlers.Task, name string, r Reply) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ch, err := t.Channel(ctx, name)
	if err != nil {
		return err
	}
	return ch.Send(b)
}

// look moves the session's interest in near to (x, y).
func (g *Game) look(ctx context.Context, t *handlers.Task, x, y int) error {
	return t.SetInterest(ctx, g.near, t.Session, float64(x), float64(y))
}

// publishAt sends r to the players within View of (x, y), if the task
// commits.
func (g *Game) publishAt(t *handlers.Task, x, y int, r Reply) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.PublishAt(g.near, float64(x), float64(y), b)
}

// seen returns who stands in the part of the square of View around (x, y)
// that the square around (fromX, fromY) does not hold (all of it if !from),
// name aside: the snapshot a move owes its player, since its interest
// shows only what moves from now on. It peeks (Task.Peek): the cells are
// not read in the transaction, so a move never conflicts over what its
// player merely sees, and what it shows may be a moment old.
func (g *Game) seen(ctx context.Context, t *handlers.Task, name string, fromX, fromY int, from bool, x, y int) ([]Player, error) {
	var cells [][2]int
	for _, r := range g.near.Seen(float64(fromX), float64(fromY), from, float64(x), float64(y)) {
		for cy := int(r.MinY); cy <= int(r.MaxY); cy++ {
			for cx := int(r.MinX); cx <= int(r.MaxX); cx++ {
				if !g.cfg.Open(cx, cy) || from && g.near.Covers(float64(fromX), float64(fromY), float64(cx), float64(cy)) {
					continue
				}
				cells = append(cells, [2]int{cx, cy})
			}
		}
	}
	return g.standing(ctx, t, name, cells)
}

// standing returns who stands in cells, name aside, peeked (see seen).
// Cells not seen lately are fetched in one round trip, not one each.
func (g *Game) standing(ctx context.Context, t *handlers.Task, name string, cells [][2]int) ([]Player, error) {
	keys := make([]string, len(cells))
	for i, c := range cells {
		keys[i] = keyCell(c[0], c[1])
	}
	if err := t.Prefetch(ctx, keys...); err != nil {
		return nil, err
	}
	var out []Player
	for i, k := range keys {
		var c cell
		if ok, err := t.Peek(ctx, k, &c); err != nil {
			return nil, err
		} else if !ok {
			continue
		}
		cx, cy := cells[i][0], cells[i][1]
		switch {
		case c.P != "" && c.P != name:
			out = append(out, Player{N: c.P, X: cx, Y: cy})
		case c.NPC > 0:
			out = append(out, Player{N: npcName(c.NPC - 1), X: cx, Y: cy, NPC: true})
		}
	}
	return out, nil
}
