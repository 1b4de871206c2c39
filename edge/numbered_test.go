package edge_test

import (
	"context"
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/internal/natstest"
)

// Raw frames of protocol version 2, from PROTOCOL.md.

func rawLogin2(name string) []byte {
	return rawFrame(0x01, []byte{2}, rawStr(name), rawStr("pw"))
}

func rawReconnect2(token string, last, acked uint64) []byte {
	return rawFrame(0x02, []byte{2}, rawStr(token), binary.BigEndian.AppendUint64(nil, last), binary.BigEndian.AppendUint64(nil, acked))
}

func rawSeqSend(seq uint64, payload string) []byte {
	return rawFrame(0x07, binary.BigEndian.AppendUint64(nil, seq), []byte(payload))
}

func rawSeqChannelSend(seq uint64, channel, payload string) []byte {
	return rawFrame(0x08, binary.BigEndian.AppendUint64(nil, seq), rawStr(channel), []byte(payload))
}

// loginOK2 reads a version 2 LOGIN_OK: its session, token and last-send.
func (c *rawConn) loginOK2() (session, token string, lastSend uint64) {
	c.t.Helper()
	op, body := c.read()
	if op != 0x81 || body[0] != 2 {
		c.t.Fatalf("got op 0x%02x %q, want LOGIN_OK version 2", op, body)
	}
	session, rest := rawStrAt(body[1:])
	token, rest = rawStrAt(rest)
	if len(rest) != 4+4+8 {
		c.t.Fatalf("LOGIN_OK version 2 ends with %d bytes, want max-frame, rate, last-send", len(rest))
	}
	return session, token, binary.BigEndian.Uint64(rest[8:])
}

// ackOf reads frames until an ACK of at least seq, failing on anything but
// ACKs and MESSAGEs.
func (c *rawConn) ackOf(seq uint64) {
	c.t.Helper()
	for {
		switch op, body := c.read(); op {
		case 0x8a:
			if binary.BigEndian.Uint64(body) >= seq {
				return
			}
		case 0x83:
		default:
			c.t.Fatalf("got op 0x%02x %q, want ACK %d", op, body, seq)
		}
	}
}

// errorCode reads an ERROR frame, skipping ACKs, and returns its code.
func (c *rawConn) errorCode() wire.Code {
	c.t.Helper()
	for {
		op, body := c.read()
		switch op {
		case 0x88:
			return wire.Code(binary.BigEndian.Uint16(body))
		case 0x8a:
		default:
			c.t.Fatalf("got op 0x%02x %q, want ERROR", op, body)
		}
	}
}

// sessionEvents returns the stored events of session, waiting until there
// are n (or the deadline).
func sessionEvents(t *testing.T, env *natstest.Env, session string, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	var evs []*jetstream.RawStreamMsg
	natstest.Eventually(t, 10*time.Second, func() bool {
		evs = evs[:0]
		for _, m := range storedEvents(t, env) {
			if m.Header.Get(bus.HeaderSession) == session {
				evs = append(evs, m)
			}
		}
		return len(evs) >= n
	}, "%d events of %s", n, session)
	return evs
}

