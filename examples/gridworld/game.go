package gridworld

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/examples/gridworld/command"
	"github.com/starbus/starbus/handlers"
)

// Task types of the world's own periodic tasks.
const (
	TaskSpawn = "gw.spawn" // tops the regions up with items
	TaskNPC   = "gw.npc"   // moves every NPC one step
)

// Game is the reference world's rules. Its handlers are safe for
// concurrent use: all state is in the task's transaction.
type Game struct {
	cfg  Config
	near handlers.Area // who hears moves: the players within View cells
}

// New returns the game for cfg.
func New(cfg Config) (*Game, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	near := handlers.Area{Name: chanNear, Cell: float64(cfg.View), Radius: float64(cfg.View), Delivery: handlers.BestEffort}
	return &Game{cfg: cfg, near: near}, nil
}

// Config returns the game's configuration.
func (g *Game) Config() Config { return g.cfg }

// Handler returns the game's handlers: logins, client commands,
// disconnects, and the periodic spawner and NPC tasks.
func (g *Game) Handler() handlers.Handler {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, g.login)
	mux.HandleFunc(bus.EventMessage, g.message)
	mux.HandleFunc(bus.EventDisconnect, g.disconnect)
	mux.HandleFunc(TaskSpawn, g.spawn)
	mux.HandleFunc(TaskNPC, g.wander)
	return mux
}

// Init returns the world's initialisation (handlers.Config.Init): it
// schedules the spawner and the NPCs and places the NPCs. Logins do the
// same if a world was initialised by another game before.
func (g *Game) Init() handlers.Handler {
	return handlers.HandlerFunc(g.ensure)
}

// ensure sets the world up unless it already is.
func (g *Game) ensure(ctx context.Context, t *handlers.Task) error {
	var meta struct{ W, H int }
	if ok, err := t.Lookup(ctx, keyMeta, &meta); err != nil || ok {
		return err
	}
	meta.W, meta.H = g.cfg.Width(), g.cfg.Height()
	if err := t.Put(keyMeta, meta); err != nil {
		return err
	}
	if err := g.createChannels(ctx, t); err != nil {
		return err
	}
	if _, err := t.Every(g.cfg.SpawnEvery, TaskSpawn, nil); err != nil {
		return err
	}
	if g.cfg.NPCs > 0 {
		if _, err := t.Every(g.cfg.NPCEvery, TaskNPC, nil); err != nil {
			return err
		}
	}
	for i := range g.cfg.NPCs {
		x0, y0 := g.cfg.start(npcName(i), 0)
		x, y, ok, err := g.place(ctx, t, x0, y0)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := t.Put(keyCell(x, y), cell{NPC: i + 1}); err != nil {
			return err
		}
		if err := t.Put(keyNPC(i), pos{X: x, Y: y, Online: true}); err != nil {
			return err
		}
	}
	return nil
}

// place finds a free open cell near (x0, y0): the first, in rings of
// growing distance up to 3, that is open and unoccupied.
func (g *Game) place(ctx context.Context, t *handlers.Task, x0, y0 int) (x, y int, ok bool, err error) {
	for r := 0; r <= 3; r++ {
		for dy := -r; dy <= r; dy++ {
			for dx := -r; dx <= r; dx++ {
				if max(abs(dx), abs(dy)) != r {
					continue
				}
				x, y := x0+dx, y0+dy
				if !g.cfg.Open(x, y) {
					continue
				}
				taken, err := t.Exists(ctx, keyCell(x, y))
				if err != nil {
					return 0, 0, false, err
				}
				if !taken {
					return x, y, true, nil
				}
			}
		}
	}
	return 0, 0, false, nil
}

func abs(v int) int { return max(v, -v) }

// send queues r for session, sent if the task commits.
func send(t *handlers.Task, session string, r Reply) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.Send(session, b)
}

// refuse answers a command the world says no to.
func refuse(t *handlers.Task, c Command, why string) error {
	return send(t, t.Session, Reply{T: TypeRefused, Re: c.ID, Why: why})
}

