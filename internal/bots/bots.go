package bots

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/examples/gridworld"
)

// Config configures a run.
type Config struct {
	// Addr is the edge's address (host:port, or a ws:// URL); several,
	// separated by commas, are the addresses a player reconnects to, in
	// turn, when its connection is lost. Required.
	Addr string
	// Players is the number of players (default 10).
	Players int
	// Duration is how long they play once logged in (default 10s).
	Duration time.Duration
	// Rate is the actions per second of one player (default 2; the edge
	// allows 50 per session).
	Rate float64
	// Prefix names the players: <Prefix><i> (default "bot").
	Prefix string
	// Password of every player (default "bots").
	Password string
	// Logins bounds the logins in progress at once (default 8).
	Logins int
	// ActionTimeout is how long a player waits for a reply before it
	// counts the action as failed (default 10s).
	ActionTimeout time.Duration
	// Seed makes the players' choices repeatable (default 1).
	Seed uint64
	// Check, if set, checks the world's invariants: after the players have
	// stopped and received their last replies, and again after they have
	// logged out.
	Check func(ctx context.Context) (gridworld.Report, error)
	// Progress, if set, is called about once a second while the players
	// play.
	Progress func(Progress)
	// Latencies, if set, receives every round trip measured, at the end.
	Latencies func([]time.Duration)
	// Logger receives the run's logs (default: discard).
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Addr == "" {
		return errors.New("bots: Config.Addr is required")
	}
	if c.Players <= 0 {
		c.Players = 10
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 2
	}
	if c.Prefix == "" {
		c.Prefix = "bot"
	}
	if c.Password == "" {
		c.Password = "bots"
	}
	if c.Logins <= 0 {
		c.Logins = 8
	}
	if c.ActionTimeout <= 0 {
		c.ActionTimeout = 10 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Progress is a running count, for a progress line.
type Progress struct {
	Elapsed time.Duration
	Playing int
	Actions uint64
	Errors  uint64
}

// Summary is what a run measured.
type Summary struct {
	Players       int     `json:"players"`
	LoggedIn      int     `json:"logged_in"`
	LoginSeconds  float64 `json:"login_seconds"`
	Seconds       float64 `json:"seconds"` // of play
	Actions       uint64  `json:"actions"` // replies received
	ActionsPerSec float64 `json:"actions_per_sec"`
	// Deliveries counts every message the players received while they
	// played: replies, their region's positions and chat, shouts, offers.
	Deliveries       uint64            `json:"deliveries"`
	DeliveriesPerSec float64           `json:"deliveries_per_sec"`
	P50              float64           `json:"p50_ms"`
	P99              float64           `json:"p99_ms"`
	P999             float64           `json:"p999_ms"`
	Max              float64           `json:"max_ms"`
	ByOp             map[string]uint64 `json:"by_op"`
	// LatencyByOp is the round trip of each command: which is slow, or
	// makes the tail.
	LatencyByOp map[string]Latency `json:"latency_by_op"`
	// Slowest is the slowest round trip of each of the ten seconds of play
	// whose slowest was slowest, slowest first, with when its command was
	// sent: a tail that comes at intervals (a periodic task of the
	// server, a collection) shows as times that repeat at that interval.
	Slowest     []Slow            `json:"slowest"`
	Refused     uint64            `json:"refused"` // the world said no (a wall, an empty cell): part of the game
	RefusedWhy  map[string]uint64 `json:"refused_why"`
	Trades      uint64            `json:"trades"`
	Errors      uint64            `json:"errors"` // failed logins, error replies, timeouts, rate limiting, send failures
	Timeouts    uint64            `json:"timeouts"`
	RateLimited uint64            `json:"rate_limited"`
	Disconnects uint64            `json:"disconnects"`
	// Checks are the invariant checks' reports: after play, after logout.
	Checks []gridworld.Report `json:"checks,omitempty"`
	// CheckErr is why a check could not run.
	CheckErr string `json:"check_error,omitempty"`
	// InvariantsOK is true when every check ran and found nothing.
	InvariantsOK bool `json:"invariants_ok"`
}

// Latency is the round trip of a set of actions, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Slow is one slow round trip.
type Slow struct {
	At float64 `json:"at_s"` // when the command was sent, in seconds of play
	Op string  `json:"op"`
	MS float64 `json:"ms"`
}

// slowestCount is how many seconds of play Summary.Slowest lists.
const slowestCount = 10

// slowest returns the slowest of the round trips lat, of commands ops sent
// at sent, in each of the n seconds since start whose slowest was slowest,
// slowest first.
func slowest(lat []time.Duration, sent []time.Time, ops []string, start time.Time, n int) []Slow {
	worst := map[int64]int{} // second of play -> index of its slowest
	for i, l := range lat {
		sec := int64(sent[i].Sub(start) / time.Second)
		if j, ok := worst[sec]; !ok || l > lat[j] {
			worst[sec] = i
		}
	}
	idx := slices.SortedFunc(maps.Values(worst), func(a, b int) int {
		return cmp.Or(cmp.Compare(lat[b], lat[a]), cmp.Compare(a, b))
	})
	out := make([]Slow, 0, min(n, len(idx)))
	for _, i := range idx[:min(n, len(idx))] {
		out = append(out, Slow{
			At: math.Floor(sent[i].Sub(start).Seconds()*1000) / 1000, // down: within its second
			Op: ops[i],
			MS: float64(lat[i].Microseconds()) / 1000,
		})
	}
	return out
}

// quantile returns the q-quantile of sorted, in milliseconds.
func quantile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[min(len(sorted)-1, int(q*float64(len(sorted))))].Microseconds()) / 1000
}

