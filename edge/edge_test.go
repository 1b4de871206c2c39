package edge_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// world is the wiring of `starbus dev` in one test: a JetStream server, the
// world's state, a worker runtime with a small game, and an edge.
type world struct {
	env   *natstest.Env
	store *kv.Store
	edge  *edge.Server
	addr  string
	rt    *handlers.Runtime
}

// game: greets on login, echoes messages, records disconnects.
func game() *handlers.Mux {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		return t.Send(t.Session, []byte("welcome "+string(t.Data)))
	})
	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
		return t.Send(t.Session, append([]byte("echo: "), t.Data...))
	})
	mux.HandleFunc(bus.EventDisconnect, func(ctx context.Context, t *handlers.Task) error {
		return t.Put("left."+t.Session, t.Seq)
	})
	return mux
}

func startWorld(t testing.TB, configure func(*edge.Server)) *world {
	t.Helper()
	return startWorldWith(t, game(), configure)
}

// startWorldWith starts a world running the game h, without compaction:
// tests read the events back.
func startWorldWith(t testing.TB, h handlers.Handler, configure func(*edge.Server)) *world {
	t.Helper()
	return startWorldConfig(t, handlers.Config{Handler: h, CompactInterval: -1}, configure)
}

// startWorldConfig starts a world whose runtime is configured by hc (its
// Store, JS and Logger are filled in).
func startWorldConfig(t testing.TB, hc handlers.Config, configure func(*edge.Server)) *world {
	t.Helper()
	env := natstest.Start(t, natstest.Options{})
	store, err := kv.Open(context.Background(), env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hc.Store, hc.JS, hc.Logger = store, env.JS, testLogger(t)
	rt, err := handlers.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rtDone := make(chan error, 1)
	go func() { rtDone <- rt.Run(ctx) }()
	t.Cleanup(func() { // after the edge's shutdown (cleanups run last first)
		cancel()
		<-rtDone
		store.Close()
	})
	srv := &edge.Server{JS: env.JS, World: env.World, Auth: &edge.StoreAuth{Store: store, Register: true}, Logger: testLogger(t)}
	if configure != nil {
		configure(srv)
	}
	return &world{env: env, store: store, edge: srv, addr: serve(t, srv), rt: rt}
}

// Raw frames, written from PROTOCOL.md alone.

func rawFrame(op byte, body ...[]byte) []byte {
	var b []byte
	for _, p := range body {
		b = append(b, p...)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(1+len(b)))
	return append(append(out, op), b...)
}

func rawStr(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }

func readRaw(t testing.TB, r io.Reader) (byte, []byte) {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read frame body: %v", err)
	}
	return buf[0], buf[1:]
}

func rawStrAt(b []byte) (string, []byte) {
	n := binary.BigEndian.Uint16(b)
	return string(b[2 : 2+n]), b[2+n:]
}

