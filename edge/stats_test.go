package edge_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/internal/natstest"
)

// edgeObserver records what an edge reports: its replays, and how many
// delivery waits.
type edgeObserver struct {
	mu      sync.Mutex
	replays []int
	waits   int
	badWait time.Duration // a wait out of bounds (negative, or over a minute)
}

func (o *edgeObserver) ObserveDeliveryWait(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waits++
	if d < 0 || d > time.Minute {
		o.badWait = d
	}
}

func (o *edgeObserver) observedWaits() (int, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.waits, o.badWait
}

func (o *edgeObserver) ObserveReplay(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.replays = append(o.replays, n)
}

func (o *edgeObserver) observed() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.replays)
}

var _ edge.Observer = (*edgeObserver)(nil)

// TestStats: an edge counts logins and failed ones, messages over the rate
// limit and frames written, holds its connections and sessions, and
// reports the size of each reconnect's replay and the wait of each stored
// message it dispatches.
func TestStats(t *testing.T) {
	obs := &edgeObserver{}
	w := startWorld(t, func(s *edge.Server) {
		s.Observer = obs
		s.RatePerSecond, s.Burst = 1, 1
	})
	// Version 1: a SEND over the rate is dropped and answered (version 2
	// holds it back instead; see TestNumberedSendsRate).
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Config{Addrs: []string{w.addr}, Name: "bob", Password: "pw", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := nextMessage(ctx, t, c); string(m.Payload) != "welcome bob" {
		t.Fatalf("first message %q", m.Payload)
	}
	// Ten at once, with a burst of one: the first is echoed, most of the
	// others are dropped. Every one is answered: an echo or an error frame.
	const sent = 10
	for i := range sent {
		if err := c.Send(fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	echoes := 0
	natstest.Eventually(t, 30*time.Second, func() bool {
		for {
			select {
			case <-c.Messages():
				echoes++
				continue
			default:
			}
			return echoes+int(w.edge.Stats().RateLimited) == sent
		}
	}, "%d echoes, stats %+v", echoes, w.edge.Stats())
	if echoes < 1 || echoes == sent {
		t.Errorf("%d of %d messages echoed with a burst of 1", echoes, sent)
	}
	// The welcome and each echo are stored messages for the session.
	if n, bad := obs.observedWaits(); n < 1+echoes || bad != 0 {
		t.Errorf("%d delivery waits observed (a wait out of bounds: %v), want at least %d", n, bad, 1+echoes)
	}

	// Away, the session is sent three messages; the reconnect replays them.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	const away = 3
	w.sendAway(ctx, t, c.Session(), away)
	if err := c.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	for range away {
		nextMessage(ctx, t, c)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return len(obs.observed()) == 1 }, "replay observed")
	if got := obs.observed(); got[0] != away {
		t.Errorf("replays observed %v, want [%d]", got, away)
	}

	// A wrong password.
	if _, err := client.Dial(ctx, w.addr, "bob", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	// LOGIN_OK, welcome, the ten answers, LOGIN_OK again, the replay,
	// LOGIN_FAILED.
	frames := uint64(1 + 1 + sent + 1 + away + 1)
	natstest.Eventually(t, 10*time.Second, func() bool {
		st := w.edge.Stats()
		return st.Logins == 1 && st.LoginFailures == 1 && st.Connections == 1 && st.Sessions == 1 && st.FramesWritten >= frames
	}, "stats %+v; want 1 login, 1 failure, 1 connection, 1 session, at least %d frames", w.edge.Stats(), frames)
}
