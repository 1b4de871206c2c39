package lobby_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/starbus/starbus/examples/lobby"
	"github.com/starbus/starbus/starbustest"
)

// start runs the game in a world of its own: an embedded NATS server, the
// runtime, an edge. The test's cleanup stops it all.
func start(t *testing.T) *starbustest.World {
	return starbustest.Start(t, starbustest.Options{Handler: lobby.Handler(), Init: lobby.Init()})
}

func TestJoinAndChat(t *testing.T) {
	w := start(t)
	ctx := t.Context()

	ann := w.Login("ann")
	ann.Expect(ctx, starbustest.Text("welcome, ann: 1 in the lobby, 0 clicks"))
	ann.Expect(ctx, starbustest.Joined(lobby.Channel))
	ann.Expect(ctx, starbustest.ChannelText(lobby.Channel, "ann joined"))

	bob := w.Login("bob")
	bob.Expect(ctx, starbustest.Text("welcome, bob: 2 in the lobby, 0 clicks"))
	for _, s := range []*starbustest.Session{ann, bob} {
		s.Expect(ctx, starbustest.ChannelText(lobby.Channel, "bob joined"))
		s.Expect(ctx, starbustest.ChannelText(lobby.Channel, "the game starts in 10s"))
	}

	// What members say on the channel, every member hears, all in the
	// same order.
	bob.SendChannel(lobby.Channel, []byte("hi ann"))
	ann.SendChannel(lobby.Channel, []byte("hi bob"))
	heard := map[string][]string{}
	for _, s := range []*starbustest.Session{ann, bob} {
		for range 2 {
			m := s.Expect(ctx, starbustest.OnChannel(lobby.Channel))
			heard[s.Name] = append(heard[s.Name], string(m.Payload))
		}
	}
	if !slices.Equal(heard["ann"], heard["bob"]) || !slices.Contains(heard["ann"], "bob: hi ann") || !slices.Contains(heard["ann"], "ann: hi bob") {
		t.Fatalf("heard %q", heard)
	}

	want := []string{ann.ID, bob.ID}
	slices.Sort(want)
	if got := w.Members(lobby.Channel); !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
}

func TestClicks(t *testing.T) {
	w := start(t)
	ctx := t.Context()
	ann := w.Login("ann")
	for i := range 3 {
		ann.Send([]byte("click"))
		ann.Expect(ctx, starbustest.Text(fmt.Sprintf("clicks: %d", i+1)))
	}
	ann.Send([]byte("dance"))
	ann.Expect(ctx, starbustest.Text("unknown command"))
	if n := starbustest.Get[int](t, w, "clicks.ann"); n != 3 {
		t.Fatalf("clicks.ann = %d, want 3", n)
	}

	// Clicks are the player's, not the session's: they outlive it.
	ann.Logout()
	w.Eventually(func() bool { return len(w.Members(lobby.Channel)) == 0 }, "ann leaves the lobby")
	again := w.Login("ann")
	again.Expect(ctx, starbustest.Text("welcome, ann: 1 in the lobby, 3 clicks"))
}

func TestCountdown(t *testing.T) {
	w := start(t)
	ctx := t.Context()
	ann, bob := w.Login("ann"), w.Login("bob")
	for _, s := range []*starbustest.Session{ann, bob} {
		s.Expect(ctx, starbustest.ChannelText(lobby.Channel, "the game starts in 10s"))
	}
	// The countdown is a timer 10 s away: fire it rather than wait.
	if n := w.Fire(lobby.TaskStart); n != 1 {
		t.Fatalf("fired %d countdowns, want 1", n)
	}
	for _, s := range []*starbustest.Session{ann, bob} {
		s.Expect(ctx, starbustest.ChannelText(lobby.Channel, "the game starts"))
	}
	if _, pending := starbustest.Lookup[string](t, w, "countdown"); pending {
		t.Fatal("the countdown is still pending after the start")
	}
}

func TestCountdownStops(t *testing.T) {
	w := start(t)
	ctx := t.Context()
	ann, bob := w.Login("ann"), w.Login("bob")
	ann.Expect(ctx, starbustest.ChannelText(lobby.Channel, "the game starts in 10s"))

	bob.Logout()
	ann.Expect(ctx, starbustest.ChannelText(lobby.Channel, "bob left"))
	ann.Expect(ctx, starbustest.ChannelText(lobby.Channel, "countdown stopped"))
	if n := w.Fire(lobby.TaskStart); n != 0 {
		t.Fatalf("fired %d countdowns after it stopped", n)
	}
	if got := w.Members(lobby.Channel); !slices.Equal(got, []string{ann.ID}) {
		t.Fatalf("members %v, want only ann", got)
	}
}
