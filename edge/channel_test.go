package edge_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// chatGame puts every player in the reliable channel "room" and the
// best-effort channel "pos" at login. A message "say:x" sends x to the
// room; "abort:x" sends x and then fails; "pos:x" sends x on "pos";
// "leave" leaves the room; "close" closes it; "move:r" moves the session to region r. Events of type "broadcast" (from no client)
// send their payload to the room. Clients may talk on the room directly.
func chatGame() *handlers.Mux {
	open := func(ctx context.Context, t *handlers.Task, name string, d handlers.Delivery) (*handlers.Channel, error) {
		ch, err := t.Channel(ctx, name)
		if errors.Is(err, handlers.ErrNoChannel) {
			return t.CreateChannel(ctx, name, handlers.ChannelOptions{Delivery: d})
		}
		return ch, err
	}
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		for name, d := range map[string]handlers.Delivery{"room": handlers.Reliable, "pos": handlers.BestEffort} {
			ch, err := open(ctx, t, name, d)
			if err != nil {
				return err
			}
			if err := ch.Join(ctx, t.Session); err != nil {
				return err
			}
		}
		return nil
	})
	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
		verb, arg, _ := strings.Cut(string(t.Data), ":")
		name := "room"
		if verb == "pos" {
			name = "pos"
		}
		ch, err := t.Channel(ctx, name)
		if err != nil {
			return err
		}
		switch verb {
		case "say", "pos":
			return ch.Send([]byte(arg))
		case "abort":
			if err := ch.Send([]byte(arg)); err != nil {
				return err
			}
			return handlers.Permanent(errors.New("the game changed its mind"))
		case "leave":
			return ch.Leave(ctx, t.Session)
		case "close":
			return ch.Close(ctx)
		case "move":
			if err := t.MoveSession(t.Session, arg); err != nil {
				return err
			}
			return t.Send(t.Session, []byte("moved to "+arg))
		}
		return handlers.Permanent(fmt.Errorf("unknown verb %q", verb))
	})
	mux.HandleFunc("broadcast", func(ctx context.Context, t *handlers.Task) error {
		ch, err := t.Channel(ctx, "room")
		if err != nil {
			return err
		}
		return ch.Send(t.Data)
	})
	mux.HandleFunc(bus.EventDisconnect, func(context.Context, *handlers.Task) error { return nil })
	mux.Handle(bus.EventChannel, handlers.ForwardChannel(nil))
	return mux
}

// chatWorld is a world running chatGame behind one edge that lets anyone in.
func chatWorld(t testing.TB, configure func(*edge.Server)) *world {
	t.Helper()
	return startWorldWith(t, chatGame(), func(s *edge.Server) {
		s.Auth = edge.AuthFunc(acceptAll)
		if configure != nil {
			configure(s)
		}
	})
}

// joinRoom logs name in and waits for its room membership.
func joinRoom(ctx context.Context, t testing.TB, addr, name string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, addr, name, "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	joined := 0
	for joined < 2 {
		if m := nextMessage(ctx, t, c); m.Kind == client.KindJoined {
			joined++
		}
	}
	return c
}

// roomMessages reads n messages of the room from c, failing on anything
// else but best-effort and membership traffic.
func roomMessages(ctx context.Context, t testing.TB, c *client.Client, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		m := nextMessage(ctx, t, c)
		if m.Channel == "room" && m.Kind == client.KindMessage {
			got = append(got, string(m.Payload))
		}
	}
	return got
}

