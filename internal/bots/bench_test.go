package bots_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/internal/bots"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/internal/worldtest"
)

// BenchmarkRoundTrip measures a player's action end to end, client to
// world and back, with benchPlayers players acting as fast as they can
// for benchDuration (run it with -benchtime 1x; scripts/bench does):
//
//   - starbus: bots (edge/client over TCP) playing the reference world
//     through an edge, the handler runtime and kv: SEND, event stored,
//     task (reads, writes, sends), group commit, reply delivered by the
//     edge.
//   - bare-batch: the substrate operations of one move, hand-written on
//     JetStream with no Starbus code: the client publishes the event to
//     the stream; a worker pool pull-consumes it, does 4 direct gets, and
//     commits one atomic batch (3 revision-checked writes, an applied
//     marker, the reply) per event, then acks; the client receives the
//     reply on a core subscription. Correct, not grouped.
//   - bare-publish: the same, with the 5 messages published
//     asynchronously instead of as an atomic batch: no atomicity, no
//     checks, the substrate's ceiling.
//
// The three run in turn, benchRounds rounds of them (starbus, bare-batch,
// bare-publish, starbus, ...): this machine's speed drifts within minutes,
// and a ratio of two runs minutes apart measures the drift too. Each run
// is a sub-benchmark players=N/round=R/impl, with a world of its own.
//
// Reported: actions/s and round-trip p50/p99 in milliseconds.
func BenchmarkRoundTrip(b *testing.B) {
	players, dur := benchPlayers(), benchDuration()
	for round := 1; round <= benchRounds(); round++ {
		for _, impl := range []string{"starbus", "bare-batch", "bare-publish"} {
			benchRoundTrip(b, fmt.Sprintf("players=%d/round=%d/%s", players, round, impl), impl, players, dur)
		}
	}
}

// benchRoundTrip runs one implementation once, as the sub-benchmark name.
func benchRoundTrip(b *testing.B, name, impl string, players int, dur time.Duration) {
	b.Run(name, func(b *testing.B) {
		var (
			n   uint64
			lat []time.Duration
			el  time.Duration
		)
		if impl == "starbus" {
			n, lat, el = benchStarbus(b, players, dur)
		} else {
			n, lat, el = benchBare(b, players, dur, impl == "bare-batch")
		}
		slices.Sort(lat)
		q := func(f float64) float64 {
			if len(lat) == 0 {
				return 0
			}
			return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) / 1000
		}
		b.ReportMetric(float64(n)/el.Seconds(), "actions/s")
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(0, "ns/op")
	})
}

// benchRounds is how many times each implementation runs (BENCH_ROUNDS,
// default 3).
func benchRounds() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

func benchPlayers() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_PLAYERS")); err == nil && n > 0 {
		return n
	}
	return 100
}

func benchDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil && d > 0 {
		return d
	}
	return 10 * time.Second
}

