package hellochannels_test

import (
	"context"
	"testing"

	"github.com/starbus/starbus/edge/sgs/sgsclient"
	"github.com/starbus/starbus/examples/hellochannels"
	"github.com/starbus/starbus/starbustest"
)

// start runs the game in a world of its own, with the edge's SimpleSgs
// listener for Darkstar clients.
func start(t *testing.T) *starbustest.World {
	return starbustest.Start(t, starbustest.Options{Handler: hellochannels.Handler(), Init: hellochannels.Init(), SGS: true})
}

// TestStarbusClients plays the tutorial with Starbus clients alone: both
// channels joined at login, echo, channel chat.
func TestStarbusClients(t *testing.T) {
	w := start(t)
	ctx := t.Context()
	ann, bob := w.Login("ann"), w.Login("bob")
	for _, s := range []*starbustest.Session{ann, bob} {
		s.Expect(ctx, starbustest.Joined(hellochannels.Foo))
		s.Expect(ctx, starbustest.Joined(hellochannels.Bar))
	}
	ann.Send([]byte("echo me"))
	ann.Expect(ctx, starbustest.Text("echo me"))
	bob.SendChannel(hellochannels.Bar, []byte("hello Bar"))
	for _, s := range []*starbustest.Session{ann, bob} {
		s.Expect(ctx, starbustest.ChannelText(hellochannels.Bar, "hello Bar"))
	}
}

// expect returns the next event of c that match accepts, failing the test
// if the session ends or the world's timeout passes first.
func expect(t *testing.T, w *starbustest.World, c *sgsclient.Client, what string, match func(sgsclient.Event) bool) sgsclient.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), w.Timeout)
	defer cancel()
	for {
		select {
		case e, ok := <-c.Events():
			if !ok {
				t.Fatalf("session over before %s: %v", what, c.Err())
			}
			if match(e) {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("no %s", what)
		}
	}
}

// TestDarkstarAndStarbusClients is issue 15's acceptance 1: a SimpleSgs
// client and a Starbus client log in to one world, are in the same
// channels, and exchange channel and session messages both ways.
func TestDarkstarAndStarbusClients(t *testing.T) {
	w := start(t)
	ctx := t.Context()
	dark, err := sgsclient.Dial(ctx, w.SGSAddr, "duke", "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dark.Close() })
	for _, ch := range []string{hellochannels.Foo, hellochannels.Bar} {
		expect(t, w, dark, "join "+ch, func(e sgsclient.Event) bool { return e.Kind == sgsclient.Joined && e.Channel == ch })
	}
	star := w.Login("ann")
	star.Expect(ctx, starbustest.Joined(hellochannels.Foo))
	star.Expect(ctx, starbustest.Joined(hellochannels.Bar))

	// Session messages, both ways: the game echoes.
	if err := dark.Send(ctx, []byte("hello, world")); err != nil {
		t.Fatal(err)
	}
	expect(t, w, dark, "the echo", func(e sgsclient.Event) bool {
		return e.Kind == sgsclient.Message && string(e.Payload) == "hello, world"
	})
	star.Send([]byte("hello too"))
	star.Expect(ctx, starbustest.Text("hello too"))

	// Channel messages, both ways, each heard by both.
	if err := dark.SendChannel(ctx, hellochannels.Foo, []byte("from duke")); err != nil {
		t.Fatal(err)
	}
	star.Expect(ctx, starbustest.ChannelText(hellochannels.Foo, "from duke"))
	expect(t, w, dark, "its own channel message", func(e sgsclient.Event) bool {
		return e.Kind == sgsclient.ChannelMessage && e.Channel == hellochannels.Foo && string(e.Payload) == "from duke"
	})
	star.SendChannel(hellochannels.Bar, []byte("from ann"))
	star.Expect(ctx, starbustest.ChannelText(hellochannels.Bar, "from ann"))
	expect(t, w, dark, "ann's channel message", func(e sgsclient.Event) bool {
		return e.Kind == sgsclient.ChannelMessage && e.Channel == hellochannels.Bar && string(e.Payload) == "from ann"
	})

	// The same world: the Darkstar client's session is a member of the
	// channels like any other.
	w.Eventually(func() bool { return len(w.Members(hellochannels.Foo)) == 2 }, "both sessions in %s", hellochannels.Foo)

	if err := dark.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	w.Eventually(func() bool { return len(w.Members(hellochannels.Foo)) == 1 }, "duke's session out of %s after logout", hellochannels.Foo)
}