// TestChannelOrder: 50 sessions in one reliable channel, 3 of them
// sending: every member receives every message once, all in one order.
func TestChannelOrder(t *testing.T) {
	w := chatWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const members, senders, each = 50, 3, 40
	clients := make([]*client.Client, members)
	for i := range clients {
		clients[i] = joinRoom(ctx, t, w.addr, fmt.Sprintf("p%d", i))
	}
	var send sync.WaitGroup
	for s := range senders {
		send.Go(func() {
			for n := range each {
				if err := clients[s].Send(fmt.Appendf(nil, "say:%d-%d", s, n)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	send.Wait()
	var first []string
	for i, c := range clients {
		got := roomMessages(ctx, t, c, senders*each)
		if i == 0 {
			first = got
			// Each sender's messages in its order, none twice.
			seen := map[string]bool{}
			next := make([]int, senders)
			for _, m := range got {
				if seen[m] {
					t.Fatalf("%q twice", m)
				}
				seen[m] = true
				var s, n int
				fmt.Sscanf(m, "%d-%d", &s, &n)
				if n != next[s] {
					t.Fatalf("sender %d: got %d, want %d", s, n, next[s])
				}
				next[s]++
			}
			continue
		}
		if !slices.Equal(got, first) {
			t.Fatalf("member %d received another order:\n%v\nmember 0:\n%v", i, got, first)
		}
	}
	// And nothing more: a marker sent last is the next message everyone gets.
	if err := clients[0].Send([]byte("say:end")); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if got := roomMessages(ctx, t, c, 1); got[0] != "end" {
			t.Fatalf("after the %d messages: %q", senders*each, got[0])
		}
	}
}

// TestChannelSendAborted: a task that sends to a channel and then fails
// sends nothing.
func TestChannelSendAborted(t *testing.T) {
	w := chatWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := joinRoom(ctx, t, w.addr, "ann")
	b := joinRoom(ctx, t, w.addr, "bob")
	for _, m := range []string{"abort:ghost", "say:real"} {
		if err := a.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*client.Client{a, b} {
		if got := roomMessages(ctx, t, c, 1); got[0] != "real" {
			t.Fatalf("first room message %q, want %q: the aborted task's send leaked", got[0], "real")
		}
	}
}

// TestChannelEdgeRestart: the edge of a reliable channel's members shuts
// down; messages are sent to the channel while no edge is up; a new edge
// starts and the members resume their sessions on it: each receives what
// was sent meanwhile, once, in order, and what is sent afterwards.
func TestChannelEdgeRestart(t *testing.T) {
	w := chatWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const members = 5
	clients := make([]*client.Client, members)
	for i := range clients {
		clients[i] = joinRoom(ctx, t, w.addr, fmt.Sprintf("p%d", i))
	}
	if err := clients[0].Send([]byte("say:before")); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if got := roomMessages(ctx, t, c, 1); got[0] != "before" {
			t.Fatalf("got %q", got[0])
		}
	}
	if err := w.edge.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	const meanwhile = 20
	for i := range meanwhile {
		m := nats.NewMsg(mustEvent(t, w.env.World, "r0", "system"))
		m.Header.Set(bus.HeaderType, "broadcast")
		m.Data = fmt.Appendf(nil, "meanwhile-%d", i)
		if _, err := w.env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// They are committed while no edge is up.
	room, _ := w.env.World.Channel("room")
	natstest.Eventually(t, 20*time.Second, func() bool {
		info, err := w.env.Stream.Info(ctx, jetstream.WithSubjectFilter(room))
		return err == nil && info.State.Subjects[room] == meanwhile+1
	}, "the messages sent meanwhile committed")
	// The new edge takes the old one's address, where the clients go back.
	l, err := net.Listen("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	restarted := &edge.Server{JS: w.env.JS, World: w.env.World, Auth: edge.AuthFunc(acceptAll), Logger: testLogger(t)}
	serveOn(t, restarted, l)
	for i, c := range clients {
		<-c.Done()
		if err := c.Reconnect(ctx); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	if err := clients[1].Send([]byte("say:after")); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		got := roomMessages(ctx, t, c, meanwhile+1)
		for n := range meanwhile {
			if want := fmt.Sprintf("meanwhile-%d", n); got[n] != want {
				t.Fatalf("client %d, message %d: %q, want %q (all: %q)", i, n, got[n], want, got)
			}
		}
		if got[meanwhile] != "after" {
			t.Fatalf("client %d: %q after the replay", i, got[meanwhile])
		}
	}
}

// TestChannelMembership: best-effort messages reach members unstored; a
// client may talk on a channel it is in; a session that leaves, or ends,
// is out of the channel.
func TestChannelMembership(t *testing.T) {
	w := chatWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := joinRoom(ctx, t, w.addr, "ann")
	b := joinRoom(ctx, t, w.addr, "bob")

	if err := a.Send([]byte("pos:3,4")); err != nil {
		t.Fatal(err)
	}
	for m := nextMessage(ctx, t, b); ; m = nextMessage(ctx, t, b) {
		if m.Channel == "pos" {
			if m.Seq != 0 || string(m.Payload) != "3,4" {
				t.Fatalf("best-effort message %+v", m)
			}
			break
		}
	}
	if err := a.SendChannel("room", []byte("hi from ann")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{a, b} {
		if got := roomMessages(ctx, t, c, 1); got[0] != "hi from ann" {
			t.Fatalf("client channel message: %q", got[0])
		}
	}
	if err := b.Send([]byte("leave")); err != nil {
		t.Fatal(err)
	}
	for m := nextMessage(ctx, t, b); m.Kind != client.KindLeft; m = nextMessage(ctx, t, b) {
	}
	if err := b.SendChannel("room", []byte("not a member")); err != nil {
		t.Fatal(err)
	}
	if err := a.Send([]byte("say:after bob left")); err != nil {
		t.Fatal(err)
	}
	if got := roomMessages(ctx, t, a, 1); got[0] != "after bob left" {
		t.Fatalf("a non-member's channel message was forwarded: %q", got[0])
	}
	if err := a.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return len(w.members(ctx, t, "room")) == 0 }, "the ended session leaves the room")
}

// TestChannelNoGrace: with no reconnect grace, a lost connection ends the
// session, which leaves its channels.
func TestChannelNoGrace(t *testing.T) {
	w := chatWorld(t, func(s *edge.Server) { s.ReconnectGrace = -1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := joinRoom(ctx, t, w.addr, "ann")
	joinRoom(ctx, t, w.addr, "bob")
	if n := len(w.members(ctx, t, "room")); n != 2 {
		t.Fatalf("%d members, want 2", n)
	}
	a.Close()
	natstest.Eventually(t, 10*time.Second, func() bool { return len(w.members(ctx, t, "room")) == 1 }, "the dropped session leaves the room")
}

// members reads a channel's members from the state.
func (w *world) members(ctx context.Context, t testing.TB, channel string) []string {
	t.Helper()
	var m []string
	err := w.store.View(ctx, func(tx *kv.Tx) error {
		var err error
		m, err = handlers.ChannelMembers(ctx, tx, channel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustEvent(t testing.TB, w bus.World, region, part string) string {
	t.Helper()
	subj, err := w.Event(region, part)
	if err != nil {
		t.Fatal(err)
	}
	return subj
}

// TestMoveSession: once a task has moved a session to another region, the
// edge publishes the session's later events there, in order; and an edge
// that takes the session up after a restart knows where it went.
func TestMoveSession(t *testing.T) {
	w := chatWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := joinRoom(ctx, t, w.addr, "ann")
	if err := a.Send([]byte("move:r7")); err != nil {
		t.Fatal(err)
	}
	for m := nextMessage(ctx, t, a); string(m.Payload) != "moved to r7"; m = nextMessage(ctx, t, a) {
	}
	if err := a.Send([]byte("say:from r7")); err != nil {
		t.Fatal(err)
	}
	if got := roomMessages(ctx, t, a, 1); got[0] != "from r7" {
		t.Fatalf("got %q", got[0])
	}
	var regions []string
	for _, m := range storedEvents(t, w.env) {
		if m.Header.Get(bus.HeaderSession) != a.Session() {
			continue
		}
		region, _, _ := w.env.World.ParseEvent(m.Subject)
		regions = append(regions, region+":"+string(m.Data))
	}
	want := []string{"r0:move:r7", "r7:say:from r7"}
	if len(regions) < 2 || !slices.Equal(regions[len(regions)-2:], want) {
		t.Fatalf("events by region %q, want them to end with %q", regions, want)
	}
}

// TestChannelClose: closing a channel tells every member it left, empties
// it, and a later send to it finds no channel.
func TestChannelClose(t *testing.T) {
	w := chatWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := joinRoom(ctx, t, w.addr, "ann")
	b := joinRoom(ctx, t, w.addr, "bob")
	if got := w.members(ctx, t, "room"); !slices.Equal(got, slices.Sorted(slices.Values([]string{a.Session(), b.Session()}))) {
		t.Fatalf("members %q", got)
	}
	if err := a.Send([]byte("close")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{a, b} {
		for m := nextMessage(ctx, t, c); m.Kind != client.KindLeft || m.Channel != "room"; m = nextMessage(ctx, t, c) {
		}
	}
	if got := w.members(ctx, t, "room"); len(got) != 0 {
		t.Fatalf("members after close: %q", got)
	}
	err := w.store.View(ctx, func(tx *kv.Tx) error {
		_, err := tx.GetBytes(ctx, bus.ChannelKey("room"))
		return err
	})
	if !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("channel record after close: %v", err)
	}
}