func (g *Game) login(ctx context.Context, t *handlers.Task) error {
	if err := g.ensure(ctx, t); err != nil {
		return err
	}
	name := string(t.Data)
	if command.ValidName(name) != nil {
		return send(t, t.Session, Reply{T: TypeError, Why: "name not allowed"})
	}
	var old string
	online, err := t.Lookup(ctx, keyOnline(name), &old)
	if err != nil {
		return err
	}
	var p pos
	known, err := t.Lookup(ctx, keyPos(name), &p)
	if err != nil {
		return err
	}
	if online && old != t.Session && p.Online {
		// The player logs in again from another session: the new one takes
		// over where the old one stands.
		if err := t.Delete(keySess(old)); err != nil {
			return err
		}
		if err := send(t, old, Reply{T: TypeReplaced}); err != nil {
			return err
		}
		region := g.cfg.Region(p.X, p.Y)
		if err := g.leave(ctx, t, old, region, true); err != nil {
			return err
		}
		if err := g.enter(ctx, t, t.Session, region, true); err != nil {
			return err
		}
		if err := g.setMember(ctx, t, region, name, t.Session); err != nil {
			return err
		}
		if err := g.look(ctx, t, p.X, p.Y); err != nil {
			return err
		}
	} else {
		x, y, ok := 0, 0, false
		for try := 0; !ok && try < 4; try++ {
			x0, y0 := g.cfg.start(name, try)
			if known && try == 0 {
				x0, y0 = p.X, p.Y
			}
			if x, y, ok, err = g.place(ctx, t, x0, y0); err != nil {
				return err
			}
		}
		if !ok {
			return send(t, t.Session, Reply{T: TypeRefused, Why: "no free cell: the world is full"})
		}
		if !known {
			if err := g.register(ctx, t, name); err != nil {
				return err
			}
		}
		p = pos{X: x, Y: y, Online: true}
		if err := t.Put(keyCell(x, y), cell{P: name}); err != nil {
			return err
		}
		if err := t.Put(keyPos(name), p); err != nil {
			return err
		}
		region := g.cfg.Region(x, y)
		if err := g.setMember(ctx, t, region, name, t.Session); err != nil {
			return err
		}
		if err := g.enter(ctx, t, t.Session, region, true); err != nil {
			return err
		}
		if err := g.look(ctx, t, x, y); err != nil {
			return err
		}
		if err := g.publishAt(t, x, y, posReply(name, false, x, y)); err != nil {
			return err
		}
	}
	if err := t.Put(keySess(t.Session), name); err != nil {
		return err
	}
	if err := t.Put(keyOnline(name), t.Session); err != nil {
		return err
	}
	w, err := g.view(ctx, t, name, p.X, p.Y)
	if err != nil {
		return err
	}
	w.T, w.N, w.W, w.H, w.RS, w.V = TypeWelcome, name, g.cfg.Width(), g.cfg.Height(), g.cfg.RegionSize, g.cfg.View
	if w.Seen, err = g.seen(ctx, t, name, p.X, p.Y, false, p.X, p.Y); err != nil {
		return err
	}
	if _, err := t.Lookup(ctx, keyInv(name), &w.Inv); err != nil {
		return err
	}
	return send(t, t.Session, w)
}

// register adds a new player to the index the invariant checks read.
func (g *Game) register(ctx context.Context, t *handlers.Task, name string) error {
	var names []string
	k := keyPlayers(shardOf(name))
	if _, err := t.Lookup(ctx, k, &names); err != nil {
		return err
	}
	return t.Put(k, append(names, name))
}

// setMember records that name plays region with session ("" removes it).
func (g *Game) setMember(ctx context.Context, t *handlers.Task, region, name, session string) error {
	members := map[string]string{}
	if _, err := t.Lookup(ctx, keyMembers(region), &members); err != nil {
		return err
	}
	if session == "" {
		delete(members, name)
	} else {
		members[name] = session
	}
	return t.Put(keyMembers(region), members)
}

