package edge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/starbus/starbus/bus/bustest"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/edge/sgs"
	"github.com/starbus/starbus/edge/sgs/sgsclient"
	"github.com/starbus/starbus/examples/hellochannels"
	"github.com/starbus/starbus/starbustest"
)

// peerInterval is the edges' announcement interval in these tests.
const peerInterval = 50 * time.Millisecond

// sgsWorld starts the HelloChannels tutorial in a world whose edge serves
// SimpleSgs, configured by configure.
func sgsWorld(t *testing.T, configure func(*edge.Server)) *starbustest.World {
	t.Helper()
	e := &edge.Server{PeerInterval: peerInterval, Logger: testLogger(t)}
	if configure != nil {
		configure(e)
	}
	return starbustest.Start(t, starbustest.Options{Handler: hellochannels.Handler(), Init: hellochannels.Init(), Edge: e, SGS: true})
}

// anotherEdge starts a second edge of w, serving TCP and SimpleSgs, and
// returns it with its two addresses.
func anotherEdge(t *testing.T, w *starbustest.World, configure func(*edge.Server)) (e *edge.Server, addr, sgsAddr string) {
	t.Helper()
	e = &edge.Server{JS: w.JS, World: w.World, Store: w.Store, PeerInterval: peerInterval, Logger: testLogger(t),
		Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })}
	if configure != nil {
		configure(e)
	}
	ls, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.ServeSGS(ls) }()
	t.Cleanup(func() {
		if err := <-served; !errors.Is(err, edge.ErrServerClosed) {
			t.Errorf("serve SimpleSgs: %v", err)
		}
	})
	return e, serve(t, e), ls.Addr().String()
}

// knowEachOther waits until every edge knows every other.
func knowEachOther(t *testing.T, edges ...*edge.Server) {
	t.Helper()
	bustest.Eventually(t, 10*time.Second, func() bool {
		for _, e := range edges {
			if e.Peers() != len(edges)-1 {
				return false
			}
		}
		return true
	}, "the edges know each other")
}

// events collects an sgsclient's events for a test's waits.
type events struct {
	c    *sgsclient.Client
	seen []sgsclient.Event
}

// expect returns the first event, seen or to come, that match accepts,
// and forgets it; the others stay, in order, for later waits.
func (ev *events) expect(t *testing.T, what string, match func(sgsclient.Event) bool) sgsclient.Event {
	t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		for i, e := range ev.seen {
			if match(e) {
				ev.seen = slices.Delete(ev.seen, i, i+1)
				return e
			}
		}
		select {
		case e, ok := <-ev.c.Events():
			if !ok {
				t.Fatalf("session over before %s: %v", what, ev.c.Err())
			}
			ev.seen = append(ev.seen, e)
		case <-timeout.C:
			t.Fatalf("no %s; seen %v", what, ev.seen)
		}
	}
}

