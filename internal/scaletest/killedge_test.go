package scaletest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	edgeclient "github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/internal/ordertest"
	"github.com/starbus/starbus/kv"
)

var edgeReadyRe = regexp.MustCompile(`starbus edge: world "\w+"`)

// TestKillEdge is #13's acceptance 2: 100 players attached to a
// `starbus edge` process that is killed (SIGKILL) while they send; 2 s
// later a new edge process starts, on the same address or on another one
// that the players' clients list. Every player resumes its session by
// itself (edge/client's AutoReconnect), and nothing is lost or doubled in
// either direction: the game (internal/ordertest, in a worker in this
// process) finds every player's sends handled exactly once, in order; each
// player receives the answer to each of its sends exactly once, in order.
func TestKillEdge(t *testing.T) {
	for _, tc := range []struct {
		name  string
		other bool
	}{{"same address", false}, {"other address", true}} {
		t.Run(tc.name, func(t *testing.T) { killEdge(t, tc.other) })
	}
}

func killEdge(t *testing.T, otherAddress bool) {
	const players = 100
	// Each player sends every `every`, `each` sends in all: the kill falls
	// in the middle.
	each, every := 40, 50*time.Millisecond
	if raceEnabled {
		each, every = 25, 100*time.Millisecond
	}
	env := natstest.Start(t, natstest.Options{World: "kill"})
	ctx, cancel := context.WithCancel(context.Background())
	store, err := kv.Open(ctx, env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := handlers.New(handlers.Config{Store: store, JS: env.JS, Handler: ordertest.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	var worker sync.WaitGroup
	worker.Go(func() {
		if err := rt.Run(ctx); err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); worker.Wait(); store.Close() })

	ports := freePorts(t, 2)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	startEdge := func(name string, i int) *proc {
		p := start(t, name, "edge", "-nats", env.Server.ClientURL(), "-world", "kill", "-listen", addr(i), "-log", "warn")
		p.wait(t, edgeReadyRe, time.Minute)
		return p
	}
	first := startEdge("edge", 0)
	addrs := []string{addr(0)}
	if otherAddress {
		addrs = append(addrs, addr(1))
	}

	// Log in, a few at a time (the edge hashes passwords).
	clients := make([]*edgeclient.Client, players)
	var logins sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range players {
		logins.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			lctx, lcancel := context.WithTimeout(t.Context(), time.Minute)
			defer lcancel()
			c, err := edgeclient.Connect(lctx, edgeclient.Config{
				Addrs: addrs, Name: fmt.Sprintf("p%d", i), Password: "pw", AutoReconnect: true,
				MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
			})
			if err != nil {
				t.Errorf("player %d: login: %v", i, err)
				return
			}
			clients[i] = c
		})
	}
	logins.Wait()
	if t.Failed() {
		return
	}
	for _, c := range clients {
		t.Cleanup(func() { c.Close() })
	}

	// Play: each player sends and checks its answers, and counts its
	// connection's events.
	var answered atomic.Int64
	type result struct {
		session             string
		reconnects, resumes int
		err                 error
		events              []string // what the client reported, for a failure's message
	}
	results := make([]result, players)
	var play sync.WaitGroup
	deadline := time.Now().Add(2 * time.Minute)
	for i, c := range clients {
		play.Go(func() {
			res := &results[i]
			res.session = c.Session()
			tick := time.NewTicker(every)
			defer tick.Stop()
			timeout := time.NewTimer(time.Until(deadline))
			defer timeout.Stop()
			sent, want := 0, uint64(1)
			welcomed := false
			for want <= uint64(each) {
				var sendTick <-chan time.Time
				if sent < each {
					sendTick = tick.C
				}
				select {
				case <-sendTick:
					sent++
					if err := c.Send(fmt.Appendf(nil, "p%d-%d", i, sent)); err != nil {
						res.err = fmt.Errorf("send %d: %w", sent, err)
						return
					}
				case m := <-c.Messages():
					if string(m.Payload) == ordertest.Welcome {
						if welcomed {
							res.err = errors.New("welcomed twice")
							return
						}
						welcomed = true
						continue
					}
					n, payload, ok := ordertest.ParseAnswer(m.Payload)
					if !ok || n != want || payload != fmt.Sprintf("p%d-%d", i, n) {
						res.err = fmt.Errorf("message %q, want the answer to send %d", m.Payload, want)
						return
					}
					want++
					answered.Add(1)
				case e := <-c.Events():
					res.events = append(res.events, fmt.Sprintf("%v %s %d %v (answers up to %d)", e.Kind, e.Addr, e.Attempt, e.Err, want-1))
					switch e.Kind {
					case edgeclient.Reconnecting:
						res.reconnects++
					case edgeclient.Resumed:
						res.resumes++
					case edgeclient.Lost:
						res.err = fmt.Errorf("session lost: %w", e.Err)
						return
					}
				case <-timeout.C:
					res.err = fmt.Errorf("timed out: %d sent, answers up to %d", sent, want-1)
					return
				}
			}
			// The answers may overtake the Resumed event.
			for res.resumes < res.reconnects {
				select {
				case e := <-c.Events():
					if e.Kind == edgeclient.Resumed {
						res.resumes++
					}
				case <-timeout.C:
					res.err = errors.New("timed out waiting for Resumed")
					return
				}
			}
			if c.Session() != res.session {
				res.err = fmt.Errorf("session %s became %s", res.session, c.Session())
			}
		})
	}

	// Kill the edge once the players are well under way, with sends on
	// their way; start the next one 2 s later.
	natstest.Eventually(t, time.Minute, func() bool { return answered.Load() >= int64(players*each/4) }, "a quarter of the answers")
	first.kill()
	killed := time.Now()
	restart := time.NewTimer(2 * time.Second)
	<-restart.C
	next := 0
	if otherAddress {
		next = 1
	}
	startEdge("edge2", next)
	t.Logf("new edge up %v after the kill", time.Since(killed).Round(time.Millisecond))
	play.Wait()

	for i, r := range results {
		if r.err != nil {
			t.Errorf("player %d: %v; events %q", i, r.err, r.events)
			continue
		}
		if r.reconnects == 0 || r.resumes != r.reconnects {
			t.Errorf("player %d: %d reconnecting, %d resumed", i, r.reconnects, r.resumes)
		}
	}
	for i, r := range results {
		rec, err := ordertest.Read(t.Context(), store, r.session)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Last != uint64(each) || rec.N != each || len(rec.Bad) != 0 {
			t.Errorf("player %d: the game handled %+v, want %d sends once each, in order", i, rec, each)
		}
	}
	t.Logf("%d players, %d sends each: all resumed, every send handled once, every answer received once", players, each)
}