func posReply(name string, npc bool, x, y int) Reply {
	r := Reply{T: TypePos, N: name, NPC: npc}
	r.X, r.Y = at(x, y)
	return r
}

// view describes what a player at (x, y) sees: its region, the region's
// items, and who stands within Near cells. Who stands near is peeked, as
// seen does: a look or a move never conflicts with the steps of the
// players it merely sees (each cell read in the transaction would cost
// the commit a check, and the task a retry whenever a neighbour moved),
// and what it shows may be a moment old, as any picture of them is once
// it reaches the client.
func (g *Game) view(ctx context.Context, t *handlers.Task, name string, x, y int) (Reply, error) {
	r := Reply{Region: g.cfg.Region(x, y)}
	r.X, r.Y = at(x, y)
	piles := map[string][]string{}
	if _, err := t.Lookup(ctx, keyItems(r.Region), &piles); err != nil {
		return r, err
	}
	for k, items := range piles {
		px, py, ok := parsePile(k)
		if ok && len(items) > 0 {
			r.Items = append(r.Items, Pile{X: px, Y: py, Items: items})
		}
	}
	slices.SortFunc(r.Items, func(a, b Pile) int { return (a.Y-b.Y)*g.cfg.Width() + a.X - b.X })
	var cells [][2]int
	n := g.cfg.Near
	for cy := y - n; cy <= y+n; cy++ {
		for cx := x - n; cx <= x+n; cx++ {
			if g.cfg.Open(cx, cy) && (cx != x || cy != y) {
				cells = append(cells, [2]int{cx, cy})
			}
		}
	}
	var err error
	r.Near, err = g.standing(ctx, t, name, cells)
	if err != nil {
		return r, err
	}
	return r, nil
}

func (g *Game) disconnect(ctx context.Context, t *handlers.Task) error {
	var name string
	if ok, err := t.Lookup(ctx, keySess(t.Session), &name); err != nil || !ok {
		return err // a session that never played, or was taken over
	}
	if err := t.Delete(keySess(t.Session)); err != nil {
		return err
	}
	var p pos
	if _, err := t.Lookup(ctx, keyPos(name), &p); err != nil {
		return err
	}
	if err := t.Delete(keyOnline(name)); err != nil {
		return err
	}
	var c cell
	if _, err := t.Lookup(ctx, keyCell(p.X, p.Y), &c); err != nil {
		return err
	}
	if c.P == name {
		if err := t.Delete(keyCell(p.X, p.Y)); err != nil {
			return err
		}
	}
	p.Online = false
	if err := t.Put(keyPos(name), p); err != nil {
		return err
	}
	region := g.cfg.Region(p.X, p.Y)
	if err := g.setMember(ctx, t, region, name, ""); err != nil {
		return err
	}
	return g.publishAt(t, p.X, p.Y, Reply{T: TypeGone, N: name})
}

func (g *Game) message(ctx context.Context, t *handlers.Task) error {
	c, err := ParseCommand(t.Data)
	if err != nil {
		return send(t, t.Session, Reply{T: TypeError, Re: c.ID, Why: err.Error()})
	}
	var name string
	if ok, err := t.Lookup(ctx, keySess(t.Session), &name); err != nil {
		return err
	} else if !ok {
		return refuse(t, c, "not playing: log in again")
	}
	switch c.Op {
	case "move":
		return g.move(ctx, t, name, c)
	case "look":
		p, err := g.position(ctx, t, name)
		if err != nil {
			return err
		}
		r, err := g.view(ctx, t, name, p.X, p.Y)
		if err != nil {
			return err
		}
		r.T, r.Re = TypeLook, c.ID
		return send(t, t.Session, r)
	case "say":
		p, err := g.position(ctx, t, name)
		if err != nil {
			return err
		}
		if err := tell(ctx, t, chanChat(g.cfg.Region(p.X, p.Y)), Reply{T: TypeChat, From: name, Text: c.Text, Scope: "region"}); err != nil {
			return err
		}
		return send(t, t.Session, Reply{T: TypeSaid, Re: c.ID})
	case "shout":
		if err := tell(ctx, t, chanGlobal, Reply{T: TypeChat, From: name, Text: c.Text, Scope: "global"}); err != nil {
			return err
		}
		return send(t, t.Session, Reply{T: TypeSaid, Re: c.ID})
	case "take":
		return g.take(ctx, t, name, c)
	case "drop":
		return g.drop(ctx, t, name, c)
	case "offer":
		return g.offer(ctx, t, name, c)
	case "accept":
		return g.accept(ctx, t, name, c)
	case "inv":
		inv := Items{}
		if _, err := t.Lookup(ctx, keyInv(name), &inv); err != nil {
			return err
		}
		return send(t, t.Session, Reply{T: TypeInv, Re: c.ID, Inv: inv})
	}
	return send(t, t.Session, Reply{T: TypeError, Re: c.ID, Why: "unknown op"})
}

