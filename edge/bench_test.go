package edge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/internal/natstest"
)

func acceptAll(_ context.Context, name, _ string) (string, error) { return name, nil }

// BenchmarkEcho measures messages per second through one edge: 32 clients,
// each keeping 4 messages in flight, each message a full round trip (edge,
// event stream, worker task and commit, session subject, edge, client).
func BenchmarkEcho(b *testing.B) {
	w := startWorld(b, func(s *edge.Server) {
		s.Auth = edge.AuthFunc(acceptAll)
		s.RatePerSecond = 1_000_000
	})
	const clients, depth = 32, 4
	cs := dialBots(b, w.addr, clients)
	for _, c := range cs {
		<-c.Messages() // welcome
	}
	payload := make([]byte, 64)
	per := (b.N + clients - 1) / clients
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			sent, got := 0, 0
			for ; sent < min(depth, per); sent++ {
				_ = c.Send(payload)
			}
			for got < per {
				select {
				case <-c.Messages():
					got++
					if sent < per {
						_ = c.Send(payload)
						sent++
					}
				case <-time.After(30 * time.Second):
					b.Errorf("client stalled after %d of %d", got, per)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.ReportMetric(float64(per*clients)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIngest measures client messages per second turned into stored
// events by one edge, with no workers: 32 clients send as fast as the
// socket takes it; the clock stops when the last event is stored.
func BenchmarkIngest(b *testing.B) {
	be := startBareEdge(b, func(s *edge.Server) { s.RatePerSecond = 1_000_000 })
	const clients = 32
	ctx := context.Background()
	cs := dialBots(b, be.addr, clients)
	info, err := be.env.Stream.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	base := info.State.LastSeq
	payload := make([]byte, 64)
	per := (b.N + clients - 1) / clients
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			for range per {
				if err := c.Send(payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	natstest.Eventually(b, time.Minute, func() bool {
		info, err := be.env.Stream.Info(ctx)
		return err == nil && info.State.LastSeq >= base+uint64(per*clients)
	}, "all events stored")
	b.ReportMetric(float64(per*clients)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDeliver measures messages per second from the world's stream
// to the sockets of one edge, with no workers: the benchmark stores
// messages for 32 sessions, round robin, and the clock stops when every
// client has received its share.
func BenchmarkDeliver(b *testing.B) {
	be := startBareEdge(b, func(s *edge.Server) { s.OutboundQueue = 4096 })
	const clients = 32
	cs := dialBots(b, be.addr, clients)
	subjects := make([]string, clients)
	for i, c := range cs {
		subjects[i], _ = be.env.World.Session(c.Session())
	}
	payload := make([]byte, 64)
	per := (b.N + clients - 1) / clients
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			for got := 0; got < per; got++ {
				select {
				case <-c.Messages():
				case <-time.After(30 * time.Second):
					b.Errorf("client stalled after %d of %d", got, per)
					return
				}
			}
		})
	}
	for range per {
		for _, subj := range subjects {
			if _, err := be.env.JS.PublishAsync(subj, payload); err != nil {
				b.Fatal(err)
			}
		}
	}
	select {
	case <-be.env.JS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged")
	}
	wg.Wait()
	b.ReportMetric(float64(per*clients)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
}

// dialBots logs n clients in to the edge at addr as bot0..bot<n-1>; they
// are closed when the benchmark ends.
func dialBots(b *testing.B, addr string, n int) []*client.Client {
	b.Helper()
	cs := make([]*client.Client, n)
	for i := range cs {
		c, err := client.Dial(context.Background(), addr, fmt.Sprintf("bot%d", i), "pw")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	return cs
}
