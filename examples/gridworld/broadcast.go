package gridworld

import (
	"context"
	"encoding/json"

	"github.com/starbus/starbus/handlers"
)

// Telling many players. Until the platform has channels, a region's news
// goes to each member's session, one message each, and a shout to every
// online player.

// tellRegion sends r to every player of region but except.
func (g *Game) tellRegion(ctx context.Context, t *handlers.Task, region, except string, r Reply) error {
	members := map[string]string{}
	if _, err := get(ctx, t.Tx, keyMembers(region), &members); err != nil {
		return err
	}
	return tell(t, members, except, r)
}

// tellAll sends r to every online player.
func (g *Game) tellAll(ctx context.Context, t *handlers.Task, r Reply) error {
	for _, region := range g.cfg.Regions() {
		if err := g.tellRegion(ctx, t, region, "", r); err != nil {
			return err
		}
	}
	return nil
}

func tell(t *handlers.Task, members map[string]string, except string, r Reply) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	for name, session := range members {
		if name == except {
			continue
		}
		if err := t.Send(session, b); err != nil {
			return err
		}
	}
	return nil
}
