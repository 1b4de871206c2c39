package edge_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// rawConn is a connection speaking PROTOCOL.md byte by byte.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) read() (byte, []byte) { c.t.Helper(); return readRaw(c.t, c.r) }

// loginOK reads LOGIN_OK and returns its session and token.
func (c *rawConn) loginOK() (session, token string) {
	c.t.Helper()
	op, body := c.read()
	if op != 0x81 {
		c.t.Fatalf("got op 0x%02x %q, want LOGIN_OK", op, body)
	}
	session, rest := rawStrAt(body[1:])
	token, _ = rawStrAt(rest)
	return session, token
}

// message reads a MESSAGE and returns its seq and payload.
func (c *rawConn) message() (uint64, string) {
	c.t.Helper()
	op, body := c.read()
	if op != 0x83 {
		c.t.Fatalf("got op 0x%02x %q, want MESSAGE", op, body)
	}
	return binary.BigEndian.Uint64(body), string(body[8:])
}

func rawReconnect(token string, last uint64) []byte {
	return rawFrame(0x02, []byte{1}, rawStr(token), binary.BigEndian.AppendUint64(nil, last))
}

// TestEvents checks the contract with the workers from raw bytes: each
// client action is one event with the session's headers, a sequence that
// continues across a reconnect, and a dedup id; a message stored for the
// session reaches the socket with its stream sequence.
func TestEvents(t *testing.T) {
	b := startBareEdge(t, nil)
	c := dialRaw(t, b.addr)
	c.write(rawFrame(0x01, []byte{1}, rawStr("ann"), rawStr("pw")))
	session, token := c.loginOK()
	c.write(rawFrame(0x03, []byte("a")))
	c.write(rawFrame(0x03, []byte("b")))

	seq := b.toSession(t, session, []byte("hello ann"))
	if got, payload := c.message(); got != seq || payload != "hello ann" {
		t.Fatalf("message: seq %d %q, want %d %q", got, payload, seq, "hello ann")
	}
	// Drop the connection and resume: the event sequence continues.
	c.nc.Close()
	c = dialRaw(t, b.addr)
	c.write(rawReconnect(token, seq))
	if s, _ := c.loginOK(); s != session {
		t.Fatalf("reconnect gave session %q, want %q", s, session)
	}
	c.write(rawFrame(0x03, []byte("c")))
	c.write(rawFrame(0x04))
	if op, _ := c.read(); op != 0x87 {
		t.Fatalf("logout answer op 0x%02x", op)
	}

	want := []struct{ typ, data string }{
		{bus.EventLogin, "ann"}, {bus.EventMessage, "a"}, {bus.EventMessage, "b"},
		{bus.EventMessage, "c"}, {bus.EventDisconnect, ""},
	}
	var evs []*jetstream.RawStreamMsg
	deadline := time.Now().Add(10 * time.Second)
	for evs = b.events(t); len(evs) < len(want) && time.Now().Before(deadline); evs = b.events(t) {
		time.Sleep(2 * time.Millisecond) // polling, as natstest.Eventually does
	}
	if len(evs) != len(want) {
		t.Fatalf("events %q, want %d", eventTypes(evs), len(want))
	}
	wantSubject, _ := b.env.World.Event("r0", session)
	for i, m := range evs {
		h := m.Header
		n := strconv.Itoa(i + 1)
		if m.Subject != wantSubject || h.Get(bus.HeaderType) != want[i].typ || string(m.Data) != want[i].data ||
			h.Get(bus.HeaderSession) != session || h.Get(bus.HeaderSeq) != n || h.Get(jetstream.MsgIDHeader) != wantID(session, n, want[i].typ) {
			t.Errorf("event %d: %s %v %q, want %s type %s data %q seq %s", i, m.Subject, h, m.Data, wantSubject, want[i].typ, want[i].data, n)
		}
	}
}

// wantID is the dedup id of an event: the session, its epoch and number.
// A disconnect is published in the transaction that ends the session, which
// needs none.
func wantID(session, n, typ string) string {
	if typ == bus.EventDisconnect {
		return ""
	}
	return session + "-1-" + n
}

