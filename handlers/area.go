package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/kv"
)

// Area is a plane of the world cut into square cells, over which events
// reach the sessions near them: a task publishes an event at a position
// ([Task.PublishAt]), and every session whose interest covers that
// position receives it; a session's interest is a square around a position
// that tasks move ([Task.SetInterest]), typically with the player. Cells
// are subjects: an edge subscribes to the cells its sessions look at, and
// delivers each event to those whose square holds its position. Nothing
// loops over recipients in a task, and an event's cost is the sessions
// that see it, not the sessions in the world.
//
// An Area is a value the game declares once and passes to every call; it
// is not stored, except in each session's interest. Change its Cell or
// its Delivery only with the world stopped: events published with one
// cell size are not found by interests indexed with another, and an edge
// subscribes to a cell's best-effort subject as the first session to look
// at it says.
//
// Its clients receive its events as messages on the channel Name: told
// they joined it at their first interest, that they left it when it is
// cleared. Name must not be the name of a channel of the world; clients
// cannot send on it.
//
// What a session sees, exactly:
//
//   - An event at (x, y) reaches a session whose square (half-side Radius
//     around its interest's position, edges included) holds (x, y) when
//     its edge delivers the event. With Reliable delivery that is the
//     square as of the event's commit: interests and events are stored
//     in the world's stream and an edge applies them in commit order, so
//     a session receives exactly the events published within its square,
//     in commit order, interleaved rightly with its other messages (a
//     move's own reply comes after what it saw before the move). With
//     BestEffort delivery events travel over core NATS after their commit
//     and interests through the stream: an event committed while a
//     session's interest moves may be judged against its square before or
//     after the move (the border case), and an event may be lost.
//   - Reliable area events are kept as a reliable channel's messages are
//     (Config.OutboxTTL): a client that reconnects within the edge's grace
//     receives those it missed, judged against its interest at each.
//     BestEffort events are never replayed.
//   - Interest does not show what is already there: a session that moves
//     receives what happens in its new square from then on. A game sends a
//     snapshot of the newly seen part itself, from committed state (for
//     example from a kv/index spatial index, which costs the transaction
//     no reads and no conflicts); [Area.Seen] names the part.
//   - Areas ignore regions and partitions: a session looks across region
//     borders, and an event reaches every edge that has a session looking
//     at its cell, whichever worker committed it.
type Area struct {
	// Name is the area's name: one token of letters, digits, '-' and
	// '_'; clients receive its events on the channel of that name.
	Name string
	// Cell is a cell's side, in the game's units: a fraction of Radius to
	// about twice it (a session's square touches at most 15×15 cells).
	Cell float64
	// Radius is the half-side of a session's square of interest.
	Radius float64
	// Delivery is how its events travel: Reliable (stored with the
	// commit, exact) or BestEffort (core NATS, cheaper, may be lost).
	Delivery Delivery
}

// interest returns a session's interest at (x, y).
func (a Area) interest(x, y float64) bus.Interest {
	return bus.Interest{Area: a.Name, X: x, Y: y, Radius: a.Radius, Cell: a.Cell, Delivery: a.Delivery.String()}
}

// at returns a session's interest at (x, y), or what is wrong with the
// area or the position.
func (a Area) at(x, y float64) (bus.Interest, error) {
	if a.Delivery > BestEffort {
		return bus.Interest{}, fmt.Errorf("handlers: area %q: unknown delivery %d", a.Name, a.Delivery)
	}
	in := a.interest(x, y)
	if err := in.Validate(); err != nil {
		return in, fmt.Errorf("handlers: area %q: %w", a.Name, err)
	}
	return in, nil
}

// Validate reports what is wrong with the area.
func (a Area) Validate() error {
	_, err := a.at(0, 0)
	return err
}

// Covers reports whether a session looking from (cx, cy) sees (x, y).
func (a Area) Covers(cx, cy, x, y float64) bool { return a.interest(cx, cy).Covers(x, y) }

// Rect is a rectangle of the plane, bounds included.
type Rect struct{ MinX, MinY, MaxX, MaxY float64 }

// Seen returns the parts of the square seen from (x, y) that the square
// seen from (fromX, fromY) does not hold: what a session moving between
// them starts to see, as at most two rectangles, for a snapshot. A first
// look (no previous position) is the whole square: pass ok false.
func (a Area) Seen(fromX, fromY float64, ok bool, x, y float64) []Rect {
	r := a.Radius
	to := Rect{x - r, y - r, x + r, y + r}
	if !ok {
		return []Rect{to}
	}
	from := Rect{fromX - r, fromY - r, fromX + r, fromY + r}
	if from.MaxX < to.MinX || to.MaxX < from.MinX || from.MaxY < to.MinY || to.MaxY < from.MinY {
		return []Rect{to}
	}
	var out []Rect
	// Columns of to left or right of from, full height; then the rows
	// above or below from, within from's columns.
	if to.MinX < from.MinX {
		out = append(out, Rect{to.MinX, to.MinY, from.MinX, to.MaxY})
	}
	if to.MaxX > from.MaxX {
		out = append(out, Rect{from.MaxX, to.MinY, to.MaxX, to.MaxY})
	}
	x0, x1 := max(to.MinX, from.MinX), min(to.MaxX, from.MaxX)
	if to.MinY < from.MinY {
		out = append(out, Rect{x0, to.MinY, x1, from.MinY})
	}
	if to.MaxY > from.MaxY {
		out = append(out, Rect{x0, from.MaxY, x1, to.MaxY})
	}
	return out
}

