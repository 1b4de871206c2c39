package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/starbustest"
)

// areaGame is a plane of entities. An entity is a session's avatar
// (placed at its login) or not; an event "steps" [{"e", "x", "y"}, ...]
// moves each entity e to (x, y) in turn and publishes "e x y" there in
// the area; an avatar's move moves its session's interest with it.
// "flush" sends "done" to its session.
type areaGame struct {
	area  handlers.Area
	start func(name string) (x, y float64)
}

type stepEvent struct {
	E string  `json:"e"`
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

type entity struct {
	X, Y    float64
	Session string `json:",omitempty"`
}

func (g *areaGame) handler() handlers.Handler {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		name := string(t.Data)
		x, y := g.start(name)
		if err := t.Put("ent."+name, entity{X: x, Y: y, Session: t.Session}); err != nil {
			return err
		}
		if err := t.SetInterest(ctx, g.area, t.Session, x, y); err != nil {
			return err
		}
		return t.Send(t.Session, []byte("welcome"))
	})
	mux.HandleFunc("steps", func(ctx context.Context, t *handlers.Task) error {
		var evs []stepEvent
		if err := json.Unmarshal(t.Data, &evs); err != nil {
			return handlers.Permanent(err)
		}
		keys := make([]string, len(evs))
		for i, ev := range evs {
			keys[i] = "ent." + ev.E
		}
		if err := t.Prefetch(ctx, keys...); err != nil { // one round trip, not 25
			return err
		}
		for _, ev := range evs {
			var e entity
			if _, err := t.Lookup(ctx, "ent."+ev.E, &e); err != nil {
				return err
			}
			e.X, e.Y = ev.X, ev.Y
			if err := t.Put("ent."+ev.E, e); err != nil {
				return err
			}
			if e.Session != "" {
				if err := t.SetInterest(ctx, g.area, e.Session, e.X, e.Y); err != nil {
					return err
				}
			}
			if err := t.PublishAt(g.area, e.X, e.Y, fmt.Appendf(nil, "%s %g %g", ev.E, e.X, e.Y)); err != nil {
				return err
			}
		}
		return nil
	})
	mux.HandleFunc("flush", func(ctx context.Context, t *handlers.Task) error {
		var e entity
		if _, err := t.Lookup(ctx, "ent."+string(t.Data), &e); err != nil {
			return err
		}
		return t.Send(e.Session, []byte("done"))
	})
	return mux
}