// TestReconnectUnderLoad drops and resumes a session again and again while
// the world keeps sending to it: the client receives every message once,
// in order, whether it was sent while connected, while away, or during the
// replay of a reconnect.
func TestReconnectUnderLoad(t *testing.T) {
	b := startBareEdge(t, nil)
	ctx, c := dialClient(t, b.addr, "ann")

	const total = 600
	var sender sync.WaitGroup
	defer sender.Wait()
	sender.Go(func() {
		for i := range total {
			b.toSession(t, c.Session(), []byte(strconv.Itoa(i)))
		}
	})
	for i := 0; i < total; i++ {
		if i%100 == 50 { // drop and resume, mid-stream
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.Reconnect(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if m := nextMessage(ctx, t, c); string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("message %d: got %q", i, m.Payload)
		}
	}
}

// TestTakeover resumes a session whose old connection the edge still
// holds: the old one is told and closed, the new one gets what the old
// one missed.
func TestTakeover(t *testing.T) {
	b := startBareEdge(t, nil)
	old := dialRaw(t, b.addr)
	old.write(rawFrame(0x01, []byte{1}, rawStr("ann"), rawStr("pw")))
	session, token := old.loginOK()
	s1 := b.toSession(t, session, []byte("one"))
	if seq, _ := old.message(); seq != s1 {
		t.Fatalf("seq %d, want %d", seq, s1)
	}
	b.toSession(t, session, []byte("two"))

	c := dialRaw(t, b.addr)
	c.write(rawReconnect(token, s1))
	c.loginOK()
	if _, p := c.message(); p != "two" {
		t.Fatalf("after takeover got %q, want two", p)
	}
	// The old connection may still have received "two"; then the error.
	for {
		op, body := old.read()
		if op == 0x83 {
			continue
		}
		if op != 0x88 || binary.BigEndian.Uint16(body) != uint16(wire.CodeAlreadyLoggedIn) {
			t.Fatalf("old connection got op 0x%02x %q", op, body)
		}
		break
	}
	if _, err := old.r.ReadByte(); err == nil {
		t.Fatal("old connection still open")
	}
}

// TestGrace lets a session's reconnect grace run out: the game gets the
// disconnect event, and the token no longer works.
func TestGrace(t *testing.T) {
	b := startBareEdge(t, func(s *edge.Server) { s.ReconnectGrace = 200 * time.Millisecond })
	c := dialRaw(t, b.addr)
	c.write(rawFrame(0x01, []byte{1}, rawStr("ann"), rawStr("pw")))
	session, token := c.loginOK()
	c.nc.Close()
	natstest.Eventually(t, 10*time.Second, func() bool { return b.disconnected(t, session) }, "disconnect event after the grace")
	if n := b.edge.Sessions(); n != 0 {
		t.Fatalf("%d sessions after the grace", n)
	}
	c = dialRaw(t, b.addr)
	c.write(rawReconnect(token, 0))
	if op, body := c.read(); op != 0x82 || binary.BigEndian.Uint16(body) != uint16(wire.CodeBadToken) {
		t.Fatalf("reconnect after grace: op 0x%02x %q", op, body)
	}
}

// TestShutdown tells connected clients the edge is going away and
// suspends their sessions: the game hears nothing until the grace has run
// out with no edge taking them up; then an edge (here, a new one) ends them.
func TestShutdown(t *testing.T) {
	const grace = 300 * time.Millisecond
	b := startBareEdge(t, func(s *edge.Server) { s.ReconnectGrace = grace })
	c := dialRaw(t, b.addr)
	c.write(rawFrame(0x01, []byte{1}, rawStr("ann"), rawStr("pw")))
	session, _ := c.loginOK()
	if err := b.edge.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if op, body := c.read(); op != 0x88 || binary.BigEndian.Uint16(body) != uint16(wire.CodeShuttingDown) {
		t.Fatalf("got op 0x%02x %q, want shutting-down", op, body)
	}
	if _, err := io.ReadAll(c.r); err != nil {
		t.Fatalf("connection not closed: %v", err)
	}
	if _, err := net.Dial("tcp", b.addr); err == nil {
		t.Fatal("still accepting after shutdown")
	}
	disconnected := func() bool {
		evs := b.events(t)
		last := evs[len(evs)-1].Header
		return last.Get(bus.HeaderType) == bus.EventDisconnect && last.Get(bus.HeaderSession) == session
	}
	if disconnected() {
		t.Fatal("the session ended at shutdown; it should wait for a reconnect")
	}
	next := &edge.Server{JS: b.env.JS, World: b.env.World, Auth: b.edge.Auth, ReconnectGrace: grace, Logger: testLogger(t)}
	serve(t, next)
	natstest.Eventually(t, 10*time.Second, disconnected, "the suspended session ends after its grace")
	if waited := time.Since(stopped); waited < grace {
		t.Fatalf("ended %v after the shutdown, before the grace of %v", waited, grace)
	}
}

// TestReapAmongManySessions: an edge ends a suspended session whose grace
// has run out while more than the 1,024 session records a direct get
// answers at once are stored (the world's other players, held by edges).
func TestReapAmongManySessions(t *testing.T) {
	const grace = 300 * time.Millisecond
	b := startBareEdge(t, func(s *edge.Server) { s.ReconnectGrace = grace })
	store, err := kv.Open(t.Context(), b.env.JS, b.env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for i := 0; i < 1_100; i += 500 {
		err := store.Update(t.Context(), func(tx *kv.Tx) error {
			for j := i; j < min(i+500, 1_100); j++ {
				rec := map[string]any{"player": fmt.Sprintf("p%d", j), "region": "r0", "epoch": 1}
				if err := tx.Put(bus.SessionKey(fmt.Sprintf("held%d", j)), rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c := dialRaw(t, b.addr)
	c.write(rawFrame(0x01, []byte{1}, rawStr("ann"), rawStr("pw")))
	session, _ := c.loginOK()
	if err := b.edge.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	next := &edge.Server{JS: b.env.JS, World: b.env.World, Auth: b.edge.Auth, ReconnectGrace: grace, Logger: testLogger(t)}
	serve(t, next)
	natstest.Eventually(t, 10*time.Second, func() bool { return b.disconnected(t, session) },
		"the suspended session ends after its grace, among 1,100 others")
}

// disconnected reports whether the world has had session's disconnect
// event.
func (b *bareEdge) disconnected(t testing.TB, session string) bool {
	for _, m := range b.events(t) {
		if m.Header.Get(bus.HeaderType) == bus.EventDisconnect && m.Header.Get(bus.HeaderSession) == session {
			return true
		}
	}
	return false
}

func eventTypes(evs []*jetstream.RawStreamMsg) []string {
	var out []string
	for _, m := range evs {
		out = append(out, fmt.Sprintf("%d %s %s:%s", m.Sequence, m.Header.Get(bus.HeaderSeq), m.Header.Get(bus.HeaderType), m.Data))
	}
	return out
}

// TestReconnectBeyondSent: a RECONNECT whose last-seq is beyond anything
// the world has sent is refused with LOGIN_FAILED bad-last-seq (it used
// to be accepted, and every message up to that seq was then dropped
// silently); the connection stays open, and a RECONNECT with a true
// last-seq resumes the session and its messages.
func TestReconnectBeyondSent(t *testing.T) {
	b := startBareEdge(t, nil)
	c := dialRaw(t, b.addr)
	c.write(rawFrame(0x01, []byte{1}, rawStr("ann"), rawStr("pw")))
	session, token := c.loginOK()
	last := b.toSession(t, session, []byte("one"))
	if seq, p := c.message(); seq != last || p != "one" {
		t.Fatalf("message %d %q", seq, p)
	}
	c.nc.Close()

	r := dialRaw(t, b.addr)
	r.write(rawReconnect(token, last+1_000_000))
	op, body := r.read()
	if op != 0x82 || binary.BigEndian.Uint16(body) != uint16(wire.CodeBadLastSeq) {
		t.Fatalf("got op 0x%02x %q, want LOGIN_FAILED bad-last-seq", op, body)
	}
	r.write(rawReconnect(token, last))
	if s, _ := r.loginOK(); s != session {
		t.Fatalf("resumed session %q, want %q", s, session)
	}
	next := b.toSession(t, session, []byte("two"))
	if seq, p := r.message(); seq != next || p != "two" {
		t.Fatalf("after the reconnect: message %d %q, want %d two", seq, p, next)
	}
}