// SetInterest makes session look at area a from (x, y), from this task's
// commit on: its client receives the area's events at positions in the
// square of half-side a.Radius around it (see [Area]). The change is
// atomic with the task's other writes, so a move's new position and the
// session's new square take effect together. Setting the interest where it
// is already does nothing.
func (t *Task) SetInterest(ctx context.Context, a Area, session string, x, y float64) error {
	in, err := a.at(x, y)
	if err != nil {
		return err
	}
	prev, err := t.interest(ctx, a, session)
	if err != nil {
		return err
	}
	if prev != nil && *prev == in {
		return nil
	}
	if err := t.tx.Put(bus.InterestKey(session, a.Name), in); err != nil {
		return err
	}
	return t.interestNotice(session, bus.InterestNotice{Interest: in, Prev: prev})
}

// ClearInterest ends session's interest in area a: its client is told it
// left the area's channel. Clearing an interest the session does not have
// does nothing. A session's interests end with it.
func (t *Task) ClearInterest(ctx context.Context, a Area, session string) error {
	if err := a.Validate(); err != nil {
		return err
	}
	prev, err := t.interest(ctx, a, session)
	if err != nil || prev == nil {
		return err
	}
	if err := t.tx.Delete(bus.InterestKey(session, a.Name)); err != nil {
		return err
	}
	return t.interestNotice(session, bus.InterestNotice{Interest: *prev, Prev: prev, Drop: true})
}

// Interest returns where session looks at area a from, if it does.
func (t *Task) Interest(ctx context.Context, a Area, session string) (x, y float64, ok bool, err error) {
	return SessionInterest(ctx, t.tx, a, session)
}

func (t *Task) interest(ctx context.Context, a Area, session string) (*bus.Interest, error) {
	return interest(ctx, t.tx, a, session)
}

// SessionInterest returns where session looks at area a from, as tx sees
// it: for tools and checks that read a world outside a task (see
// [kv.Store.View]). Tasks use [Task.Interest].
func SessionInterest(ctx context.Context, tx *kv.Tx, a Area, session string) (x, y float64, ok bool, err error) {
	in, err := interest(ctx, tx, a, session)
	if err != nil || in == nil {
		return 0, 0, false, err
	}
	return in.X, in.Y, true, nil
}

func interest(ctx context.Context, tx *kv.Tx, a Area, session string) (*bus.Interest, error) {
	if err := bus.ValidName(session); err != nil {
		return nil, fmt.Errorf("session %q: %w", session, err)
	}
	var in bus.Interest
	if ok, err := tx.Lookup(ctx, bus.InterestKey(session, a.Name), &in); err != nil || !ok {
		return nil, err
	}
	return &in, nil
}

// interestNotice queues the notice that tells session's edge of n, in
// order with the session's messages.
func (t *Task) interestNotice(session string, n bus.InterestNotice) error {
	subj, err := t.world.Session(session)
	if err != nil {
		return err
	}
	m := t.out(subj)
	m.Header.Set(bus.HeaderNotice, bus.NoticeInterest)
	m.Header.Set(bus.HeaderChannel, n.Area)
	if m.Data, err = json.Marshal(n); err != nil {
		return err
	}
	return t.tx.Publish(m)
}

// PublishAt queues data as an event at (x, y) of area a, sent if the task
// commits: every session whose interest covers (x, y) receives it on the
// channel a.Name (see [Area] for exactly which).
func (t *Task) PublishAt(a Area, x, y float64, data []byte) error {
	if _, err := a.at(x, y); err != nil {
		return err
	}
	cx, cy := bus.CellOf(x, a.Cell), bus.CellOf(y, a.Cell)
	if a.Delivery == BestEffort {
		subj, err := t.world.LiveArea(a.Name, cx, cy)
		if err != nil {
			return err
		}
		m := t.liveMsg(subj, data)
		m.Header.Set(bus.HeaderAt, bus.FormatAt(x, y))
		return nil
	}
	subj, err := t.world.Area(a.Name, cx, cy)
	if err != nil {
		return err
	}
	m := t.out(subj)
	m.Data = data
	m.Header.Set(bus.HeaderAt, bus.FormatAt(x, y))
	m.Header.Set(bus.HeaderEventSeq, strconv.FormatUint(t.EventSeq, 10))
	return t.tx.Publish(m)
}

// clearInterests ends every interest of session: its end ends them.
func (t *Task) clearInterests(ctx context.Context, session string) error {
	keys, err := t.tx.List(ctx, bus.InterestPrefix(session))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.tx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
