package edge_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
)

// BenchmarkAreaOfInterest compares region broadcast with an area of
// interest for the same players and the same moves, in one run: 1,000
// players on a plane of 128×128 cells, cut into 4×4 regions of 32; each
// move steps one player and tells the others where it went.
//
//   - region: every player is in its region's best-effort channel, and a
//     move is sent to the mover's region (a move across a border leaves
//     one channel and joins the other, as the reference world did);
//   - area: every player looks at a best-effort area from where it stands
//     (radius 8, cells of 8), and a move moves the mover's interest and
//     publishes the move at its new cell.
//
// Each runs with the edge's default delays (delay=default: a client's
// channel messages wait up to 20 ms to share a write, its area messages
// up to 50 ms) and without them (delay=none: each burst of the edge's
// dispatcher is written at its end).
//
// b.N moves at 1,000 a second (one per player per second), by many
// ordering keys; the clients are in this process. Reported: deliveries
// per move, deliveries/s, the latency from a move's event to each
// receipt, and the frames each of the edge's writes carried. Run with
// -benchtime 3000x or more.
func BenchmarkAreaOfInterest(b *testing.B) {
	for _, mode := range []string{"region", "area"} {
		for _, delay := range []string{"default", "none"} {
			b.Run(mode+"/delay="+delay, func(b *testing.B) { benchArea(b, mode == "area", delay == "none") })
		}
	}
}

const (
	benchSide    = 128 // the plane's side, in cells
	benchRegion  = 32  // a region's side
	benchPlayers = 1000
	benchRate    = 1000 // moves a second
)

func benchRegionOf(x, y float64) string {
	return "pos-" + strconv.Itoa(int(x)/benchRegion) + "-" + strconv.Itoa(int(y)/benchRegion)
}

// areaBenchGame: "place" {session x y} puts a player; "move" (ordered by
// the session) steps it and tells the others. A move's payload ends with
// its send time, which every receipt carries on.
func areaBenchGame(useArea bool) handlers.Handler {
	area := handlers.Area{Name: "near", Cell: 8, Radius: 8, Delivery: handlers.BestEffort}
	type pos struct{ X, Y float64 }
	mux := handlers.NewMux()
	noop := func(context.Context, *handlers.Task) error { return nil }
	mux.HandleFunc(bus.EventLogin, noop)
	mux.HandleFunc(bus.EventDisconnect, noop)
	channel := func(ctx context.Context, t *handlers.Task, name string) (*handlers.Channel, error) {
		ch, err := t.Channel(ctx, name)
		if errors.Is(err, handlers.ErrNoChannel) {
			ch, err = t.CreateChannel(ctx, name, handlers.ChannelOptions{Delivery: handlers.BestEffort})
		}
		return ch, err
	}
	mux.HandleFunc("place", func(ctx context.Context, t *handlers.Task) error {
		f := strings.Fields(string(t.Data))
		x, _ := strconv.ParseFloat(f[1], 64)
		y, _ := strconv.ParseFloat(f[2], 64)
		if err := t.Put("pos."+f[0], pos{x, y}); err != nil {
			return err
		}
		if useArea {
			return t.SetInterest(ctx, area, f[0], x, y)
		}
		ch, err := channel(ctx, t, benchRegionOf(x, y))
		if err != nil {
			return err
		}
		return ch.Join(ctx, f[0])
	})
	mux.HandleFunc("move", func(ctx context.Context, t *handlers.Task) error {
		var p pos
		if _, err := t.Lookup(ctx, "pos."+t.Part, &p); err != nil {
			return err
		}
		old := p
		rnd := rand.New(rand.NewPCG(t.EventSeq, 1))
		p.X = math.Min(math.Max(p.X+float64(rnd.IntN(3)-1), 0), benchSide-1)
		p.Y = math.Min(math.Max(p.Y+float64(rnd.IntN(3)-1), 0), benchSide-1)
		if err := t.Put("pos."+t.Part, p); err != nil {
			return err
		}
		if useArea {
			if err := t.SetInterest(ctx, area, t.Part, p.X, p.Y); err != nil {
				return err
			}
			return t.PublishAt(area, p.X, p.Y, t.Data)
		}
		if from, to := benchRegionOf(old.X, old.Y), benchRegionOf(p.X, p.Y); from != to {
			ch, err := channel(ctx, t, from)
			if err == nil {
				err = ch.Leave(ctx, t.Part)
			}
			if err != nil {
				return err
			}
		}
		ch, err := channel(ctx, t, benchRegionOf(p.X, p.Y))
		if err != nil {
			return err
		}
		if err := ch.Join(ctx, t.Part); err != nil {
			return err
		}
		return ch.Send(t.Data)
	})
	return mux
}

func benchArea(b *testing.B, useArea, noDelay bool) {
	w := startWorldWith(b, areaBenchGame(useArea), func(s *edge.Server) {
		s.Auth = edge.AuthFunc(acceptAll)
		s.OutboundQueue = 4096
		if noDelay {
			s.FanoutDelay, s.AreaDelay = -1, -1
		}
	})
	cs := dialBots(b, w.addr, benchPlayers)
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
	rnd := rand.New(rand.NewPCG(3, 5))
	for _, c := range cs {
		publish(c.Session(), "place", fmt.Appendf(nil, "%s %d %d", c.Session(), rnd.IntN(benchSide), rnd.IntN(benchSide)))
	}
	for _, c := range cs {
		if m := nextMessage(ctx, b, c); m.Kind != client.KindJoined {
			b.Fatalf("got %+v before the join", m)
		}
	}
	lat := collect(b, cs, func(m client.Message) []byte { return m.Payload }, func(c *client.Client) <-chan client.Message { return c.Messages() })
	b.ResetTimer()
	before := w.edge.Stats()
	start := time.Now()
	fanout{every: time.Second / benchRate}.send(b, start, func(i int) {
		publish(cs[i%len(cs)].Session(), "move", binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())))
	})
	lat.wait(b, start, math.MaxInt64, true)
	after := w.edge.Stats()
	b.ReportMetric(float64(lat.got.Load())/float64(b.N), "deliveries/move")
	b.ReportMetric(float64(after.FramesWritten-before.FramesWritten)/float64(after.Writes-before.Writes), "frames/write")
}
