package starbustest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
	"github.com/starbus/starbus/starbustest"
)

// lobby is the game of these tests: a login joins the channel "lobby"
// (reliable) and "moves" (best effort); a message "move <region>" moves
// the session's events there; "shout" sends to "moves"; any other message is answered with the
// region it arrived in and counted; "remind" sets a timer an hour away,
// "tick" a periodic one; channel messages are forwarded to members.
func lobby() handlers.Handler {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		for _, c := range []struct {
			name string
			d    handlers.Delivery
		}{{"lobby", handlers.Reliable}, {"moves", handlers.BestEffort}} {
			ch, err := t.Channel(ctx, c.name)
			if errors.Is(err, handlers.ErrNoChannel) {
				ch, err = t.CreateChannel(ctx, c.name, handlers.ChannelOptions{Delivery: c.d})
			}
			if err != nil {
				return err
			}
			if err := ch.Join(ctx, t.Session); err != nil {
				return err
			}
		}
		return t.Send(t.Session, []byte("welcome, "+string(t.Data)))
	})
	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
		switch text := string(t.Data); {
		case len(text) > 5 && text[:5] == "move ":
			if err := t.MoveSession(t.Session, text[5:]); err != nil {
				return err
			}
			return t.Send(t.Session, []byte("moved"))
		case text == "remind":
			if _, err := t.After(time.Hour, "reminder", []byte(t.Session)); err != nil {
				return err
			}
			return t.Send(t.Session, []byte("in an hour"))
		case text == "tick":
			if _, err := t.Every(time.Hour, "tick", []byte(t.Session)); err != nil {
				return err
			}
			return t.Send(t.Session, []byte("every hour"))
		case text == "shout":
			ch, err := t.Channel(ctx, "moves")
			if err != nil {
				return err
			}
			return ch.Send([]byte("shout from " + t.Session))
		}
		n := 0
		if _, err := t.Lookup(ctx, "count."+t.Session, &n); err != nil {
			return err
		}
		if err := t.Put("count."+t.Session, n+1); err != nil {
			return err
		}
		return t.Send(t.Session, []byte(t.Region))
	})
	mux.HandleFunc("reminder", func(ctx context.Context, t *handlers.Task) error {
		return t.Send(string(t.Data), []byte("reminder"))
	})
	mux.HandleFunc("tick", func(ctx context.Context, t *handlers.Task) error {
		return t.Send(string(t.Data), []byte("tick"))
	})
	mux.HandleFunc(bus.EventDisconnect, func(ctx context.Context, t *handlers.Task) error {
		return t.Delete("count." + t.Session)
	})
	mux.Handle(bus.EventChannel, handlers.ForwardChannel(nil))
	return mux
}

// modes runs test with sessions through an edge and without one.
func modes(t *testing.T, test func(t *testing.T, w *starbustest.World)) {
	for _, noEdge := range []bool{false, true} {
		t.Run(map[bool]string{false: "edge", true: "direct"}[noEdge], func(t *testing.T) {
			test(t, starbustest.Start(t, starbustest.Options{Handler: lobby(), NoEdge: noEdge}))
		})
	}
}