func dialSGS(t *testing.T, addr, name string) *events {
	t.Helper()
	c, err := sgsclient.Dial(t.Context(), addr, name, "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ev := &events{c: c}
	for _, ch := range []string{hellochannels.Foo, hellochannels.Bar} {
		ev.expect(t, name+" joins "+ch, func(e sgsclient.Event) bool { return e.Kind == sgsclient.Joined && e.Channel == ch })
	}
	return ev
}

// TestSGSRelocate is issue 15's acceptance 2: an edge drains while
// SimpleSgs clients are connected; each is relocated to another edge and
// keeps its session (the same id, the key it was given), its channels,
// and every channel message, in order, none twice, including those sent
// while it moved.
func TestSGSRelocate(t *testing.T) {
	w := sgsWorld(t, nil)
	a := w.Edge
	b, bAddr, bSGS := anotherEdge(t, w, nil)
	knowEachOther(t, a, b)
	ctx := t.Context()

	names := []string{"duke", "earl", "fay"}
	var clients []*events
	keys := map[string]string{}
	for _, name := range names {
		ev := dialSGS(t, w.SGSAddr, name)
		clients = append(clients, ev)
		keys[name] = string(ev.c.Key())
	}
	ann, err := client.Dial(ctx, bAddr, "ann", "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ann.Close() })
	w.Eventually(func() bool { return len(w.Members(hellochannels.Foo)) == 4 && len(w.Members(hellochannels.Bar)) == 4 },
		"four members of Foo and Bar")
	before := w.Members(hellochannels.Foo)

	// Ann talks on Bar while a drains: what she says before, during and
	// after each client's move reaches it once, in order.
	const said = 30
	drained := make(chan error, 1)
	go func() { drained <- a.Drain(ctx) }()
	for i := range said {
		if err := ann.SendChannel(hellochannels.Bar, fmt.Appendf(nil, "m%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range clients {
		name := names[i]
		ev.expect(t, name+" suspended", func(e sgsclient.Event) bool { return e.Kind == sgsclient.Suspended })
		moving := ev.expect(t, name+" told to relocate", func(e sgsclient.Event) bool { return e.Kind == sgsclient.Relocating })
		if moving.Addr != bSGS {
			t.Errorf("%s relocates to %s, want %s", name, moving.Addr, bSGS)
		}
		moved := ev.expect(t, name+" relocated", func(e sgsclient.Event) bool { return e.Kind == sgsclient.Relocated })
		if string(moved.Key) != keys[name] {
			t.Errorf("%s: session %q after relocation, %q before", name, moved.Key, keys[name])
		}
		var heard []string
		for len(heard) < said {
			m := ev.expect(t, fmt.Sprintf("%s hears message %d", name, len(heard)), func(e sgsclient.Event) bool {
				return e.Kind == sgsclient.ChannelMessage && e.Channel == hellochannels.Bar
			})
			heard = append(heard, string(m.Payload))
		}
		for j, p := range heard {
			if want := fmt.Sprintf("m%02d", j); p != want {
				t.Fatalf("%s heard %q, want m00..m%02d in order", name, heard, said-1)
			}
		}
		// The key was good once.
		raw := dialSGSRaw(t, bSGS)
		raw.send(t, sgs.RelocateRequest{Version: sgs.Version, RelocationKey: moving.Key})
		if m, ok := raw.next(t).(sgs.RelocateFailure); !ok || m.Reason != "bad-token" {
			t.Errorf("%s's relocation key used again: %#v", name, m)
		}
		raw.expectClosed(t)
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}

	// The same sessions, in the same channels, on b now: messages both
	// ways.
	if after := w.Members(hellochannels.Foo); !slices.Equal(after, before) {
		t.Errorf("members of Foo after the drain %v, before %v", after, before)
	}
	if b.Sessions() != 4 {
		t.Errorf("edge b holds %d sessions, want 4", b.Sessions())
	}
	for i, ev := range clients {
		say := names[i] + " here"
		if err := ev.c.SendChannel(ctx, hellochannels.Foo, []byte(say)); err != nil {
			t.Fatal(err)
		}
		nextMessageFrom(ctx, t, ann, hellochannels.Foo, say)
		if err := ev.c.Send(ctx, []byte("echo "+names[i])); err != nil {
			t.Fatal(err)
		}
		ev.expect(t, "echo", func(e sgsclient.Event) bool {
			return e.Kind == sgsclient.Message && string(e.Payload) == "echo "+names[i]
		})
	}
}

// nextMessageFrom waits for the channel message text on ch.
func nextMessageFrom(ctx context.Context, t *testing.T, c *client.Client, ch, text string) {
	t.Helper()
	for {
		m := nextMessage(ctx, t, c)
		if m.Channel == ch && string(m.Payload) == text {
			return
		}
	}
}

// TestSGSRedirect: an edge at its bound of SimpleSgs sessions redirects
// the next login to a less loaded edge, where the client logs in.
func TestSGSRedirect(t *testing.T) {
	w := sgsWorld(t, func(e *edge.Server) { e.SGSMaxSessions = 1 })
	a := w.Edge
	b, _, _ := anotherEdge(t, w, nil)
	knowEachOther(t, a, b)

	first := dialSGS(t, w.SGSAddr, "duke")
	second := dialSGS(t, w.SGSAddr, "earl")
	for _, ev := range []*events{first, second} {
		for _, e := range ev.seen {
			if e.Kind == sgsclient.Redirected && ev == first {
				t.Errorf("the first login was redirected")
			}
		}
	}
	if a.Sessions() != 1 || b.Sessions() != 1 {
		t.Errorf("sessions: %d on a, %d on b; want 1 and 1", a.Sessions(), b.Sessions())
	}
	// Both are in the one world: each hears the other on Foo.
	if err := second.c.SendChannel(t.Context(), hellochannels.Foo, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	first.expect(t, "earl's message", func(e sgsclient.Event) bool { return e.Kind == sgsclient.ChannelMessage && string(e.Payload) == "hi" })
}

// sgsRaw is a SimpleSgs connection for the messages the client never
// sends.
type sgsRaw struct{ *rawConn }

func dialSGSRaw(t *testing.T, addr string) sgsRaw { return sgsRaw{dialRaw(t, addr)} }

func (r sgsRaw) send(t *testing.T, m sgs.Message) {
	t.Helper()
	b, err := sgs.Append(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	r.write(b)
}

func (r sgsRaw) next(t *testing.T) sgs.Message {
	t.Helper()
	f, err := sgs.ReadFrame(r.r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	m, err := sgs.Decode(f)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// expectClosed waits for the server to close the connection, having
// sent nothing more.
func (r sgsRaw) expectClosed(t *testing.T) {
	t.Helper()
	var b [64]byte
	n, err := io.ReadFull(r.r, b[:1])
	if n != 0 || (!errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed)) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the connection stayed open")
		}
		if n != 0 {
			t.Fatalf("got % x, want the end of the connection", b[:n])
		}
	}
}

// TestSGSBadInput: what Darkstar's server disconnects for, this edge does
// too, having sent nothing; what it ignores, this edge ignores; and the
// edge goes on serving others.
func TestSGSBadInput(t *testing.T) {
	w := sgsWorld(t, nil)
	login := func() []byte {
		b, _ := sgs.Append(nil, sgs.LoginRequest{Version: sgs.Version, Name: "mal", Password: "pw"})
		return b
	}
	frame := func(op byte, content ...byte) []byte {
		b, _ := sgs.AppendFrame(nil, sgs.Frame{Op: op, Content: content})
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"zero length", []byte{0, 0}},
		{"over the 65,535-byte limit", []byte{0xff, 0xff, sgs.OpSessionMessage}},
		{"unknown opcode", frame(0x01)},
		{"a Starbus LOGIN", []byte{0, 0, 0, 11, 1, 1, 0, 3, 'a', 'n', 'n', 0, 2, 'p', 'w'}},
		{"a server's opcode", frame(sgs.OpLoginSuccess)},
		{"RECONNECT_REQUEST, never implemented", frame(sgs.OpReconnectRequest, sgs.Version, 1, 2, 3)},
		{"protocol version 4", frame(sgs.OpLoginRequest, 4, 0, 3, 'a', 'n', 'n', 0, 2, 'p', 'w')},
		{"a truncated login", frame(sgs.OpLoginRequest, sgs.Version, 0, 9, 'a')},
		{"a name that is not modified UTF-8", frame(sgs.OpLoginRequest, sgs.Version, 0, 1, 0, 0, 2, 'p', 'w')},
		{"logout before login", frame(sgs.OpLogoutRequest)},
		{"a malformed channel message before login", frame(sgs.OpChannelMessage, 0, 9)},
		{"a malformed message after login", append(login(), frame(sgs.OpLogoutRequest, 1)...)},
		{"relocation with a bad key", frame(sgs.OpRelocateRequest, sgs.Version, 1, 2, 3)},
		{"relocation with a key whose token is not UTF-8", frame(sgs.OpRelocateRequest, sgs.Version, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialSGSRaw(t, w.SGSAddr)
			r.write(tc.in)
			var got []sgs.Message
			for {
				f, err := sgs.ReadFrame(r.r)
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatalf("the connection stayed open (after %T)", got)
					}
					break
				}
				m, _ := sgs.Decode(f)
				got = append(got, m)
			}
			for _, m := range got {
				switch m.(type) {
				case sgs.LoginSuccess, sgs.ChannelJoin, sgs.RelocateFailure:
				default:
					t.Errorf("sent %T before closing", m)
				}
			}
		})
	}

	t.Run("messages before login are dropped", func(t *testing.T) {
		r := dialSGSRaw(t, w.SGSAddr)
		r.send(t, sgs.SessionMessage{Message: []byte("early")})
		r.send(t, sgs.ChannelMessage{ID: []byte(hellochannels.Foo), Message: []byte("early")})
		r.send(t, sgs.SuspendMessagesComplete{})
		r.write(login())
		if m := r.next(t); m.Op() != sgs.OpLoginSuccess {
			t.Fatalf("login answered %T", m)
		}
	})

	t.Run("a channel the session is not in", func(t *testing.T) {
		ev := dialSGS(t, w.SGSAddr, "nan")
		if err := ev.c.SendRaw(sgs.ChannelMessage{ID: []byte("Baz"), Message: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if err := ev.c.SendRaw(sgs.ChannelMessage{ID: []byte("no.such"), Message: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if err := ev.c.Send(t.Context(), []byte("still here")); err != nil {
			t.Fatal(err)
		}
		ev.expect(t, "the echo", func(e sgsclient.Event) bool {
			return e.Kind == sgsclient.Message && bytes.Equal(e.Payload, []byte("still here"))
		})
	})

	// The edge serves on.
	ev := dialSGS(t, w.SGSAddr, "good")
	if err := ev.c.Send(t.Context(), []byte("fine")); err != nil {
		t.Fatal(err)
	}
	ev.expect(t, "the echo", func(e sgsclient.Event) bool { return e.Kind == sgsclient.Message && string(e.Payload) == "fine" })
}

// TestSGSDrainTimeout: a client that does not answer SUSPEND_MESSAGES in
// time is closed as Shutdown closes it, without a relocation, and holds
// the drain up no longer than SuspendTimeout; a client that answers is
// relocated meanwhile, and a login that comes while the edge drains is
// redirected to another edge.
func TestSGSDrainTimeout(t *testing.T) {
	const suspendTimeout = 2 * time.Second
	w := sgsWorld(t, func(e *edge.Server) { e.SuspendTimeout = suspendTimeout })
	a := w.Edge
	b, _, bSGS := anotherEdge(t, w, nil)
	knowEachOther(t, a, b)

	deaf := dialSGSRaw(t, w.SGSAddr)
	deaf.send(t, sgs.LoginRequest{Version: sgs.Version, Name: "deaf", Password: "pw"})
	if m := deaf.next(t); m.Op() != sgs.OpLoginSuccess {
		t.Fatalf("login answered %T", m)
	}
	good := dialSGS(t, w.SGSAddr, "good")

	start := time.Now()
	drained := make(chan error, 1)
	go func() { drained <- a.Drain(t.Context()) }()
	good.expect(t, "relocated", func(e sgsclient.Event) bool { return e.Kind == sgsclient.Relocated })
	for {
		if m := deaf.next(t); m.Op() == sgs.OpSuspendMessages {
			break
		}
	}
	// a drains, held up by deaf: a login goes to b.
	late := dialSGS(t, w.SGSAddr, "late")
	if !slices.ContainsFunc(late.seen, func(e sgsclient.Event) bool { return e.Kind == sgsclient.Redirected && e.Addr == bSGS }) {
		// The redirect comes before the login's events: it was seen.
		t.Errorf("a login during the drain was not redirected to b")
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
	if d := time.Since(start); d < suspendTimeout || d > suspendTimeout+10*time.Second {
		t.Errorf("the drain took %v, with a client that never suspends and a SuspendTimeout of %v", d, suspendTimeout)
	}
	for {
		f, err := sgs.ReadFrame(deaf.r)
		if err != nil {
			break // closed
		}
		if f.Op != sgs.OpChannelJoin {
			t.Fatalf("the deaf client was sent opcode 0x%02x after SUSPEND_MESSAGES", f.Op)
		}
	}
	if b.Sessions() != 2 {
		t.Errorf("edge b holds %d sessions, want 2 (good, relocated; late, redirected)", b.Sessions())
	}
}
