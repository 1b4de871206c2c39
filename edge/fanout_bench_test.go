package edge_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
)

// BenchmarkFanout measures channel fan-out to connected clients: b.N
// channel messages, spread over the channels, each delivered to every
// member's socket; deliveries/s and the latency from the send to a
// member's receipt. Shapes: 1 channel of 1,000 members, and 100 channels
// of 10. Paths:
//
//   - reliable: each message is an event whose task sends it to a reliable
//     channel (commit, stream, the edge's index, sockets);
//   - best-effort: the same task, on a best-effort channel (commit, then
//     core NATS to the edge);
//   - core-nats: the substrate alone: one core NATS connection per member,
//     subscribed to its channel's subject, and a publisher.
//
// Load: "burst" sends the b.N messages at once (deliveries/s is the
// throughput; the latency is mostly the wait behind the burst); "paced"
// sends them at a steady rate every path sustains (20,000 deliveries/s for
// 1x1000, 2,000 for 100x10), so the latency is the path's own.
//
// Compare the rows of one run: the machine is shared.
func BenchmarkFanout(b *testing.B) {
	for _, shape := range []struct{ channels, members, pacedRate int }{{1, 1000, 20}, {100, 10, 200}} {
		for _, load := range []string{"burst", "paced"} {
			for _, path := range []string{"reliable", "best-effort", "core-nats"} {
				b.Run(fmt.Sprintf("%dx%d/%s/%s", shape.channels, shape.members, load, path), func(b *testing.B) {
					f := fanout{channels: shape.channels, members: shape.members}
					if load == "paced" {
						f.every = time.Second / time.Duration(shape.pacedRate)
					}
					if path == "core-nats" {
						benchCoreFanout(b, f)
						return
					}
					benchStarbusFanout(b, f, path == "best-effort")
				})
			}
		}
	}
}

// fanout is a benchmark's shape and load.
type fanout struct {
	channels, members int
	every             time.Duration // between two sends; 0: all at once
}

// send calls f for each of the b.N messages, at the load's pace.
func (f fanout) send(b *testing.B, start time.Time, send func(i int)) {
	for i := range b.N {
		if f.every > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * f.every))) // pacing the load, not waiting on a result
		}
		send(i)
	}
}