// position returns an online player's position.
func (g *Game) position(ctx context.Context, t *handlers.Task, name string) (pos, error) {
	var p pos
	ok, err := t.Lookup(ctx, keyPos(name), &p)
	if err == nil && (!ok || !p.Online) {
		err = fmt.Errorf("gridworld: %s plays but has no position", name)
	}
	return p, err
}

func (g *Game) move(ctx context.Context, t *handlers.Task, name string, c Command) error {
	p, err := g.position(ctx, t, name)
	if err != nil {
		return err
	}
	dx, dy, _ := command.Step(c.Dir)
	nx, ny := p.X+dx, p.Y+dy
	switch {
	case !g.cfg.Inside(nx, ny):
		return refuse(t, c, "edge")
	case g.cfg.Wall(nx, ny):
		return refuse(t, c, "wall")
	}
	if taken, err := t.Exists(ctx, keyCell(nx, ny)); err != nil {
		return err
	} else if taken {
		return refuse(t, c, "occupied")
	}
	var from cell
	if _, err := t.Lookup(ctx, keyCell(p.X, p.Y), &from); err != nil {
		return err
	}
	if from.P != name {
		return fmt.Errorf("gridworld: %s at %d,%d but the cell holds %+v", name, p.X, p.Y, from)
	}
	if err := t.Delete(keyCell(p.X, p.Y)); err != nil {
		return err
	}
	if err := t.Put(keyCell(nx, ny), cell{P: name}); err != nil {
		return err
	}
	if err := t.Put(keyPos(name), pos{X: nx, Y: ny, Online: true}); err != nil {
		return err
	}
	r := Reply{T: TypeMoved, Re: c.ID}
	r.X, r.Y = at(nx, ny)
	oldR, newR := g.cfg.Region(p.X, p.Y), g.cfg.Region(nx, ny)
	if oldR != newR {
		if err := g.cross(ctx, t, name, oldR, newR); err != nil {
			return err
		}
		if r, err = g.view(ctx, t, name, nx, ny); err != nil {
			return err
		}
		r.T, r.Re = TypeMoved, c.ID
	}
	if err := g.look(ctx, t, nx, ny); err != nil {
		return err
	}
	if r.Seen, err = g.seen(ctx, t, name, p.X, p.Y, true, nx, ny); err != nil {
		return err
	}
	if err := g.publishAt(t, nx, ny, posReply(name, false, nx, ny)); err != nil {
		return err
	}
	return send(t, t.Session, r)
}

// cross moves a player's membership from one region to another.
func (g *Game) cross(ctx context.Context, t *handlers.Task, name, from, to string) error {
	if err := g.setMember(ctx, t, from, name, ""); err != nil {
		return err
	}
	if err := g.setMember(ctx, t, to, name, t.Session); err != nil {
		return err
	}
	if err := g.leave(ctx, t, t.Session, from, false); err != nil {
		return err
	}
	return g.enter(ctx, t, t.Session, to, false)
}