// TestSessions plays two sessions: logins, channel joins, messages to the
// session and on a channel between them, state, membership, logout.
func TestSessions(t *testing.T) {
	modes(t, func(t *testing.T, w *starbustest.World) {
		ctx := t.Context()
		ann := w.Login("ann")
		ann.Expect(ctx, starbustest.Text("welcome, ann"))
		bob := w.Login("bob")
		bob.Expect(ctx, starbustest.Text("welcome, bob"))
		for _, s := range []*starbustest.Session{ann, bob} {
			s.Expect(ctx, starbustest.Joined("lobby"))
			s.Expect(ctx, starbustest.Joined("moves"))
		}
		if got, want := w.Members("lobby"), sorted(ann.ID, bob.ID); !slices.Equal(got, want) {
			t.Fatalf("lobby: %v, want %v", got, want)
		}

		ann.Send([]byte("one"))
		ann.Send([]byte("two"))
		for range 2 {
			if m := ann.Next(ctx); string(m.Payload) != "r0" || m.Channel != "" {
				t.Fatalf("reply: %+v", m)
			}
		}
		if n := starbustest.Get[int](t, w, "count."+ann.ID); n != 2 {
			t.Fatalf("count: %d", n)
		}

		bob.SendChannel("lobby", []byte("hi all"))
		for _, s := range []*starbustest.Session{ann, bob} {
			s.Expect(ctx, starbustest.ChannelText("lobby", "hi all"))
		}
		bob.Send([]byte("shout"))
		ann.Expect(ctx, starbustest.ChannelText("moves", "shout from "+bob.ID))

		ann.Logout()
		w.Eventually(func() bool { return slices.Equal(w.Members("lobby"), []string{bob.ID}) },
			"ann leaves the lobby: %v", w.Members("lobby"))
		if _, ok := starbustest.Lookup[int](t, w, "count."+ann.ID); ok {
			t.Fatal("ann's count outlived her session")
		}
	})
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// TestMoveSession: a session follows a move of its events to another
// region, through an edge or not.
func TestMoveSession(t *testing.T) {
	modes(t, func(t *testing.T, w *starbustest.World) {
		ctx := t.Context()
		ann := w.Login("ann")
		ann.Expect(ctx, starbustest.Text("welcome, ann"))
		ann.Send([]byte("move north"))
		ann.Expect(ctx, starbustest.Text("moved")) // after the move's notice
		ann.Send([]byte("where"))
		ann.Expect(ctx, starbustest.Text("north"))
	})
}

// TestFire: timers an hour away run when the test fires them, each once
// per firing.
func TestFire(t *testing.T) {
	w := starbustest.Start(t, starbustest.Options{Handler: lobby(), NoEdge: true})
	ctx := t.Context()
	ann := w.Login("ann")
	ann.Expect(ctx, starbustest.Text("welcome, ann"))
	ann.Expect(ctx, starbustest.Joined("lobby"))
	ann.Expect(ctx, starbustest.Joined("moves"))
	if n := w.Fire("reminder"); n != 0 {
		t.Fatalf("fired %d reminders before any was set", n)
	}
	ann.Send([]byte("remind"))
	ann.Expect(ctx, starbustest.Text("in an hour"))
	if n := w.Fire("tick"); n != 0 {
		t.Fatalf("fired %d ticks of another type", n)
	}
	if n := w.Fire("reminder"); n != 1 {
		t.Fatalf("fired %d reminders, want 1", n)
	}
	ann.Expect(ctx, starbustest.Text("reminder"))

	ann.Send([]byte("tick"))
	ann.Expect(ctx, starbustest.Text("every hour"))
	for range 2 {
		w.Eventually(func() bool { return w.Fire("tick") == 1 }, "a tick to fire")
		ann.Expect(ctx, starbustest.Text("tick"))
	}
	// The reminder ran once: its record is gone, nothing else came.
	if n := w.Fire("reminder"); n != 0 {
		t.Fatalf("the reminder is still pending after it ran (%d)", n)
	}
	if left := ann.Drain(); len(left) != 0 {
		t.Fatalf("unexpected messages: %+v", left)
	}
}

// TestInit: Start returns after the world's Init has run.
func TestInit(t *testing.T) {
	w := starbustest.Start(t, starbustest.Options{
		Handler: lobby(),
		Init: handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
			return t.Put("motd", "hello")
		}),
		NoEdge: true,
	})
	if got := starbustest.Get[string](t, w, "motd"); got != "hello" {
		t.Fatalf("motd: %q", got)
	}
	w.View(t.Context(), func(tx *kv.Tx) error {
		ok, err := tx.Exists(t.Context(), "count.ann")
		if ok {
			return errors.New("a count before any message")
		}
		return err
	})
}

// TestExpectJSON decodes the messages it waits for.
func TestExpectJSON(t *testing.T) {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		for i := range 3 {
			if err := t.Send(t.Session, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
				return err
			}
		}
		return nil
	})
	w := starbustest.Start(t, starbustest.Options{Handler: mux, NoEdge: true})
	ann := w.Login("ann")
	type reply struct{ N int }
	if r := starbustest.ExpectJSON(t.Context(), ann, func(r reply) bool { return r.N == 1 }); r.N != 1 {
		t.Fatalf("got %+v", r)
	}
	if m := ann.Next(t.Context()); string(m.Payload) != `{"n":0}` {
		t.Fatalf("the message passed over: %+v", m)
	}
	if r := starbustest.ExpectJSON[reply](t.Context(), ann, nil); r.N != 2 {
		t.Fatalf("got %+v", r)
	}
}