// TestRawProtocol is acceptance 1 of the edge: bytes per PROTOCOL.md over
// TCP: login, a message round trip through a handler, logout.
func TestRawProtocol(t *testing.T) {
	w := startWorld(t, nil)
	nc, err := net.Dial("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(nc)

	nc.Write(rawFrame(0x01, []byte{1}, rawStr("ann"), rawStr("secret")))
	op, body := readRaw(t, r)
	if op != 0x81 || body[0] != 1 {
		t.Fatalf("login answer: op 0x%02x body %q", op, body)
	}
	session, rest := rawStrAt(body[1:])
	token, rest := rawStrAt(rest)
	if session == "" || token == "" || len(rest) != 8 {
		t.Fatalf("login ok: session %q token %q rest %d", session, token, len(rest))
	}
	expect := func(want string) uint64 {
		op, body := readRaw(t, r)
		if op != 0x83 || string(body[8:]) != want {
			t.Fatalf("got op 0x%02x %q, want message %q", op, body, want)
		}
		return binary.BigEndian.Uint64(body[:8])
	}
	s1 := expect("welcome ann")
	nc.Write(rawFrame(0x03, []byte("hello")))
	if s2 := expect("echo: hello"); s2 <= s1 {
		t.Fatalf("sequence went from %d to %d", s1, s2)
	}
	nc.Write(rawFrame(0x05, binary.BigEndian.AppendUint64(nil, 42)))
	if op, body := readRaw(t, r); op != 0x89 || binary.BigEndian.Uint64(body) != 42 {
		t.Fatalf("pong: op 0x%02x %v", op, body)
	}
	nc.Write(rawFrame(0x04))
	if op, _ := readRaw(t, r); op != 0x87 {
		t.Fatalf("logout answer: op 0x%02x", op)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after logout: %v", err)
	}
	// The game's disconnect handler ran for the session.
	natstest.Eventually(t, 10*time.Second, func() bool {
		err := w.store.View(t.Context(), func(tx *kv.Tx) error {
			var seq uint64
			return tx.Get(t.Context(), "left."+session, &seq)
		})
		return err == nil
	}, "disconnect handled")
	// A wrong password is refused with its code.
	c2, _ := net.Dial("tcp", w.addr)
	defer c2.Close()
	c2.Write(rawFrame(0x01, []byte{1}, rawStr("ann"), rawStr("wrong")))
	if op, body := readRaw(t, bufio.NewReader(c2)); op != 0x82 || binary.BigEndian.Uint16(body) != 8 {
		t.Fatalf("bad password: op 0x%02x %v", op, body)
	}
}

// TestReconnect is acceptance 2: drop the TCP connection, messages are sent
// to the session meanwhile, reconnect with the token: none is lost or
// duplicated.
func TestReconnect(t *testing.T) {
	w := startWorld(t, nil)
	ctx, c := dialClient(t, w.addr, "bob")
	next := func() client.Message { return nextMessage(ctx, t, c) }
	if m := next(); string(m.Payload) != "welcome bob" {
		t.Fatalf("first message %q", m.Payload)
	}
	for i := range 5 {
		_ = c.Send(fmt.Appendf(nil, "a%d", i))
		if m := next(); string(m.Payload) != fmt.Sprintf("echo: a%d", i) {
			t.Fatalf("echo %d: %q", i, m.Payload)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// While the client is away, the world keeps sending to its session.
	const away = 20
	w.sendAway(ctx, t, c.Session(), away)
	if err := c.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.Send([]byte("back"))
	var got []string
	for len(got) < away+1 {
		got = append(got, string(next().Payload))
	}
	for i := range away {
		if got[i] != fmt.Sprintf("away %d", i) {
			t.Fatalf("after reconnect got %q", got)
		}
	}
	if got[away] != "echo: back" {
		t.Fatalf("after the missed messages got %q, want the echo", got[away])
	}
	select {
	case m := <-c.Messages():
		t.Fatalf("duplicate or extra message %q", m.Payload)
	case <-time.After(100 * time.Millisecond): // a bounded check for absence
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput is acceptance 3: malformed input gets an error or a
// disconnect; the edge stays up and another client is unaffected.
func TestBadInput(t *testing.T) {
	w := startWorld(t, func(s *edge.Server) {
		// A cheap authenticator: password hashing is TestRawProtocol's
		// business, and here it would only slow logins under -race.
		s.Auth = edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })
		s.MaxFrame = 1 << 10
		s.LoginTimeout = time.Second
		s.OutboundQueue = 32
		s.RatePerSecond, s.Burst = 5, 5
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	good, err := client.Dial(ctx, w.addr, "good", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	<-good.Messages() // welcome
	roundTrip := func(tag string) {
		t.Helper()
		if err := good.Send([]byte(tag)); err != nil {
			t.Fatalf("%s: good client send: %v", tag, err)
		}
		select {
		case m := <-good.Messages():
			if string(m.Payload) != "echo: "+tag {
				t.Fatalf("%s: good client got %q", tag, m.Payload)
			}
		case <-ctx.Done():
			t.Fatalf("%s: good client got no echo", tag)
		}
	}
	// expectError reads until an error frame with code, or the close.
	expectError := func(r *bufio.Reader, code uint16, closes bool) {
		t.Helper()
		op, body := readRaw(t, r)
		if op != 0x88 || binary.BigEndian.Uint16(body) != code {
			t.Fatalf("got op 0x%02x %q, want error %d", op, body, code)
		}
		if closes {
			if _, err := r.ReadByte(); err == nil {
				t.Fatal("connection still open")
			}
		}
	}
	dial := func() (net.Conn, *bufio.Reader) {
		nc, err := net.Dial("tcp", w.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
		return nc, bufio.NewReader(nc)
	}
	login := func(nc net.Conn, r *bufio.Reader, name string) {
		nc.Write(rawFrame(0x01, []byte{1}, rawStr(name), rawStr("pw")))
		if op, _ := readRaw(t, r); op != 0x81 {
			t.Fatalf("login: op 0x%02x", op)
		}
	}

	t.Run("truncated frame", func(t *testing.T) {
		nc, _ := dial()
		nc.Write([]byte{0, 0, 0, 100, 0x03, 'x', 'y'})
		nc.Close()
		roundTrip("after truncated")
	})
	t.Run("oversize frame", func(t *testing.T) {
		nc, r := dial()
		nc.Write([]byte{0, 0xff, 0, 0, 0x03})
		expectError(r, 2, true)
		roundTrip("after oversize")
	})
	t.Run("unknown opcode", func(t *testing.T) {
		nc, r := dial()
		nc.Write(rawFrame(0x7f, []byte("??")))
		expectError(r, 3, false)
		nc.Write(rawFrame(0x05, binary.BigEndian.AppendUint64(nil, 7))) // still usable
		if op, _ := readRaw(t, r); op != 0x89 {
			t.Fatalf("ping after unknown opcode: op 0x%02x", op)
		}
		roundTrip("after unknown opcode")
	})
	t.Run("zero length", func(t *testing.T) {
		nc, r := dial()
		nc.Write([]byte{0, 0, 0, 0})
		expectError(r, 1, false)
		nc.Write(rawFrame(0x05, binary.BigEndian.AppendUint64(nil, 7))) // still in step
		if op, _ := readRaw(t, r); op != 0x89 {
			t.Fatalf("ping after a zero length: op 0x%02x", op)
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		nc, r := dial()
		nc.Write(rawFrame(0x01, []byte{1}, []byte{0, 50, 'a'})) // string longer than the frame
		expectError(r, 1, false)
		roundTrip("after malformed")
	})
	t.Run("garbage", func(t *testing.T) {
		nc, r := dial()
		nc.Write([]byte(strings.Repeat("GET / HTTP/1.1\r\n", 8)))
		expectError(r, 2, true) // "GET " is a 1.2 GB length
		roundTrip("after garbage")
	})
	t.Run("session frame before login", func(t *testing.T) {
		nc, r := dial()
		nc.Write(rawFrame(0x03, []byte("hi")))
		expectError(r, 4, false)
	})
	t.Run("login timeout", func(t *testing.T) {
		_, r := dial()
		expectError(r, 5, true)
		roundTrip("after login timeout")
	})
	t.Run("rate limit", func(t *testing.T) {
		nc, r := dial()
		login(nc, r, "spammer")
		for range 20 {
			nc.Write(rawFrame(0x03, []byte("spam")))
		}
		limited := false
		for !limited {
			op, body := readRaw(t, r)
			limited = op == 0x88 && binary.BigEndian.Uint16(body) == 6
		}
		roundTrip("after rate limit")
	})
	t.Run("client that never reads", func(t *testing.T) {
		nc, r := dial()
		login(nc, r, "sleeper")
		var session string
		w.edge.Sessions() // the edge holds it
		_ = session
		// Flood the session with large messages; the client reads nothing.
		subj := ""
		natstest.Eventually(t, 10*time.Second, func() bool {
			subj = sessionSubjectOf(t, w, "sleeper")
			return subj != ""
		}, "sleeper's session subject")
		big := make([]byte, 32<<10)
		for range 400 {
			if _, err := w.env.JS.Publish(ctx, subj, big); err != nil {
				t.Fatal(err)
			}
		}
		// The edge gives up on it: the error frame is somewhere in the
		// backlog, and the connection is closed.
		_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.Copy(io.Discard, r); err != nil {
			t.Fatalf("connection not closed by the edge: %v", err)
		}
		roundTrip("after slow client")
	})
	if w.edge.Sessions() == 0 {
		t.Fatal("the edge lost its sessions")
	}
}

// sessionSubjectOf finds a player's session through the login event.
func sessionSubjectOf(t *testing.T, w *world, player string) string {
	t.Helper()
	found := ""
	for _, m := range storedEvents(t, w.env) {
		if m.Header.Get(bus.HeaderType) == bus.EventLogin && string(m.Data) == player {
			found, _ = w.env.World.Session(m.Header.Get(bus.HeaderSession))
		}
	}
	return found
}