// ground returns the region a player stands in, its items, and the key of
// the player's pile among them.
func (g *Game) ground(ctx context.Context, t *handlers.Task, name string) (region, pile string, piles map[string][]string, err error) {
	p, err := g.position(ctx, t, name)
	if err != nil {
		return "", "", nil, err
	}
	region, piles = g.cfg.Region(p.X, p.Y), map[string][]string{}
	if _, err := t.Lookup(ctx, keyItems(region), &piles); err != nil {
		return "", "", nil, err
	}
	return region, pileKey(p.X, p.Y), piles, nil
}

// carry writes a region's items and a player's inventory and tells the
// player what it carries now.
func carry(t *handlers.Task, c Command, typ, region string, piles map[string][]string, name string, inv Items) error {
	if err := t.Put(keyItems(region), piles); err != nil {
		return err
	}
	if err := t.Put(keyInv(name), inv); err != nil {
		return err
	}
	return send(t, t.Session, Reply{T: typ, Re: c.ID, Inv: inv})
}

func (g *Game) take(ctx context.Context, t *handlers.Task, name string, c Command) error {
	region, k, piles, err := g.ground(ctx, t, name)
	if err != nil {
		return err
	}
	if len(piles[k]) == 0 {
		return refuse(t, c, "nothing here")
	}
	inv := Items{}
	if _, err := t.Lookup(ctx, keyInv(name), &inv); err != nil {
		return err
	}
	for _, kind := range piles[k] {
		inv[kind]++
	}
	delete(piles, k)
	return carry(t, c, TypeTook, region, piles, name, inv)
}

func (g *Game) drop(ctx context.Context, t *handlers.Task, name string, c Command) error {
	inv := Items{}
	if _, err := t.Lookup(ctx, keyInv(name), &inv); err != nil {
		return err
	}
	if inv[c.Item] < 1 {
		return refuse(t, c, "you carry no "+c.Item)
	}
	region, k, piles, err := g.ground(ctx, t, name)
	if err != nil {
		return err
	}
	piles[k] = append(piles[k], c.Item)
	if inv[c.Item]--; inv[c.Item] == 0 {
		delete(inv, c.Item)
	}
	return carry(t, c, TypeDropped, region, piles, name, inv)
}

// covers reports whether inv holds at least want.
func covers(inv, want Items) bool {
	for k, n := range want {
		if inv[k] < n {
			return false
		}
	}
	return true
}

// transfer moves items from one inventory to another.
func transfer(from, to, items Items) {
	for k, n := range items {
		if from[k] -= n; from[k] == 0 {
			delete(from, k)
		}
		to[k] += n
	}
}

func (g *Game) offer(ctx context.Context, t *handlers.Task, name string, c Command) error {
	if c.To == name {
		return refuse(t, c, "you cannot trade with yourself")
	}
	inv := Items{}
	if _, err := t.Lookup(ctx, keyInv(name), &inv); err != nil {
		return err
	}
	if !covers(inv, c.Give) {
		return refuse(t, c, "you do not carry what you offer")
	}
	var session string
	if ok, err := t.Lookup(ctx, keyOnline(c.To), &session); err != nil {
		return err
	} else if !ok {
		return refuse(t, c, c.To+" is not online")
	}
	if err := t.Put(keyOffer(c.To, name), offer{Give: c.Give, Want: c.Want}); err != nil {
		return err
	}
	if err := send(t, session, Reply{T: TypeOffer, From: name, Give: c.Give, Want: c.Want}); err != nil {
		return err
	}
	return send(t, t.Session, Reply{T: TypeOffered, Re: c.ID})
}