// counters are shared by the players.
type counters struct {
	actions, deliveries, refused, trades, errors, timeouts, rateLimited, disconnects atomic.Uint64
}

// Run plays the world and reports. It returns an error only when no
// player could log in or ctx ended; everything else is in the Summary.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.setDefaults(); err != nil {
		return Summary{}, err
	}
	sum := Summary{Players: cfg.Players, ByOp: map[string]uint64{}, RefusedWhy: map[string]uint64{}}
	var cnt counters

	// Log in, a few at a time.
	start := time.Now()
	players := make([]*player, cfg.Players)
	sem := make(chan struct{}, cfg.Logins)
	var wg sync.WaitGroup
	for i := range cfg.Players {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			p, err := login(ctx, cfg, i)
			if err != nil {
				cnt.errors.Add(1)
				cfg.Logger.Warn("login failed", "player", i, "err", err)
				return
			}
			players[i] = p
		})
	}
	wg.Wait()
	players = slices.DeleteFunc(players, func(p *player) bool { return p == nil })
	sum.LoggedIn = len(players)
	sum.LoginSeconds = time.Since(start).Seconds()
	if len(players) == 0 {
		return sum, errors.Join(errors.New("bots: no player could log in"), ctx.Err())
	}
	for _, p := range players {
		p.cnt = &cnt
	}

	// Play.
	playCtx, stopPlay := context.WithTimeout(ctx, cfg.Duration)
	defer stopPlay()
	release := make(chan struct{}) // closed when the players may log out
	var quiet, done sync.WaitGroup
	quiet.Add(len(players))
	playStart := time.Now()
	for _, p := range players {
		done.Go(func() { p.run(ctx, playCtx, &quiet, release) })
	}
	if cfg.Progress != nil {
		done.Go(func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-playCtx.Done():
					return
				case <-tick.C:
					cfg.Progress(Progress{Elapsed: time.Since(playStart), Playing: len(players), Actions: cnt.actions.Load(), Errors: cnt.errors.Load()})
				}
			}
		})
	}
	<-playCtx.Done()
	sum.Seconds = time.Since(playStart).Seconds()
	sum.Deliveries = cnt.deliveries.Load() // players handle messages only while they play
	sum.DeliveriesPerSec = float64(sum.Deliveries) / sum.Seconds
	quiet.Wait() // every player has its last reply, or gave up on it

	check := func() {
		if cfg.Check == nil || ctx.Err() != nil { // interrupted: report what was measured
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		rep, err := cfg.Check(cctx)
		if err != nil {
			sum.CheckErr = err.Error()
			return
		}
		sum.Checks = append(sum.Checks, rep)
	}
	check()
	close(release)
	done.Wait()
	check()

	var (
		lat  []time.Duration
		sent []time.Time
		ops  []string
	)
	byOp := map[string][]time.Duration{}
	for _, p := range players {
		lat = append(lat, p.latencies...)
		sent = append(sent, p.sent...)
		ops = append(ops, p.ops...)
		for i, l := range p.latencies {
			byOp[p.ops[i]] = append(byOp[p.ops[i]], l)
		}
		for op, n := range p.byOp {
			sum.ByOp[op] += n
		}
		for why, n := range p.refusals {
			sum.RefusedWhy[why] += n
		}
	}
	sum.Slowest = slowest(lat, sent, ops, playStart, slowestCount)
	slices.Sort(lat)
	if cfg.Latencies != nil {
		cfg.Latencies(lat)
	}
	ms := func(q float64) float64 { return quantile(lat, q) }
	sum.LatencyByOp = make(map[string]Latency, len(byOp))
	for op, l := range byOp {
		slices.Sort(l)
		sum.LatencyByOp[op] = Latency{P50: quantile(l, 0.5), P99: quantile(l, 0.99), Max: quantile(l, 1)}
	}
	sum.Actions = cnt.actions.Load()
	sum.ActionsPerSec = float64(sum.Actions) / sum.Seconds
	sum.P50, sum.P99, sum.P999, sum.Max = ms(0.50), ms(0.99), ms(0.999), ms(1)
	sum.Refused, sum.Trades = cnt.refused.Load(), cnt.trades.Load()
	sum.Errors, sum.Timeouts = cnt.errors.Load(), cnt.timeouts.Load()
	sum.RateLimited, sum.Disconnects = cnt.rateLimited.Load(), cnt.disconnects.Load()
	sum.InvariantsOK = cfg.Check != nil && sum.CheckErr == "" && len(sum.Checks) == 2
	for _, r := range sum.Checks {
		sum.InvariantsOK = sum.InvariantsOK && r.OK
	}
	return sum, ctx.Err()
}

