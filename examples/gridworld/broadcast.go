package gridworld

import (
	"context"
	"encoding/json"

	"github.com/starbus/starbus/handlers"
)

// Who hears what: every player is in three channels, which the world
// creates once (in ensure):
//
//	global        reliable      shouts
//	chat-<r>      reliable      what is said in region r
//	pos-<r>       best effort   moves, NPC steps, departures in region r
//
// A login joins the three of the player's region and moves the session's
// events to that region (Task.MoveSession); a move across a region border
// leaves the old region's two and joins the new one's. The end of a
// session leaves them all (the runtime does it).

// Channel names.
const chanGlobal = "global"

func chanChat(region string) string { return "chat-" + region }
func chanPos(region string) string  { return "pos-" + region }

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
		if _, err := t.CreateChannel(ctx, chanPos(r), handlers.ChannelOptions{Delivery: handlers.BestEffort}); err != nil {
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
	names := []string{chanChat(region), chanPos(region)}
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