// accept carries out a trade: one transaction reads and writes both
// inventories, so both sides happen or neither.
func (g *Game) accept(ctx context.Context, t *handlers.Task, name string, c Command) error {
	var o offer
	if ok, err := t.Lookup(ctx, keyOffer(name, c.From), &o); err != nil {
		return err
	} else if !ok {
		return refuse(t, c, "no offer from "+c.From)
	}
	mine, theirs := Items{}, Items{}
	if _, err := t.Lookup(ctx, keyInv(name), &mine); err != nil {
		return err
	}
	if _, err := t.Lookup(ctx, keyInv(c.From), &theirs); err != nil {
		return err
	}
	if err := t.Delete(keyOffer(name, c.From)); err != nil {
		return err
	}
	switch {
	case !covers(theirs, o.Give):
		return refuse(t, c, c.From+" no longer has what was offered")
	case !covers(mine, o.Want):
		return refuse(t, c, "you do not have what "+c.From+" wants")
	}
	transfer(theirs, mine, o.Give)
	transfer(mine, theirs, o.Want)
	if err := t.Put(keyInv(name), mine); err != nil {
		return err
	}
	if err := t.Put(keyInv(c.From), theirs); err != nil {
		return err
	}
	var session string
	if ok, err := t.Lookup(ctx, keyOnline(c.From), &session); err != nil {
		return err
	} else if ok {
		if err := send(t, session, Reply{T: TypeTraded, N: name, Inv: theirs}); err != nil {
			return err
		}
	}
	return send(t, t.Session, Reply{T: TypeTraded, Re: c.ID, N: c.From, Inv: mine})
}

// rng returns the task's random source: seeded by the event, so a retried
// attempt makes the same choices on the same state.
func rng(t *handlers.Task) *rand.Rand {
	return rand.New(rand.NewPCG(t.EventSeq, uint64(t.Due.UnixNano())))
}

// spawn tops the regions up with items, at most ItemCap in the world.
func (g *Game) spawn(ctx context.Context, t *handlers.Task) error {
	regions := g.cfg.Regions()
	piles := make([]map[string][]string, len(regions))
	counts := make([]int, len(regions))
	total := 0
	for i, r := range regions {
		piles[i] = map[string][]string{}
		if _, err := t.Lookup(ctx, keyItems(r), &piles[i]); err != nil {
			return err
		}
		for _, items := range piles[i] {
			counts[i] += len(items)
		}
		total += counts[i]
	}
	spawned := Items{}
	if _, err := t.Lookup(ctx, keySpawned, &spawned); err != nil {
		return err
	}
	per := (g.cfg.ItemCap + len(regions) - 1) / len(regions)
	rnd := rng(t)
	kinds := Kinds()
	added := false
	first := rnd.IntN(len(regions))
	for j := range regions {
		i := (first + j) % len(regions)
		if total >= g.cfg.ItemCap || counts[i] >= per {
			continue
		}
		ox, oy := g.cfg.regionOrigin(i)
		x, y := ox+rnd.IntN(g.cfg.RegionSize), oy+rnd.IntN(g.cfg.RegionSize)
		if !g.cfg.Open(x, y) {
			continue
		}
		kind := kinds[rnd.IntN(len(kinds))]
		k := pileKey(x, y)
		piles[i][k] = append(piles[i][k], kind)
		if err := t.Put(keyItems(regions[i]), piles[i]); err != nil {
			return err
		}
		spawned[kind]++
		total++
		added = true
	}
	if !added {
		return nil
	}
	return t.Put(keySpawned, spawned)
}

// wander moves every NPC one step in a random direction, if it can.
func (g *Game) wander(ctx context.Context, t *handlers.Task) error {
	rnd := rng(t)
	for i := range g.cfg.NPCs {
		var p pos
		if ok, err := t.Lookup(ctx, keyNPC(i), &p); err != nil || !ok {
			return err
		}
		dx, dy, _ := command.Step([]string{"n", "s", "e", "w"}[rnd.IntN(4)])
		nx, ny := p.X+dx, p.Y+dy
		if !g.cfg.Open(nx, ny) {
			continue
		}
		if taken, err := t.Exists(ctx, keyCell(nx, ny)); err != nil {
			return err
		} else if taken {
			continue
		}
		if err := t.Delete(keyCell(p.X, p.Y)); err != nil {
			return err
		}
		if err := t.Put(keyCell(nx, ny), cell{NPC: i + 1}); err != nil {
			return err
		}
		if err := t.Put(keyNPC(i), pos{X: nx, Y: ny, Online: true}); err != nil {
			return err
		}
		if err := g.publishAt(t, nx, ny, posReply(npcName(i), true, nx, ny)); err != nil {
			return err
		}
	}
	return nil
}