// player is one simulated player. Its fields belong to its goroutine.
type player struct {
	cfg  Config
	name string
	c    *client.Client
	rnd  *rand.Rand
	cnt  *counters

	x, y    int
	region  string
	inv     gridworld.Items
	items   map[[2]int]bool // piles seen in the region
	seen    sightings       // players seen lately, where
	view    int             // the radius of what it hears of moves (the welcome's V)
	offers  []string        // players whose offers to accept
	heading string          // the direction it keeps walking in
	detour  int             // steps to wander before heading for items again

	nextID    uint64
	pending   uint64 // id of the command in flight, 0: none
	pendingOp string
	sentAt    time.Time

	latencies []time.Duration
	ops       []string    // the command of each latency
	sent      []time.Time // when it was sent
	byOp      map[string]uint64
	refusals  map[string]uint64 // by reason
}

func login(ctx context.Context, cfg Config, i int) (*player, error) {
	name := fmt.Sprintf("%s%d", cfg.Prefix, i)
	lctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := client.Connect(lctx, client.Config{
		Addrs: strings.Split(cfg.Addr, ","), Name: name, Password: cfg.Password, AutoReconnect: true,
	})
	if err != nil {
		return nil, err
	}
	p := &player{
		cfg: cfg, name: name, c: c, rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
		inv: gridworld.Items{}, items: map[[2]int]bool{}, byOp: map[string]uint64{},
		refusals: map[string]uint64{}, heading: "n",
	}
	for {
		select {
		case m := <-c.Messages():
			r, ok := decode(m)
			if !ok {
				continue
			}
			switch r.T {
			case gridworld.TypeWelcome:
				p.learn(r)
				return p, nil
			case gridworld.TypeRefused, gridworld.TypeError:
				c.Close()
				return nil, fmt.Errorf("%s: %s", r.T, r.Why)
			}
		case <-c.Closed():
			return nil, fmt.Errorf("session lost before the welcome: %w", c.Err())
		case <-lctx.Done():
			c.Close()
			return nil, fmt.Errorf("no welcome: %w", lctx.Err())
		}
	}
}

func decode(m client.Message) (gridworld.Reply, bool) {
	if m.Kind != client.KindMessage {
		return gridworld.Reply{}, false
	}
	if bytes.HasPrefix(m.Payload, chatPrefix) {
		// Other players' words: a bot counts them and reads no further (a
		// third of what 1,000 players receive is chat, and decoding it took
		// a tenth of the bots' CPU).
		return gridworld.Reply{T: gridworld.TypeChat}, true
	}
	r, err := gridworld.DecodeReply(m.Payload)
	return r, err == nil
}

// chatPrefix begins a chat message, as the world encodes it.
var chatPrefix = []byte(`{"t":"` + gridworld.TypeChat + `",`)

// learn takes what a reply tells about the player and its region.
func (p *player) learn(r gridworld.Reply) {
	if r.X != nil && r.Y != nil && (r.N == "" || r.N == p.name) && r.T != gridworld.TypePos {
		p.x, p.y = *r.X, *r.Y
	}
	if r.Region != "" {
		if r.Region != p.region {
			p.seen = sightings{}
			clear(p.items)
		}
		p.region = r.Region
		for _, pile := range r.Items {
			p.items[[2]int{pile.X, pile.Y}] = true
		}
		for _, n := range r.Near {
			if !n.NPC {
				p.seen.add(n.N, n.X, n.Y)
			}
		}
	}
	if r.V > 0 {
		p.view = r.V
	}
	for _, n := range r.Seen {
		if !n.NPC {
			p.seen.add(n.N, n.X, n.Y)
		}
	}
	if r.Inv != nil || r.T == gridworld.TypeTook || r.T == gridworld.TypeDropped || r.T == gridworld.TypeTraded || r.T == gridworld.TypeInv {
		p.inv = r.Inv
		if p.inv == nil {
			p.inv = gridworld.Items{}
		}
	}
}