// fanoutGame: "join" events put sessions in a channel, creating it;
// "say" events send their payload to a channel. The data of both is the
// channel, a newline, then the sessions (space-separated) or the payload.
func fanoutGame(d handlers.Delivery) handlers.Handler {
	mux := handlers.NewMux()
	noop := func(context.Context, *handlers.Task) error { return nil }
	mux.HandleFunc(bus.EventLogin, noop)
	mux.HandleFunc(bus.EventDisconnect, noop)
	mux.HandleFunc("join", func(ctx context.Context, t *handlers.Task) error {
		name, rest, _ := strings.Cut(string(t.Data), "\n")
		ch, err := t.Channel(ctx, name)
		if errors.Is(err, handlers.ErrNoChannel) {
			ch, err = t.CreateChannel(ctx, name, handlers.ChannelOptions{Delivery: d})
		}
		if err != nil {
			return err
		}
		for s := range strings.FieldsSeq(rest) {
			if err := ch.Join(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	mux.HandleFunc("say", func(ctx context.Context, t *handlers.Task) error {
		name, payload, _ := bytes.Cut(t.Data, []byte("\n"))
		ch, err := t.Channel(ctx, string(name))
		if err != nil {
			return err
		}
		return ch.Send(payload)
	})
	return mux
}

func benchStarbusFanout(b *testing.B, f fanout, bestEffort bool) {
	channels, members := f.channels, f.members
	d := handlers.Reliable
	if bestEffort {
		d = handlers.BestEffort
	}
	w := startWorldWith(b, fanoutGame(d), func(s *edge.Server) {
		s.Auth = edge.AuthFunc(acceptAll)
		s.OutboundQueue = 4096
	})
	cs := dialBots(b, w.addr, channels*members)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	publish := func(part, typ string, data []byte) {
		m := nats.NewMsg(mustEvent(b, w.env.World, "r0", part))
		m.Header.Set(bus.HeaderType, typ)
		m.Data = data
		if _, err := w.env.JS.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	// Join in tasks of up to 100 members (a commit carries at most 1,000
	// messages), then wait for every member's notice.
	for ch := range channels {
		for lo := 0; lo < members; lo += 100 {
			var ids []string
			for _, c := range cs[ch*members+lo : ch*members+min(lo+100, members)] {
				ids = append(ids, c.Session())
			}
			publish("setup", "join", fmt.Appendf(nil, "c%d\n%s", ch, strings.Join(ids, " ")))
		}
	}
	for _, c := range cs {
		if m := nextMessage(ctx, b, c); m.Kind != client.KindJoined {
			b.Fatalf("got %+v before the join", m)
		}
	}
	lat := collect(b, cs, func(m client.Message) []byte { return m.Payload }, func(c *client.Client) <-chan client.Message { return c.Messages() })
	b.ResetTimer()
	start := time.Now()
	f.send(b, start, func(i int) {
		// Many ordering keys, so that tasks run side by side.
		publish(fmt.Sprintf("s%d", i%64), "say", binary.BigEndian.AppendUint64(fmt.Appendf(nil, "c%d\n", i%channels), uint64(time.Now().UnixNano())))
	})
	lat.wait(b, start, expected(b.N, channels, members), bestEffort)
}

func benchCoreFanout(b *testing.B, f fanout) {
	channels, members := f.channels, f.members
	env := natstest.Start(b, natstest.Options{})
	type sub struct{ msgs chan *nats.Msg }
	subs := make([]sub, channels*members)
	for i := range subs {
		nc, err := nats.Connect(env.Server.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		subs[i].msgs = make(chan *nats.Msg, 4096)
		if _, err := nc.ChanSubscribe(fmt.Sprintf("bench.fan.c%d", i/members), subs[i].msgs); err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	pub, err := nats.Connect(env.Server.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	lat := collect(b, subs, func(m *nats.Msg) []byte { return m.Data }, func(s sub) <-chan *nats.Msg { return s.msgs })
	b.ResetTimer()
	start := time.Now()
	f.send(b, start, func(i int) {
		if err := pub.Publish(fmt.Sprintf("bench.fan.c%d", i%channels), binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))); err != nil {
			b.Fatal(err)
		}
		if f.every > 0 {
			_ = pub.Flush() // each on its way now, as a paced sender's would be
		}
	})
	if err := pub.Flush(); err != nil {
		b.Fatal(err)
	}
	lat.wait(b, start, expected(b.N, channels, members), true)
}

// expected is the number of deliveries of n messages spread round robin
// over channels of members each.
func expected(n, channels, members int) int64 { return int64(n * members) }

// fanoutLatency gathers what every receiver got.
type fanoutLatency struct {
	got  atomic.Int64
	mu   sync.Mutex
	lats []time.Duration
	stop chan struct{}
	wg   sync.WaitGroup
}

// collect starts a reader per receiver that records the latency carried in
// the last 8 bytes of each message's payload (the send time).
func collect[R, M any](b *testing.B, receivers []R, payload func(M) []byte, msgs func(R) <-chan M) *fanoutLatency {
	l := &fanoutLatency{stop: make(chan struct{})}
	for _, r := range receivers {
		ch := msgs(r)
		l.wg.Go(func() {
			var mine []time.Duration
			defer func() {
				l.mu.Lock()
				l.lats = append(l.lats, mine...)
				l.mu.Unlock()
			}()
			for {
				select {
				case m := <-ch:
					p := payload(m)
					if len(p) < 8 {
						continue
					}
					sent := int64(binary.BigEndian.Uint64(p[len(p)-8:]))
					mine = append(mine, time.Duration(time.Now().UnixNano()-sent))
					l.got.Add(1)
				case <-l.stop:
					return
				}
			}
		})
	}
	b.Cleanup(l.close)
	return l
}

func (l *fanoutLatency) close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// wait waits for want deliveries (or, if lossy, for deliveries to stop
// coming for a second), then reports deliveries/s, the latency
// percentiles, and for a lossy path the share lost (unless want is
// math.MaxInt64: not known).
func (l *fanoutLatency) wait(b *testing.B, start time.Time, want int64, lossy bool) {
	last, lastChange := int64(-1), time.Now()
	var end time.Time
	for {
		got := l.got.Load()
		if got >= want {
			end = time.Now()
			break
		}
		if got != last {
			last, lastChange = got, time.Now()
		}
		idle := time.Since(lastChange)
		if lossy && idle > time.Second {
			end = lastChange
			break
		}
		if idle > 30*time.Second {
			b.Fatalf("stalled at %d of %d deliveries", got, want)
		}
		time.Sleep(time.Millisecond) // polling a counter; the clock stops at the last change
	}
	b.StopTimer()
	l.close()
	got := l.got.Load()
	slices.Sort(l.lats)
	pct := func(p float64) float64 {
		if len(l.lats) == 0 {
			return 0
		}
		return float64(l.lats[min(len(l.lats)-1, int(p*float64(len(l.lats))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(got)/end.Sub(start).Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if lossy && want != math.MaxInt64 {
		b.ReportMetric(100*float64(want-got)/float64(want), "lost-%")
	}
	b.ReportMetric(0, "ns/op")
}
