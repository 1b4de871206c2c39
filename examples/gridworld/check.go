package gridworld

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// Report is the outcome of [Game.Check]: the world's counts and every
// violated invariant.
type Report struct {
	Players    int      `json:"players"`    // registered
	Online     int      `json:"online"`     // playing now
	Spawned    Items    `json:"spawned"`    // items ever spawned
	InWorld    Items    `json:"in_world"`   // items lying in the world
	Carried    Items    `json:"carried"`    // items in inventories
	Violations []string `json:"violations"` // empty when every invariant holds
	OK         bool     `json:"ok"`
}

// maxViolations bounds the violations a report lists.
const maxViolations = 50

// Check reads the whole world in one consistent snapshot and checks its
// invariants:
//
//   - items are neither created nor destroyed: for every kind, the items
//     lying in the world plus those carried equal those spawned;
//   - no player in two places: every online player's cell holds exactly
//     that player, no cell holds a player who is elsewhere or offline, and
//     a player is a member of exactly the region it stands in;
//   - nothing stands on a wall; every NPC's cell holds it;
//   - every online player's session is in the global channel and in the
//     chat channel of its region, and in no other region's; and it looks
//     at the area near from the cell it stands on.
//
// It reads every player and every occupied cell, so it is a diagnostic
// for tests and tools, not something to run every second.
func (g *Game) Check(ctx context.Context, store *kv.Store) (Report, error) {
	var rep Report
	err := store.View(ctx, func(tx *kv.Tx) error {
		rep = Report{Spawned: Items{}, InWorld: Items{}, Carried: Items{}}
		bad := func(format string, args ...any) {
			if len(rep.Violations) < maxViolations {
				rep.Violations = append(rep.Violations, fmt.Sprintf(format, args...))
			}
		}
		if _, err := tx.Lookup(ctx, keySpawned, &rep.Spawned); err != nil {
			return err
		}
		// Items in the world, and region membership.
		member := map[string]string{} // name -> region
		for _, r := range g.cfg.Regions() {
			piles := map[string][]string{}
			if _, err := tx.Lookup(ctx, keyItems(r), &piles); err != nil {
				return err
			}
			for k, items := range piles {
				x, y, ok := parsePile(k)
				if !ok || !g.cfg.Open(x, y) || g.cfg.Region(x, y) != r {
					bad("items of region %s lie at %q", r, k)
				}
				for _, it := range items {
					rep.InWorld[it]++
				}
			}
			members := map[string]string{}
			if _, err := tx.Lookup(ctx, keyMembers(r), &members); err != nil {
				return err
			}
			for name := range members {
				if prev, dup := member[name]; dup {
					bad("%s is a member of %s and %s", name, prev, r)
				}
				member[name] = r
			}
		}
		// Players.
		var names []string
		for s := range shards {
			var part []string
			if _, err := tx.Lookup(ctx, keyPlayers(s), &part); err != nil {
				return err
			}
			names = append(names, part...)
		}
		rep.Players = len(names)
		// Most of what follows is not in memory yet: fetch it in bulk.
		var keys []string
		for _, name := range names {
			keys = append(keys, keyInv(name), keyPos(name), keyOnline(name))
		}
		for i := range g.cfg.NPCs {
			keys = append(keys, keyNPC(i))
		}
		if err := tx.Prefetch(ctx, keys...); err != nil {
			return err
		}
		at := map[string]pos{}
		for _, name := range names {
			inv := Items{}
			if _, err := tx.Lookup(ctx, keyInv(name), &inv); err != nil {
				return err
			}
			for k, n := range inv {
				if n < 0 {
					bad("%s carries %d %s", name, n, k)
				}
				rep.Carried[k] += n
			}
			var p pos
			if ok, err := tx.Lookup(ctx, keyPos(name), &p); err != nil {
				return err
			} else if !ok {
				bad("%s is registered but has no position", name)
				continue
			}
			var session string
			online, err := tx.Lookup(ctx, keyOnline(name), &session)
			if err != nil {
				return err
			}
			if online != p.Online {
				bad("%s: online %v but its position says %v", name, online, p.Online)
			}
			if !p.Online {
				if r, ok := member[name]; ok {
					bad("%s is offline but a member of %s", name, r)
				}
				continue
			}
			rep.Online++
			at[name] = p
			if r := g.cfg.Region(p.X, p.Y); member[name] != r {
				bad("%s stands in %s but is a member of %q", name, r, member[name])
			}
			var back string
			if ok, err := tx.Lookup(ctx, keySess(session), &back); err != nil {
				return err
			} else if !ok || back != name {
				bad("%s plays session %s, which plays %q", name, session, back)
			}
		}
		for name := range member {
			if _, ok := at[name]; !ok {
				bad("%s is a member of %s but not online", name, member[name])
			}
		}
		// Channels: a player hears its region and the world, nothing else;
		// and it looks at the area from where it stands.
		sessions := map[string]string{} // online session -> region
		for name, p := range at {
			var session string
			if _, err := tx.Lookup(ctx, keyOnline(name), &session); err != nil {
				return err
			}
			sessions[session] = g.cfg.Region(p.X, p.Y)
			x, y, ok, err := handlers.SessionInterest(ctx, tx, g.near, session)
			if err != nil {
				return err
			}
			if !ok || x != float64(p.X) || y != float64(p.Y) {
				bad("%s stands at %d,%d but its session looks at the area from %v,%v (%v)", name, p.X, p.Y, x, y, ok)
			}
		}
		hears := func(channel string, want func(region string) bool) error {
			members, err := handlers.ChannelMembers(ctx, tx, channel)
			if err != nil {
				return err
			}
			in := map[string]bool{}
			for _, s := range members {
				in[s] = true
				if r, ok := sessions[s]; !ok || !want(r) {
					bad("session %s (region %q) is in channel %s", s, r, channel)
				}
			}
			for s, r := range sessions {
				if want(r) && !in[s] {
					bad("session %s of region %s is not in channel %s", s, r, channel)
				}
			}
			return nil
		}
		if err := hears(chanGlobal, func(string) bool { return true }); err != nil {
			return err
		}
		for _, r := range g.cfg.Regions() {
			if err := hears(chanChat(r), func(region string) bool { return region == r }); err != nil {
				return err
			}
		}
		npcs := map[int]pos{}
		for i := range g.cfg.NPCs {
			var p pos
			if ok, err := tx.Lookup(ctx, keyNPC(i), &p); err != nil {
				return err
			} else if ok {
				npcs[i+1] = p
			}
		}
		// Every cell that holds someone (listed, not read one by one: a big
		// world has tens of thousands).
		seen := map[string]bool{}
		cells, err := tx.List(ctx, cellPrefix)
		if err != nil {
			return err
		}
		for _, k := range cells {
			x, y, ok := parseCell(k)
			if !ok {
				bad("%s is not a cell", k)
				continue
			}
			var c cell
			if err := tx.Get(ctx, k, &c); err != nil {
				return err
			}
			if g.cfg.Wall(x, y) {
				bad("cell %d,%d is a wall but holds %+v", x, y, c)
			}
			switch {
			case c.P != "":
				if p, ok := at[c.P]; !ok || p.X != x || p.Y != y {
					bad("cell %d,%d holds %s, who is at %+v (online %v)", x, y, c.P, p, ok)
				}
				if seen[c.P] {
					bad("%s occupies two cells", c.P)
				}
				seen[c.P] = true
			case c.NPC > 0:
				if p, ok := npcs[c.NPC]; !ok || p.X != x || p.Y != y {
					bad("cell %d,%d holds NPC %d, which is at %+v", x, y, c.NPC-1, p)
				}
			default:
				bad("cell %d,%d holds nobody but exists", x, y)
			}
		}
		for name := range at {
			if !seen[name] {
				bad("%s is online but occupies no cell", name)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(union(rep.Spawned, rep.InWorld, rep.Carried))) {
			if rep.Spawned[k] != rep.InWorld[k]+rep.Carried[k] {
				bad("%s: %d spawned, but %d in the world and %d carried", k, rep.Spawned[k], rep.InWorld[k], rep.Carried[k])
			}
		}
		return nil
	})
	rep.OK = err == nil && len(rep.Violations) == 0
	return rep, err
}

func union(its ...Items) Items {
	u := Items{}
	for _, it := range its {
		for k := range it {
			u[k] = 0
		}
	}
	return u
}

// Snapshot is what the live map shows: who and what is where.
type Snapshot struct {
	W       int      `json:"w"`
	H       int      `json:"h"`
	RS      int      `json:"rs"`
	Players []Player `json:"players"`
	Items   []Pile   `json:"items"`
}

// Snapshot reads the positions of online players and NPCs and the items
// lying in the world. Each region is read in its own small transaction, so
// a snapshot is consistent per region, not across them: enough for a map,
// and it does not make a poll conflict with every move in the world.
func (g *Game) Snapshot(ctx context.Context, store *kv.Store) (Snapshot, error) {
	s := Snapshot{W: g.cfg.Width(), H: g.cfg.Height(), RS: g.cfg.RegionSize, Players: []Player{}, Items: []Pile{}}
	for _, r := range g.cfg.Regions() {
		var players []Player
		var items []Pile
		err := store.View(ctx, func(tx *kv.Tx) error {
			players, items = nil, nil
			members := map[string]string{}
			if _, err := tx.Lookup(ctx, keyMembers(r), &members); err != nil {
				return err
			}
			for _, name := range slices.Sorted(maps.Keys(members)) {
				var p pos
				if ok, err := tx.Lookup(ctx, keyPos(name), &p); err != nil {
					return err
				} else if ok {
					players = append(players, Player{N: name, X: p.X, Y: p.Y})
				}
			}
			piles := map[string][]string{}
			if _, err := tx.Lookup(ctx, keyItems(r), &piles); err != nil {
				return err
			}
			for k, it := range piles {
				if x, y, ok := parsePile(k); ok && len(it) > 0 {
					items = append(items, Pile{X: x, Y: y, Items: it})
				}
			}
			return nil
		})
		if err != nil {
			return s, err
		}
		s.Players = append(s.Players, players...)
		s.Items = append(s.Items, items...)
	}
	var npcs []Player
	err := store.View(ctx, func(tx *kv.Tx) error {
		npcs = nil
		for i := range g.cfg.NPCs {
			var p pos
			if ok, err := tx.Lookup(ctx, keyNPC(i), &p); err != nil {
				return err
			} else if ok {
				npcs = append(npcs, Player{N: npcName(i), X: p.X, Y: p.Y, NPC: true})
			}
		}
		return nil
	})
	s.Players = append(s.Players, npcs...)
	return s, err
}
