package gridworld_test

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/internal/worldtest"
	"github.com/starbus/starbus/starbustest"
)

// quiet is a world with nothing moving on its own: no spawns, no NPCs.
func quiet() gridworld.Config {
	cfg := gridworld.Default()
	cfg.ItemCap, cfg.NPCs = 0, 0
	return cfg
}

func check(t *testing.T, w *worldtest.World) gridworld.Report {
	t.Helper()
	rep, err := w.Game.Check(t.Context(), w.Store)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !rep.OK {
		t.Fatalf("invariants violated: %v", rep.Violations)
	}
	return rep
}

// start runs a world whose tests may teleport players.
func start(t *testing.T, cfg gridworld.Config) *worldtest.World {
	return worldtest.Start(t, cfg, (*gridworld.Game).Teleporter)
}

// teleport puts an online player on a free cell and waits until it is
// there.
func teleport(t *testing.T, w *worldtest.World, name string, x, y int) {
	t.Helper()
	tp, err := json.Marshal(gridworld.Teleport{Name: name, X: x, Y: y})
	if err != nil {
		t.Fatal(err)
	}
	w.Emit("test", "teleport", gridworld.TaskTeleport, tp)
	w.Eventually(func() bool {
		snap, err := w.Game.Snapshot(t.Context(), w.Store)
		return err == nil && slices.Contains(snap.Players, gridworld.Player{N: name, X: x, Y: y})
	}, "%s teleported to %d,%d", name, x, y)
}

func move(dir string) gridworld.Command { return gridworld.Command{Op: "move", Dir: dir} }

func xy(r gridworld.Reply) [2]int {
	if r.X == nil || r.Y == nil {
		return [2]int{-1, -1}
	}
	return [2]int{*r.X, *r.Y}
}

func TestMove(t *testing.T) {
	w := start(t, quiet())
	ann, bob := w.Login(t, "ann"), w.Login(t, "bob")
	if ann.Welcome.T != gridworld.TypeWelcome || ann.Welcome.W != 64 || ann.Welcome.RS != 16 {
		t.Fatalf("welcome: %+v", ann.Welcome)
	}
	// The room of region r0-0 has its west wall at x=4, from y=4 to 11,
	// with a doorway at y=7 and 8.
	teleport(t, w, "ann", 3, 5)
	teleport(t, w, "bob", 2, 5)
	steps := []struct {
		dir, want, why string
		at             [2]int
	}{
		{"e", gridworld.TypeRefused, "wall", [2]int{}},
		{"w", gridworld.TypeRefused, "occupied", [2]int{}},
		{"s", gridworld.TypeMoved, "", [2]int{3, 6}},
		{"s", gridworld.TypeMoved, "", [2]int{3, 7}},
		{"e", gridworld.TypeMoved, "", [2]int{4, 7}}, // the doorway
	}
	for _, s := range steps {
		r := ann.Do(move(s.dir))
		if r.T != s.want || r.Why != s.why || s.want == gridworld.TypeMoved && xy(r) != s.at {
			t.Fatalf("move %s: %+v, want %s %q at %v", s.dir, r, s.want, s.why, s.at)
		}
	}
	// bob, in the same region, saw ann's moves.
	seen := bob.Wait(func(r gridworld.Reply) bool { return r.T == gridworld.TypePos && r.N == "ann" && xy(r) == [2]int{4, 7} })
	if seen.NPC {
		t.Fatalf("ann reported as an NPC: %+v", seen)
	}
	// The world's edge.
	teleport(t, w, "ann", 15, 0)
	if r := ann.Do(move("n")); r.T != gridworld.TypeRefused || r.Why != "edge" {
		t.Fatalf("off the edge: %+v", r)
	}
	// Crossing into region r1-0: ann sees her new region.
	r := ann.Do(move("e"))
	if r.T != gridworld.TypeMoved || xy(r) != [2]int{16, 0} || r.Region != "r1-0" {
		t.Fatalf("crossing: %+v", r)
	}
	// Look shows who is near; moves are heard within View (8 cells).
	teleport(t, w, "bob", 17, 1)
	look := ann.Do(gridworld.Command{Op: "look"})
	if look.T != gridworld.TypeLook || len(look.Near) != 1 || look.Near[0] != (gridworld.Player{N: "bob", X: 17, Y: 1}) {
		t.Fatalf("look: %+v", look)
	}
	if r := ann.Do(move("e")); xy(r) != [2]int{17, 0} {
		t.Fatalf("move e: %+v", r)
	}
	bob.Wait(func(r gridworld.Reply) bool {
		return r.T == gridworld.TypePos && r.N == "ann" && xy(r) == [2]int{17, 0}
	})
	// A move shows who comes into view: bob, 9 columns east, is seen once
	// ann steps east; and he hears her from then on.
	teleport(t, w, "bob", 26, 2)
	if r := ann.Do(move("e")); xy(r) != [2]int{18, 0} || !slices.Contains(r.Seen, gridworld.Player{N: "bob", X: 26, Y: 2}) {
		t.Fatalf("move e: %+v, want bob seen at 26,2", r)
	}
	if r := ann.Do(move("s")); xy(r) != [2]int{18, 1} || len(r.Seen) != 0 {
		t.Fatalf("move s: %+v, want no one newly seen", r)
	}
	bob.Wait(func(r gridworld.Reply) bool {
		return r.T == gridworld.TypePos && r.N == "ann" && xy(r) == [2]int{18, 1}
	})
	if rep := check(t, w); rep.Online != 2 {
		t.Fatalf("report: %+v", rep)
	}
}