func benchStarbus(b *testing.B, players int, dur time.Duration) (uint64, []time.Duration, time.Duration) {
	w := worldtest.Start(b, gridworld.Default())
	var lat []time.Duration
	sum, err := bots.Run(context.Background(), bots.Config{
		Addr: w.Addr, Players: players, Duration: dur, Rate: 40, // under the edge's 50/s: as fast as replies come
		Latencies: func(l []time.Duration) { lat = l },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d actions, %d errors, runtime %+v", sum.Actions, sum.Errors, w.Runtime.Stats())
	return sum.Actions, lat, time.Duration(sum.Seconds * float64(time.Second))
}

func benchBare(b *testing.B, players int, dur time.Duration, atomic bool) (uint64, []time.Duration, time.Duration) {
	env := natstest.Start(b, natstest.Options{World: "bare"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := env.World

	// Replies: one core subscription, dispatched to the waiting player.
	replies := make([]chan struct{}, players)
	for i := range replies {
		replies[i] = make(chan struct{}, 1)
	}
	sub, err := env.Conn.Subscribe(w.SessionFilter(), func(m *nats.Msg) {
		id, _ := w.ParseSession(m.Subject)
		if i, err := strconv.Atoi(id[1:]); err == nil && i < players {
			replies[i] <- struct{}{}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()

	// Workers: a pull consumer and 64 goroutines, like the runtime's pool.
	cons, err := env.JS.CreateOrUpdateConsumer(ctx, w.Stream(), jetstream.ConsumerConfig{
		Durable: "bare", FilterSubject: w.EventFilter(), AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4096,
	})
	if err != nil {
		b.Fatal(err)
	}
	iter, err := cons.Messages()
	if err != nil {
		b.Fatal(err)
	}
	events := make(chan jetstream.Msg, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(events)
		for {
			m, err := iter.Next()
			if err != nil {
				return
			}
			events <- m
		}
	})
	for range 64 {
		wg.Go(func() {
			for m := range events {
				if err := bareTask(ctx, env, m, atomic); err != nil && ctx.Err() == nil {
					b.Error(err)
				}
				_ = m.Ack()
			}
		})
	}

	// Players: closed loop, one event in flight each.
	deadline := time.Now().Add(dur)
	lat := make([][]time.Duration, players)
	start := time.Now()
	var pw sync.WaitGroup
	for i := range players {
		pw.Go(func() {
			subj, _ := w.Event("r0", "p"+strconv.Itoa(i))
			for n := 1; time.Now().Before(deadline); n++ {
				m := nats.NewMsg(subj)
				m.Data = []byte(`{"op":"move","dir":"n"}`)
				m.Header.Set(bus.HeaderType, bus.EventMessage)
				m.Header.Set(bus.HeaderSession, "p"+strconv.Itoa(i))
				m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("p%d-%d", i, n))
				t0 := time.Now()
				if _, err := env.JS.PublishMsg(ctx, m); err != nil {
					b.Error(err)
					return
				}
				select {
				case <-replies[i]:
					lat[i] = append(lat[i], time.Since(t0))
				case <-time.After(30 * time.Second):
					b.Error("no reply in 30 s")
					return
				}
			}
		})
	}
	pw.Wait()
	elapsed := time.Since(start)
	iter.Stop()
	wg.Wait()
	all := slices.Concat(lat...)
	return uint64(len(all)), all, elapsed
}

// bareTask is one move on bare JetStream: 4 direct gets, then 3 checked
// writes, an applied marker and the reply, atomically or not.
func bareTask(ctx context.Context, env *natstest.Env, ev jetstream.Msg, atomic bool) error {
	w := env.World
	meta, err := ev.Metadata()
	if err != nil {
		return err
	}
	session := ev.Headers().Get(bus.HeaderSession)
	var msgs []*nats.Msg
	for j, k := range []string{"pos", "from", "to", "sess"} {
		subj, _ := w.Key("bare." + session + "." + k)
		rev := uint64(0)
		last, err := env.Stream.GetLastMsgForSubject(ctx, subj)
		switch {
		case err == nil:
			rev = last.Sequence
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return err
		}
		if j == 3 {
			continue // read only
		}
		m := nats.NewMsg(subj)
		m.Data = []byte(`{"x":1,"y":2,"on":true}`)
		// No rollup: Starbus's writes leave the revision they supersede to
		// compaction (kv.Store.Revisions), and so do these.
		if atomic {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
		}
		msgs = append(msgs, m)
	}
	done := nats.NewMsg(w.Done(meta.Sequence.Stream))
	if atomic {
		done.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	}
	out, _ := w.Session(session)
	reply := nats.NewMsg(out)
	reply.Data = []byte(`{"t":"moved","re":1,"x":1,"y":2}`)
	msgs = append(msgs, done, reply)
	if atomic {
		return natstest.PublishBatch(ctx, env.JS, msgs)
	}
	return natstest.PublishAsync(ctx, env.JS, msgs)
}