// TestNumberedSends is protocol version 2 from raw bytes: numbered sends
// become events numbered by the client, acknowledged; a resent send is
// stored once, whichever edge it reaches, even once the stream's copy is
// purged; a gap closes the connection; the RECONNECT answer says which
// sends are stored; version 1 frames and versions are refused in a
// version 2 session.
func TestNumberedSends(t *testing.T) {
	b := startBareEdge(t, nil)
	c := dialRaw(t, b.addr)
	c.write(rawLogin2("ann"))
	session, token, last := c.loginOK2()
	if last != 0 {
		t.Fatalf("a new session's last-send is %d", last)
	}
	c.write(rawSeqSend(1, "a"))
	c.write(rawSeqSend(2, "b"))
	c.write(rawSeqSend(3, "c"))
	c.ackOf(3)
	c.write(rawFrame(0x03, []byte("unnumbered")))
	if code := c.errorCode(); code != wire.CodeUnsupported {
		t.Fatalf("SEND in a version 2 session: code %d", code)
	}
	c.write(rawSeqSend(2, "b again")) // a duplicate: dropped
	c.write(rawSeqSend(5, "e"))       // a gap: closes
	if code := c.errorCode(); code != wire.CodeOutOfOrder {
		t.Fatalf("a gap: code %d, want out-of-order", code)
	}

	evs := sessionEvents(t, b.env, session, 4)
	if len(evs) != 4 {
		t.Fatalf("%d events: %q", len(evs), eventTypes(evs))
	}
	if h := evs[0].Header; h.Get(bus.HeaderType) != bus.EventLogin || h.Get(bus.HeaderSeq) != "" {
		t.Errorf("login event %v: no client sequence at version 2", h)
	}
	for i, want := range []string{"a", "b", "c"} {
		m, n := evs[i+1], strconv.Itoa(i+1)
		if h := m.Header; string(m.Data) != want || h.Get(bus.HeaderSeq) != n || h.Get(jetstream.MsgIDHeader) != session+"-s"+n {
			t.Errorf("event %d: %v %q, want %q seq %s", i+1, h, m.Data, want, n)
		}
	}

	// Reconnect: told that 3 is stored, the client goes on with 4.
	c = dialRaw(t, b.addr)
	c.write(rawReconnect(token, 0)) // version 1
	if code := c.errorCode(); code != wire.CodeBadVersion {
		t.Fatalf("version 1 RECONNECT to a version 2 session: code %d", code)
	}
	c = dialRaw(t, b.addr)
	c.write(rawReconnect2(token, 0, 1))
	if s, _, last := c.loginOK2(); s != session || last != 3 {
		t.Fatalf("reconnect: session %q last-send %d, want %q 3", s, last, session)
	}
	c.write(rawSeqSend(4, "d"))
	c.write(rawSeqChannelSend(5, "not a channel!", "x")) // uses up 5
	if code := c.errorCode(); code != wire.CodeMalformed {
		t.Fatalf("bad channel: code %d", code)
	}
	c.write(rawSeqSend(6, "f"))
	c.ackOf(6)
	c.nc.Close()

	// Another edge takes the session up, as after this one's kill -9: the
	// session's record says nothing of its sends, the stream does.
	other := &edge.Server{JS: b.env.JS, World: b.env.World, Logger: testLogger(t),
		Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })}
	otherAddr := serve(t, other)
	c = dialRaw(t, otherAddr)
	c.write(rawReconnect2(token, 0, 0))
	if _, _, last := c.loginOK2(); last != 6 {
		t.Fatalf("taken up: last-send %d, want 6", last)
	}
	c.nc.Close()

	// Workers purge the events they have handled: the stream no longer
	// tells, and a third edge says less than is stored. The sends the
	// client then resends are stored once all the same.
	subj, _ := b.env.World.Event("r0", session)
	if err := b.env.Stream.Purge(t.Context(), jetstream.WithPurgeSubject(subj)); err != nil {
		t.Fatal(err)
	}
	third := &edge.Server{JS: b.env.JS, World: b.env.World, Logger: testLogger(t),
		Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })}
	c = dialRaw(t, serve(t, third))
	c.write(rawReconnect2(token, 0, 3))
	if _, _, last := c.loginOK2(); last != 3 {
		t.Fatalf("after the purge: last-send %d, want 3 (what the client was acknowledged)", last)
	}
	c.write(rawSeqSend(4, "d"))
	c.write(rawSeqChannelSend(5, "not a channel!", "x"))
	if code := c.errorCode(); code != wire.CodeMalformed {
		t.Fatalf("bad channel again: code %d", code)
	}
	c.write(rawSeqSend(6, "f"))
	c.write(rawSeqSend(7, "g"))
	c.ackOf(7)
	evs = sessionEvents(t, b.env, session, 1)
	if len(evs) != 1 || string(evs[0].Data) != "g" || evs[0].Header.Get(bus.HeaderSeq) != "7" {
		t.Fatalf("after the resends: %d events %q, want only g (7)", len(evs), eventTypes(evs))
	}
}

// TestNumberedSendsRate: at version 2, sends over the rate limit are not
// dropped: the edge reads them as the limit allows, and every one is
// stored, in order.
func TestNumberedSendsRate(t *testing.T) {
	b := startBareEdge(t, func(s *edge.Server) { s.RatePerSecond, s.Burst = 50, 10 })
	c := dialRaw(t, b.addr)
	c.write(rawLogin2("fast"))
	session, _, _ := c.loginOK2()
	const n = 40
	start := time.Now()
	for i := range uint64(n) {
		c.write(rawSeqSend(i+1, strconv.FormatUint(i+1, 10)))
	}
	c.ackOf(n)
	if took := time.Since(start); took < (n-10)*time.Second/50*9/10 {
		t.Errorf("%d sends stored in %v: faster than the rate", n, took)
	}
	evs := sessionEvents(t, b.env, session, n+1)
	for i, m := range evs[1:] {
		if want := strconv.Itoa(i + 1); string(m.Data) != want || m.Header.Get(bus.HeaderSeq) != want {
			t.Fatalf("event %d: %q seq %s", i+1, m.Data, m.Header.Get(bus.HeaderSeq))
		}
	}
}