func TestItemsAndTrade(t *testing.T) {
	w := start(t, quiet())
	ctx := t.Context()
	ann, bob := w.Login(t, "ann"), w.Login(t, "bob")
	teleport(t, w, "ann", 1, 1)
	for _, k := range []string{"gem", "gem", "coin"} {
		if err := w.Game.Drop(ctx, w.Store, k, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Game.Drop(ctx, w.Store, "herb", 40, 40); err != nil {
		t.Fatal(err)
	}
	if r := ann.Do(gridworld.Command{Op: "look"}); len(r.Items) != 1 || r.Items[0].X != 1 || len(r.Items[0].Items) != 3 {
		t.Fatalf("look: %+v", r)
	}
	if r := ann.Do(gridworld.Command{Op: "take"}); r.T != gridworld.TypeTook || r.Inv["gem"] != 2 || r.Inv["coin"] != 1 {
		t.Fatalf("take: %+v", r)
	}
	if r := ann.Do(gridworld.Command{Op: "take"}); r.T != gridworld.TypeRefused {
		t.Fatalf("take again: %+v", r)
	}
	if r := ann.Do(gridworld.Command{Op: "drop", Item: "coin"}); r.T != gridworld.TypeDropped || r.Inv["coin"] != 0 {
		t.Fatalf("drop: %+v", r)
	}
	if r := ann.Do(gridworld.Command{Op: "drop", Item: "coin"}); r.T != gridworld.TypeRefused {
		t.Fatalf("drop what ann lacks: %+v", r)
	}
	check(t, w)

	// Trades: offers that cannot be paid are refused, a good one moves
	// items both ways in one transaction.
	offer := gridworld.Command{Op: "offer", To: "bob", Give: gridworld.Items{"gem": 1}, Want: gridworld.Items{"herb": 1}}
	if r := ann.Do(gridworld.Command{Op: "offer", To: "bob", Give: gridworld.Items{"gem": 5}}); r.T != gridworld.TypeRefused {
		t.Fatalf("offer of what ann lacks: %+v", r)
	}
	if r := ann.Do(offer); r.T != gridworld.TypeOffered {
		t.Fatalf("offer: %+v", r)
	}
	bob.Wait(func(r gridworld.Reply) bool {
		return r.T == gridworld.TypeOffer && r.From == "ann" && r.Give["gem"] == 1
	})
	if r := bob.Do(gridworld.Command{Op: "accept", From: "ann"}); r.T != gridworld.TypeRefused || !strings.Contains(r.Why, "wants") {
		t.Fatalf("accept without the herb: %+v", r)
	}
	if r := bob.Do(gridworld.Command{Op: "accept", From: "ann"}); r.T != gridworld.TypeRefused || !strings.Contains(r.Why, "no offer") {
		t.Fatalf("a refused offer is gone: %+v", r)
	}
	teleport(t, w, "bob", 40, 40)
	if r := bob.Do(gridworld.Command{Op: "take"}); r.Inv["herb"] != 1 {
		t.Fatalf("bob takes the herb: %+v", r)
	}
	if r := ann.Do(offer); r.T != gridworld.TypeOffered {
		t.Fatalf("offer: %+v", r)
	}
	r := bob.Do(gridworld.Command{Op: "accept", From: "ann"})
	if r.T != gridworld.TypeTraded || r.Inv["gem"] != 1 || r.Inv["herb"] != 0 {
		t.Fatalf("accept: %+v", r)
	}
	told := ann.Wait(func(r gridworld.Reply) bool { return r.T == gridworld.TypeTraded })
	if told.Inv["gem"] != 1 || told.Inv["herb"] != 1 || told.N != "bob" {
		t.Fatalf("ann told: %+v", told)
	}
	if rep := check(t, w); rep.Spawned["gem"] != 2 || rep.Carried["gem"] != 2 || rep.InWorld["coin"] != 1 {
		t.Fatalf("report: %+v", rep)
	}
}

// TestTradeRace runs an accept against a drop of the item offered, again
// and again: either the trade happens or the drop does, never both.
func TestTradeRace(t *testing.T) {
	w := start(t, quiet())
	ctx := t.Context()
	ann, bob := w.Login(t, "ann"), w.Login(t, "bob")
	teleport(t, w, "ann", 1, 1)
	traded, dropped := 0, 0
	for range 10 {
		if err := w.Game.Drop(ctx, w.Store, "gem", 1, 1); err != nil {
			t.Fatal(err)
		}
		if r := ann.Do(gridworld.Command{Op: "take"}); r.Inv["gem"] != 1 {
			t.Fatalf("take: %+v", r)
		}
		if r := ann.Do(gridworld.Command{Op: "offer", To: "bob", Give: gridworld.Items{"gem": 1}}); r.T != gridworld.TypeOffered {
			t.Fatalf("offer: %+v", r)
		}
		var wg sync.WaitGroup
		var acc, drop gridworld.Reply
		wg.Go(func() { acc = bob.Do(gridworld.Command{Op: "accept", From: "ann"}) })
		wg.Go(func() { drop = ann.Do(gridworld.Command{Op: "drop", Item: "gem"}) })
		wg.Wait()
		a, d := acc.T == gridworld.TypeTraded, drop.T == gridworld.TypeDropped
		if a == d {
			t.Fatalf("accept %+v and drop %+v: exactly one must succeed", acc, drop)
		}
		if a {
			traded++
		} else {
			dropped++
			// Clear ann's cell for the next round: bob ends up with it all.
			if r := ann.Do(gridworld.Command{Op: "take"}); r.T != gridworld.TypeTook {
				t.Fatalf("take back: %+v", r)
			}
			if r := ann.Do(gridworld.Command{Op: "offer", To: "bob", Give: gridworld.Items{"gem": 1}}); r.T != gridworld.TypeOffered {
				t.Fatalf("offer: %+v", r)
			}
			if r := bob.Do(gridworld.Command{Op: "accept", From: "ann"}); r.T != gridworld.TypeTraded {
				t.Fatalf("accept: %+v", r)
			}
		}
		ann.Drain() // ann's notices of trades are not needed here
	}
	rep := check(t, w)
	if rep.Carried["gem"] != 10 || rep.InWorld["gem"] != 0 {
		t.Fatalf("report after %d trades, %d drops: %+v", traded, dropped, rep)
	}
	t.Logf("%d trades won, %d drops won", traded, dropped)
}

func TestSpawnCap(t *testing.T) {
	cfg := quiet()
	cfg.ItemCap, cfg.SpawnEvery = 20, 20*time.Millisecond
	w := worldtest.Start(t, cfg)
	w.Login(t, "ann")
	n := 0
	w.Eventually(func() bool {
		snap, err := w.Game.Snapshot(t.Context(), w.Store)
		if err != nil {
			t.Fatal(err)
		}
		n = 0
		for _, p := range snap.Items {
			n += len(p.Items)
		}
		if n > cfg.ItemCap {
			t.Fatalf("%d items in the world, cap %d", n, cfg.ItemCap)
		}
		return n == cfg.ItemCap
	}, "spawner fills the world: %d items", n)
	rep := check(t, w)
	if total(rep.Spawned) != cfg.ItemCap {
		t.Fatalf("report: %+v", rep)
	}
}

func total(it gridworld.Items) int {
	n := 0
	for _, c := range it {
		n += c
	}
	return n
}

func TestTakeoverAndLogout(t *testing.T) {
	w := start(t, quiet())
	first := w.Login(t, "ann")
	second := w.Login(t, "ann")
	first.Wait(func(r gridworld.Reply) bool { return r.T == gridworld.TypeReplaced })
	if xy(first.Welcome) != xy(second.Welcome) {
		t.Fatalf("takeover moved ann from %v to %v", xy(first.Welcome), xy(second.Welcome))
	}
	if r := first.Do(move("n")); r.T != gridworld.TypeRefused || !strings.Contains(r.Why, "not playing") {
		t.Fatalf("the replaced session: %+v", r)
	}
	check(t, w)
	second.Logout()
	w.Eventually(func() bool { return check(t, w).Online == 0 }, "ann offline")
	// Back at the same place.
	again := w.Login(t, "ann")
	if xy(again.Welcome) != xy(second.Welcome) {
		t.Fatalf("ann came back at %v, left at %v", xy(again.Welcome), xy(second.Welcome))
	}
}

// TestChat plays the world with the public test kit alone, as a studio
// tests its own game: players are in the global channel and their
// region's, and hear each other there.
func TestChat(t *testing.T) {
	g, err := gridworld.New(quiet())
	if err != nil {
		t.Fatal(err)
	}
	w := starbustest.Start(t, starbustest.Options{Handler: g.Handler(), Init: g.Init()})
	ctx := t.Context()
	is := func(typ string) func(gridworld.Reply) bool {
		return func(r gridworld.Reply) bool { return r.T == typ }
	}
	ann, bob := w.Login("ann"), w.Login("bob")
	welcome := starbustest.ExpectJSON(ctx, ann, is(gridworld.TypeWelcome))
	starbustest.ExpectJSON(ctx, bob, is(gridworld.TypeWelcome))
	ann.Expect(ctx, starbustest.Joined("chat-"+welcome.Region))
	if got, want := w.Members("global"), sorted(ann.ID, bob.ID); !slices.Equal(got, want) {
		t.Fatalf("global: %v, want %v", got, want)
	}
	if !slices.Contains(w.Members("chat-"+welcome.Region), ann.ID) {
		t.Fatalf("ann is not in the chat of her region %s", welcome.Region)
	}

	bob.Send([]byte("shout hello, world"))
	starbustest.ExpectJSON(ctx, bob, is(gridworld.TypeSaid))
	heard := ann.Expect(ctx, starbustest.OnChannel("global"))
	var c gridworld.Reply
	if err := json.Unmarshal(heard.Payload, &c); err != nil || c.T != gridworld.TypeChat || c.From != "bob" || c.Text != "hello, world" {
		t.Fatalf("ann heard %s (%v)", heard.Payload, err)
	}

	ann.Send([]byte(`{"id":7,"op":"say","text":"anyone here?"}`))
	if r := starbustest.ExpectJSON(ctx, ann, is(gridworld.TypeSaid)); r.Re != 7 {
		t.Fatalf("say: %+v", r)
	}
	if m := ann.Expect(ctx, starbustest.OnChannel("chat-"+welcome.Region)); !strings.Contains(string(m.Payload), "anyone here?") {
		t.Fatalf("ann's region heard %s", m.Payload)
	}

	ann.Logout()
	w.Eventually(func() bool { return slices.Equal(w.Members("global"), []string{bob.ID}) }, "ann leaves the global channel")
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// TestLeaderboard: the leaderboard ranks what players carry, from its
// index of their inventories, as takes commit.
func TestLeaderboard(t *testing.T) {
	w := start(t, quiet())
	ctx := t.Context()
	lb, err := gridworld.OpenLeaderboard(ctx, w.Env.JS, w.Env.World)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	if err := lb.Synced(ctx); err != nil {
		t.Fatal(err)
	}
	ann, bob := w.Login(t, "ann"), w.Login(t, "bob")
	for _, p := range []struct {
		name  string
		x, y  int
		items []string
		c     *worldtest.Player
	}{{"ann", 1, 1, []string{"gem", "gem"}, ann}, {"bob", 3, 3, []string{"gem", "coin"}, bob}} {
		teleport(t, w, p.name, p.x, p.y)
		for _, k := range p.items {
			if err := w.Game.Drop(ctx, w.Store, k, p.x, p.y); err != nil {
				t.Fatal(err)
			}
		}
		if r := p.c.Do(gridworld.Command{Op: "take"}); r.T != gridworld.TypeTook {
			t.Fatalf("%s take: %+v", p.name, r)
		}
	}
	top := func(kind string) []gridworld.Leader {
		l, err := lb.Top(kind, 5)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	w.Eventually(func() bool {
		return slices.Equal(top("gem"), []gridworld.Leader{{N: "ann", Count: 2}, {N: "bob", Count: 1}})
	}, "gems: %v", top("gem"))
	if got := top("coin"); !slices.Equal(got, []gridworld.Leader{{N: "bob", Count: 1}}) {
		t.Errorf("coins: %v", got)
	}
	if got := top("herb"); len(got) != 0 {
		t.Errorf("herbs, which nobody carries: %v", got)
	}
	if got := top("rock"); len(got) != 0 {
		t.Errorf("a kind that does not exist: %v", got)
	}
	if got, _ := lb.Top("gem", 1); !slices.Equal(got, []gridworld.Leader{{N: "ann", Count: 2}}) {
		t.Errorf("top 1: %v", got)
	}
}