// sightings are the last players a bot saw, and where: the ones to
// offer a trade to, once it knows they are within view. Every position
// notice of a neighbour lands here (at 1,000 players, 70 a second for
// each bot), so it is a ring, overwritten in turn: keeping a map of
// everyone seen took a tenth of the bots' CPU, which they share with the
// server they measure.
type sightings struct {
	at   [16]sighting
	next int // where add writes
}

type sighting struct {
	name string
	x, y int
}

// add records that name stands at (x, y).
func (s *sightings) add(name string, x, y int) {
	s.at[s.next] = sighting{name, x, y}
	s.next = (s.next + 1) % len(s.at)
}

// forget drops name: it logged out.
func (s *sightings) forget(name string) {
	for i := range s.at {
		if s.at[i].name == name {
			s.at[i] = sighting{}
		}
	}
}

// run plays until play ends, waits for its last reply, tells quiet, and
// keeps reading until release, then logs out.
func (p *player) run(ctx, play context.Context, quiet *sync.WaitGroup, release <-chan struct{}) {
	interval := time.Duration(float64(time.Second) / p.cfg.Rate)
	tick := time.NewTimer(time.Duration(p.rnd.Int64N(int64(interval)) + 1)) // spread the starts
	defer tick.Stop()
	playing, quieted := true, false
	settle := func() {
		if !quieted && !playing && p.pending == 0 {
			quieted = true
			quiet.Done()
		}
	}
	defer func() {
		if !quieted {
			quiet.Done()
		}
	}()
	for {
		var stop <-chan struct{}
		if playing {
			stop = play.Done()
		}
		var out <-chan struct{}
		if quieted {
			out = release
		}
		select {
		case <-stop:
			playing = false
			settle()
		case <-tick.C:
			if p.pending != 0 && time.Since(p.sentAt) > p.cfg.ActionTimeout {
				p.cnt.timeouts.Add(1)
				p.cnt.errors.Add(1)
				p.pending = 0
				settle()
			}
			if playing && p.pending == 0 {
				p.act()
			}
			// Jitter of ±20% keeps players from marching in step.
			tick.Reset(interval*4/5 + time.Duration(p.rnd.Int64N(int64(interval*2/5)+1)))
		case m := <-p.c.Messages():
			p.handle(m)
			// What else is queued is handled without another select of
			// every case: frames come several to a read.
			for range maxDrain {
				select {
				case m := <-p.c.Messages():
					p.handle(m)
					continue
				default:
				}
				break
			}
			settle()
		case e := <-p.c.Errors():
			p.cnt.errors.Add(1)
			if e.Code == wire.CodeRateLimited {
				p.cnt.rateLimited.Add(1)
			}
			p.pending = 0 // the edge answered the command instead of the world
			settle()
		case e := <-p.c.Events():
			// The client reconnects by itself; a command in flight is sent
			// again if the edge had not stored it, and answered once.
			switch e.Kind {
			case client.Reconnecting:
				p.cnt.disconnects.Add(1)
				p.cfg.Logger.Debug("reconnecting", "player", p.name, "err", e.Err)
			case client.Lost:
				p.cnt.errors.Add(1)
				p.cfg.Logger.Warn("session lost", "player", p.name, "err", e.Err)
				return
			}
		case <-out:
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := p.c.Logout(lctx); err != nil {
				p.cfg.Logger.Debug("logout", "player", p.name, "err", err)
			}
			cancel()
			_ = p.c.Close()
			return
		case <-ctx.Done():
			_ = p.c.Close()
			return
		}
	}
}

// maxDrain bounds the messages a player handles between two looks at its
// timer and its other channels.
const maxDrain = 64

