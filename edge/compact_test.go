package edge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
)

// drain reads c's messages until the test ends, so that its edge never
// finds it slow.
func drain(t testing.TB, c *client.Client) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-c.Messages():
			case <-c.Done():
				return
			}
		}
	})
	t.Cleanup(func() { c.Close(); wg.Wait() })
}

// TestStorageBounded: sessions that stay logged in send messages that
// answer them (session outboxes) and talk on a reliable channel. Once the
// load stops, compaction and the outbox TTL bring the stream's events,
// markers, session messages and channel messages back to nothing, while
// every session is still live.
func TestStorageBounded(t *testing.T) {
	w := startWorldConfig(t, handlers.Config{
		Handler:         chatGame(),
		CompactInterval: 100 * time.Millisecond,
		OutboxTTL:       time.Second,
	}, func(s *edge.Server) { s.Auth = edge.AuthFunc(acceptAll) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const players, rounds = 5, 40
	var clients []*client.Client
	for i := range players {
		c := joinRoom(ctx, t, w.addr, fmt.Sprintf("p%d", i))
		drain(t, c)
		clients = append(clients, c)
	}
	for r := range rounds {
		for i, c := range clients {
			msg := fmt.Sprintf("say:%d-%d", i, r)
			if r%2 == 1 {
				msg = "move:r" + fmt.Sprint(r%3)
			}
			if err := c.Send([]byte(msg)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Logins and messages, each an event whose task commits.
	natstest.Eventually(t, 30*time.Second, func() bool { return w.rt.Stats().Committed >= players*(rounds+1) },
		"events handled: %+v", w.rt.Stats())
	if w.edge.Sessions() != players {
		t.Fatalf("%d sessions live, want %d", w.edge.Sessions(), players)
	}
	wd := w.env.World
	classes := []struct{ name, filter string }{
		{"events", wd.EventFilter()},
		{"markers", wd.DoneFilter()},
		{"session messages", wd.SessionFilter()},
		{"channel messages", wd.ChannelFilter()},
	}
	natstest.Eventually(t, 30*time.Second, func() bool {
		for _, c := range classes {
			if w.env.Stored(t, c.filter) > 0 {
				return false
			}
		}
		return true
	}, "stream not compacted: %v", lazy(func() string {
		s := ""
		for _, c := range classes {
			s += fmt.Sprintf("%s %d; ", c.name, w.env.Stored(t, c.filter))
		}
		return s
	}))
}

// lazy formats as what its function returns when the message is printed.
type lazy func() string

func (l lazy) String() string { return l() }

// TestSessionOutboxPurged: a session's stored messages go when it ends,
// by logout or when its grace runs out: purged then with no TTL to
// remove them; with one, by their TTL.
func TestSessionOutboxPurged(t *testing.T) {
	t.Run("ttl=none", func(t *testing.T) { testSessionOutboxGoes(t, -1) })
	t.Run("ttl=1s", func(t *testing.T) { testSessionOutboxGoes(t, time.Second) })
}

func testSessionOutboxGoes(t *testing.T, ttl time.Duration) {
	w := startWorldConfig(t, handlers.Config{Handler: chatGame(), CompactInterval: -1, OutboxTTL: ttl},
		func(s *edge.Server) {
			s.Auth = edge.AuthFunc(acceptAll)
			s.ReconnectGrace = 100 * time.Millisecond
		})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, end := range []string{"logout", "grace"} {
		t.Run(end, func(t *testing.T) {
			c := joinRoom(ctx, t, w.addr, "p-"+end)
			if err := c.Send([]byte("move:r1")); err != nil {
				t.Fatal(err)
			}
			for m := nextMessage(ctx, t, c); string(m.Payload) != "moved to r1"; m = nextMessage(ctx, t, c) {
			}
			subj, err := w.env.World.Session(c.Session())
			if err != nil {
				t.Fatal(err)
			}
			if n := w.env.Stored(t, subj); n == 0 {
				t.Fatal("nothing stored for the session")
			}
			if end == "logout" {
				if err := c.Logout(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				c.Close() // the connection drops; the grace runs out
			}
			natstest.Eventually(t, 20*time.Second, func() bool { return w.env.Stored(t, subj) == 0 },
				"%d messages left on %s", w.env.Stored(t, subj), subj)
		})
	}
}