// TestAreaOfInterest moves 2,000 entities at random, 100 of them players'
// avatars, over a plane of 256×256 with squares of half-side 16, and
// checks that every session received exactly the area events within its
// square at each event, in order, against a brute-force replay of the
// committed history read back from the world's stream. Some sessions lose
// their connection midway and resume: what they missed is replayed,
// judged against where they looked at each event.
func TestAreaOfInterest(t *testing.T) {
	const (
		side     = 256
		entities = 2000
		players  = 100
		steps    = 6000
	)
	rnd := rand.New(rand.NewPCG(7, 11))
	startAt := map[string][2]float64{}
	names := make([]string, entities)
	for i := range names {
		names[i] = "e" + strconv.Itoa(i)
		startAt[names[i]] = [2]float64{float64(rnd.IntN(side)), float64(rnd.IntN(side))}
	}
	g := &areaGame{
		area:  handlers.Area{Name: "near", Cell: 8, Radius: 16, Delivery: handlers.Reliable},
		start: func(name string) (float64, float64) { p := startAt[name]; return p[0], p[1] },
	}
	w := starbustest.Start(t, starbustest.Options{Handler: g.handler(), Timeout: 2 * time.Minute,
		// Slow machines (a race-detector build on a loaded one) take
		// minutes: tasks get time, and the events are kept for the check.
		Runtime: handlers.Config{TaskTimeout: 10 * time.Second, OutboxTTL: time.Hour}})
	ctx := t.Context()

	sessions := make([]*starbustest.Session, players)
	for i := range sessions {
		sessions[i] = w.Login(names[i])
		sessions[i].Expect(ctx, starbustest.Text("welcome"))
	}
	// The other entities are placed by a first step each.
	pos := map[string][2]float64{}
	for _, n := range names {
		pos[n] = startAt[n]
	}
	var evs []stepEvent
	for _, n := range names[players:] {
		evs = append(evs, stepEvent{E: n, X: pos[n][0], Y: pos[n][1]})
	}
	for range steps {
		n := names[rnd.IntN(entities)]
		p := pos[n]
		if rnd.IntN(20) == 0 { // now and then a jump across the plane
			p = [2]float64{float64(rnd.IntN(side)), float64(rnd.IntN(side))}
		} else {
			p[0] = min(max(p[0]+float64(rnd.IntN(9)-4), 0), side-1)
			p[1] = min(max(p[1]+float64(rnd.IntN(9)-4), 0), side-1)
		}
		pos[n] = p
		evs = append(evs, stepEvent{E: n, X: p[0], Y: p[1]})
	}
	// The steps go in events of up to 25 steps, ordered by one of 8 keys
	// (an entity's always the same), so that tasks commit side by side
	// and every entity's steps keep their order.
	publishAll := func(evs []stepEvent) {
		t.Helper()
		var futures []jetstream.PubAckFuture
		groups := map[string][]stepEvent{}
		send := func(part string) {
			subj, _ := w.World.Event("r", part)
			m := nats.NewMsg(subj)
			m.Header.Set(bus.HeaderType, "steps")
			m.Data, _ = json.Marshal(groups[part])
			f, err := w.JS.PublishMsgAsync(m)
			if err != nil {
				t.Fatal(err)
			}
			futures = append(futures, f)
			delete(groups, part)
		}
		for _, ev := range evs {
			part := "k" + strconv.Itoa(bus.Partition(ev.E)%8)
			if groups[part] = append(groups[part], ev); len(groups[part]) == 25 {
				send(part)
			}
		}
		for _, part := range slices.Sorted(maps.Keys(groups)) {
			send(part)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
	}
	publish := func(evs []stepEvent) {
		t.Helper()
		for len(evs) > 5000 { // within the client's bound on acks outstanding
			publishAll(evs[:5000])
			evs = evs[5000:]
		}
		publishAll(evs)
	}
	// Every session receives meanwhile, until the "done" its flush sends.
	type received struct {
		seqs   []uint64
		events map[uint64]string
		err    error
	}
	got := make([]received, players)
	var wg sync.WaitGroup
	for i, s := range sessions {
		got[i].events = map[uint64]string{}
		wg.Go(func() {
			for {
				select {
				case m := <-s.Client.Messages():
					switch {
					case m.Kind == client.KindMessage && m.Channel == "near":
						got[i].seqs = append(got[i].seqs, m.Seq)
						got[i].events[m.Seq] = string(m.Payload)
					case m.Kind == client.KindMessage && m.Channel == "" && string(m.Payload) == "done":
						return
					}
				case <-ctx.Done():
					got[i].err = ctx.Err()
					return
				}
			}
		})
	}
	half := len(evs) / 2
	began := time.Now()
	publish(evs[:half])
	// A tenth of the players lose their connection while the second half
	// is played, and resume: what they missed is replayed.
	var lost []*starbustest.Session
	for i := 0; i < players; i += 10 {
		if err := sessions[i].Client.Drop(); err != nil {
			t.Fatal(err)
		}
		lost = append(lost, sessions[i])
	}
	publish(evs[half:])
	for _, s := range lost {
		if err := s.Client.Reconnect(ctx); err != nil {
			t.Fatalf("%s: reconnect: %v", s.Name, err)
		}
	}
	t.Logf("published in %v", time.Since(began))
	waitStored(t, w, w.World.AreaFilter("near"), len(evs))
	t.Logf("stored in %v", time.Since(began))
	for _, s := range sessions {
		w.Emit("r", s.Name, "flush", []byte(s.Name))
	}
	wg.Wait()
	t.Logf("received in %v", time.Since(began))
	for i, r := range got {
		if r.err != nil {
			t.Fatalf("%s: %v", sessions[i].Name, r.err)
		}
	}

	// The brute force: the stream in order, every session's interest as
	// its notices set it, every event judged against every interest.
	want := make([][]uint64, players)
	index := map[string]int{}
	for i, s := range sessions {
		index[s.ID] = i
	}
	look := map[string]bus.Interest{}
	n := 0
	scanStream(t, w, w.World.OutFilter(), func(m jetstream.Msg, seq uint64) {
		if id, ok := w.World.ParseSession(m.Subject()); ok && m.Headers().Get(bus.HeaderNotice) == bus.NoticeInterest {
			in, err := bus.DecodeInterestNotice(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if in.Drop {
				delete(look, id)
			} else {
				look[id] = in.Interest
			}
			return
		}
		if _, _, _, ok := w.World.ParseArea(m.Subject()); !ok {
			return
		}
		n++
		x, y, _ := bus.ParseAt(m.Headers().Get(bus.HeaderAt))
		for id, in := range look {
			if in.Covers(x, y) {
				want[index[id]] = append(want[index[id]], seq)
			}
		}
	})
	if n != len(evs) {
		t.Fatalf("%d area events stored, want %d", n, len(evs))
	}
	total := 0
	for i := range sessions {
		total += len(want[i])
		if !slices.Equal(got[i].seqs, want[i]) {
			t.Errorf("%s: received %d area events, want %d; first difference: %s", sessions[i].Name, len(got[i].seqs), len(want[i]), firstDiff(got[i].seqs, want[i], got[i].events))
		}
	}
	if total < steps/10 {
		t.Fatalf("only %d deliveries in all: the test proves little", total)
	}
	t.Logf("%d area events, %d deliveries to %d sessions (%.2f per event)", n, total, players, float64(total)/float64(n))
}

// waitStored waits until the world's stream holds n messages on filter.
func waitStored(t *testing.T, w *starbustest.World, filter string, n int) {
	t.Helper()
	var total uint64
	deadline := time.Now().Add(w.Timeout)
	for total < uint64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages on %s after %v, want %d", total, filter, w.Timeout, n)
		}
		time.Sleep(50 * time.Millisecond) // polling the stream's count
		info, err := w.Stream.Info(t.Context(), jetstream.WithSubjectFilter(filter))
		if err != nil {
			continue
		}
		total = 0
		for _, c := range info.State.Subjects {
			total += c
		}
	}
}

// scanStream calls f for every message of the world's stream on filter, in
// order.
func scanStream(t *testing.T, w *starbustest.World, filter string, f func(m jetstream.Msg, seq uint64)) {
	t.Helper()
	ctx := t.Context()
	cons, err := w.Stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		batch, err := cons.FetchNoWait(1024)
		if err != nil {
			t.Fatal(err)
		}
		n, pending := 0, uint64(0)
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			f(m, meta.Sequence.Stream)
			n++
			pending = meta.NumPending
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if n > 0 && pending == 0 {
			return
		}
	}
}

// firstDiff describes where two sequences of stream sequences part.
func firstDiff(got, want []uint64, events map[uint64]string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: got %d (%q), want %d", i, got[i], events[got[i]], want[i])
		}
	}
	return fmt.Sprintf("one is a prefix of the other (%d vs %d)", len(got), len(want))
}