func (p *player) handle(m client.Message) {
	p.cnt.deliveries.Add(1)
	r, ok := decode(m)
	if !ok {
		return
	}
	if r.Re != 0 && r.Re == p.pending {
		p.latencies = append(p.latencies, time.Since(p.sentAt))
		p.ops = append(p.ops, p.pendingOp)
		p.sent = append(p.sent, p.sentAt)
		p.cnt.actions.Add(1)
		p.byOp[p.pendingOp]++
		p.pending = 0
		switch r.T {
		case gridworld.TypeRefused:
			p.cnt.refused.Add(1)
		case gridworld.TypeError:
			p.cnt.errors.Add(1)
		case gridworld.TypeTraded:
			p.cnt.trades.Add(1)
		case gridworld.TypeTook:
			delete(p.items, [2]int{p.x, p.y})
		}
		if r.T == gridworld.TypeRefused {
			p.refusals[p.pendingOp+": "+r.Why]++
			switch p.pendingOp {
			case "take":
				delete(p.items, [2]int{p.x, p.y})
			case "move": // a wall, the edge, someone: go around for a few steps
				p.heading = []string{"n", "s", "e", "w"}[p.rnd.IntN(4)]
				p.detour = 2 + p.rnd.IntN(4)
			}
		}
		p.learn(r)
		return
	}
	switch r.T {
	case gridworld.TypePos:
		if !r.NPC && r.N != p.name && r.X != nil && r.Y != nil {
			p.seen.add(r.N, *r.X, *r.Y)
		}
	case gridworld.TypeGone:
		p.seen.forget(r.N)
	case gridworld.TypeOffer:
		if len(p.offers) < 4 {
			p.offers = append(p.offers, r.From)
		}
	case gridworld.TypeTraded:
		p.learn(r) // our offer was accepted
	}
}

// act sends the next command.
func (p *player) act() {
	c := p.choose()
	p.nextID++
	c.ID = p.nextID
	b, err := json.Marshal(c)
	if err == nil {
		err = p.c.Send(b)
	}
	if err != nil {
		p.cnt.errors.Add(1)
		return
	}
	p.pending, p.pendingOp, p.sentAt = c.ID, c.Op, time.Now()
}

func (p *player) choose() gridworld.Command {
	if len(p.offers) > 0 {
		from := p.offers[0]
		p.offers = p.offers[1:]
		return gridworld.Command{Op: "accept", From: from}
	}
	if p.items[[2]int{p.x, p.y}] {
		return gridworld.Command{Op: "take"}
	}
	carried := p.carried()
	switch r := p.rnd.IntN(100); {
	case r < 6:
		return gridworld.Command{Op: "look"}
	case r < 12:
		return gridworld.Command{Op: "say", Text: "hello from " + p.name}
	case r < 13:
		return gridworld.Command{Op: "shout", Text: p.name + " shouts"}
	case r < 20 && len(carried) > 0:
		if near := p.near(); len(near) > 0 {
			return p.offer(near, carried)
		}
		fallthrough // no one in view to offer to: drop instead
	case r < 23 && len(carried) > 0:
		return gridworld.Command{Op: "drop", Item: carried[p.rnd.IntN(len(carried))]}
	}
	return gridworld.Command{Op: "move", Dir: p.direction()}
}

func (p *player) carried() []string {
	var ks []string
	for _, k := range gridworld.Kinds() {
		if p.inv[k] > 0 {
			ks = append(ks, k)
		}
	}
	return ks
}

// near returns the players lately seen within view, sorted, each once.
func (p *player) near() []string {
	var names []string
	for _, s := range p.seen.at {
		if s.name == "" || p.view > 0 && (abs(s.x-p.x) > p.view || abs(s.y-p.y) > p.view) {
			continue
		}
		names = append(names, s.name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func (p *player) offer(names, carried []string) gridworld.Command {
	c := gridworld.Command{Op: "offer", To: names[p.rnd.IntN(len(names))], Give: gridworld.Items{carried[p.rnd.IntN(len(carried))]: 1}}
	if p.rnd.IntN(2) == 0 {
		kinds := gridworld.Kinds()
		c.Want = gridworld.Items{kinds[p.rnd.IntN(len(kinds))]: 1}
	}
	return c
}

// direction heads for the nearest item it knows of; otherwise it keeps
// its heading, turning now and then.
func (p *player) direction() string {
	best, dist := [2]int{}, -1
	for it := range p.items {
		d := abs(it[0]-p.x) + abs(it[1]-p.y)
		if dist < 0 || d < dist {
			best, dist = it, d
		}
	}
	if p.detour > 0 {
		p.detour--
	} else if dist > 0 && p.rnd.IntN(4) != 0 {
		switch {
		case best[0] > p.x:
			return "e"
		case best[0] < p.x:
			return "w"
		case best[1] > p.y:
			return "s"
		default:
			return "n"
		}
	}
	if p.rnd.IntN(5) == 0 {
		p.heading = []string{"n", "s", "e", "w"}[p.rnd.IntN(4)]
	}
	return p.heading
}

func abs(v int) int { return max(v, -v) }
