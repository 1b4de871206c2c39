package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/internal/tlstest"
	"github.com/starbus/starbus/kv"
)

// TestWebSocket: PROTOCOL.md over WebSocket, by hand and with the Go
// client: login, a message round trip through a handler, logout; a dropped
// connection resumed over WebSocket, nothing lost or twice.
func TestWebSocket(t *testing.T) {
	w := startWorld(t, nil)
	url := serveWebSocket(t, w.edge, edge.WebSocketOptions{}, nil)

	t.Run("raw", func(t *testing.T) {
		c := upgradeRaw(t, url)
		c.sendFrame(0x01, []byte{1}, rawStr("ann"), rawStr("secret"))
		op, body, _ := c.next()
		if op != 0x81 || body[0] != 1 {
			t.Fatalf("login answer: op 0x%02x body %q", op, body)
		}
		session, _ := rawStrAt(body[1:])
		expect := func(want string) {
			t.Helper()
			if op, body, _ := c.next(); op != 0x83 || string(body[8:]) != want {
				t.Fatalf("got op 0x%02x %q, want message %q", op, body, want)
			}
		}
		expect("welcome ann")
		c.sendFrame(0x03, []byte("hello"))
		expect("echo: hello")
		c.ping(42)
		c.sendFrame(0x04)
		if op, _, _ := c.next(); op != 0x87 {
			t.Fatalf("logout answer: op 0x%02x", op)
		}
		c.expectClose(1000)
		natstest.Eventually(t, 10*time.Second, func() bool {
			return w.store.View(t.Context(), func(tx *kv.Tx) error {
				var seq uint64
				return tx.Get(t.Context(), "left."+session, &seq)
			}) == nil
		}, "disconnect handled")
	})

	t.Run("client", func(t *testing.T) {
		ctx, c := dialWebSocketClient(t, url, "bob")
		next := func() string { return string(nextMessage(ctx, t, c).Payload) }
		if m := next(); m != "welcome bob" {
			t.Fatalf("first message %q", m)
		}
		for i := range 3 {
			_ = c.Send(fmt.Appendf(nil, "a%d", i))
			if m := next(); m != fmt.Sprintf("echo: a%d", i) {
				t.Fatalf("echo %d: %q", i, m)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		const away = 5
		w.sendAway(ctx, t, c.Session(), away)
		if err := c.Reconnect(ctx); err != nil {
			t.Fatal(err)
		}
		_ = c.Send([]byte("back"))
		for i := range away {
			if m := next(); m != fmt.Sprintf("away %d", i) {
				t.Fatalf("missed message %d: %q", i, m)
			}
		}
		if m := next(); m != "echo: back" {
			t.Fatalf("after the missed messages: %q", m)
		}
		if err := c.Logout(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWebSocketChannel: a WebSocket client and a TCP client in the same
// channel hear each other.
func TestWebSocketChannel(t *testing.T) {
	w := chatWorld(t, nil)
	url := serveWebSocket(t, w.edge, edge.WebSocketOptions{}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tcp := joinRoom(ctx, t, w.addr, "tcp")
	ws, err := client.DialWebSocket(ctx, url, "ws", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for joined := 0; joined < 2; {
		if m := nextMessage(ctx, t, ws); m.Kind == client.KindJoined {
			joined++
		}
	}
	hear := func(c *client.Client, want string) {
		t.Helper()
		for {
			m := nextMessage(ctx, t, c)
			if m.Channel == "room" && m.Kind == client.KindMessage {
				if string(m.Payload) != want {
					t.Fatalf("heard %q, want %q", m.Payload, want)
				}
				return
			}
		}
	}
	if err := ws.SendChannel("room", []byte("from ws")); err != nil {
		t.Fatal(err)
	}
	hear(tcp, "from ws")
	hear(ws, "from ws")
	if err := tcp.SendChannel("room", []byte("from tcp")); err != nil {
		t.Fatal(err)
	}
	hear(ws, "from tcp")
	hear(tcp, "from tcp")
}

// TestWebSocketBadInput: what PROTOCOL.md says of bad messages over
// WebSocket in particular (TestTransportContract has what holds on both
// transports); a connection whose message was malformed goes on.
func TestWebSocketBadInput(t *testing.T) {
	b := startBareEdge(t, func(s *edge.Server) { s.MaxFrame = 1 << 10 })
	url := serveWebSocket(t, b.edge, edge.WebSocketOptions{}, nil)
	nonce := binary.BigEndian.AppendUint64(nil, 7)
	ping := rawFrame(0x05, nonce)[4:] // a PING message: opcode and body
	for _, tc := range []struct {
		name string
		run  func(c *rawWS)
	}{
		{"fragments are reassembled", func(c *rawWS) {
			c.send(false, edge.WSBinary, ping[:1])
			c.send(false, edge.WSContinuation, ping[1:4])
			c.send(true, edge.WSContinuation, ping[4:])
			if op, _, _ := c.next(); op != 0x89 {
				t.Fatalf("got op 0x%02x, want pong", op)
			}
		}},
		{"text message", func(c *rawWS) {
			c.send(true, edge.WSText, []byte(`{"op":"login"}`))
			c.expectError(1, false)
			c.ping(1)
		}},
		{"empty message", func(c *rawWS) {
			c.send(true, edge.WSBinary, nil)
			c.expectError(1, false)
			c.ping(2)
		}},
		{"two frames in a message", func(c *rawWS) {
			c.send(true, edge.WSBinary, append(append([]byte{}, ping...), ping...))
			c.expectError(1, false)
			c.ping(3)
		}},
		{"truncated frame", func(c *rawWS) {
			c.send(true, edge.WSBinary, ping[:4])
			c.expectError(1, false)
			c.ping(4)
		}},
		{"length prefix", func(c *rawWS) {
			c.send(true, edge.WSBinary, rawFrame(0x05, nonce)) // opcode 0x00
			c.expectError(3, false)
			c.ping(5)
		}},
		{"oversize in fragments", func(c *rawWS) {
			c.send(false, edge.WSBinary, make([]byte, 600))
			c.send(true, edge.WSContinuation, make([]byte, 600))
			c.expectError(2, true)
		}},
		{"oversize text", func(c *rawWS) {
			c.send(true, edge.WSText, bytes.Repeat([]byte("x"), 5000))
			c.expectError(2, true)
		}},
		{"unmasked frame", func(c *rawWS) {
			c.nc.Write([]byte{0x82, 0x01, 0x04}) // the library refuses it
			c.expectClose(1002)
		}},
		{"logged in", func(c *rawWS) {
			c.sendFrame(0x01, []byte{1}, rawStr("carl"), rawStr("pw"))
			if op, _, _ := c.next(); op != 0x81 {
				t.Fatalf("login: op 0x%02x", op)
			}
			c.send(true, edge.WSText, []byte("hi"))
			c.expectError(1, false)
			c.ping(8)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(upgradeRaw(t, url))
		})
	}
	// The edge still serves.
	_, c := dialWebSocketClient(t, url, "after")
	if c.Session() == "" {
		t.Fatal("no session")
	}
}

// TestWebSocketTruncatedMessage: a message cut short by the end of its
// connection, between two of its fragments, is not taken for a whole one.
func TestWebSocketTruncatedMessage(t *testing.T) {
	b := startBareEdge(t, nil)
	url := serveWebSocket(t, b.edge, edge.WebSocketOptions{}, nil)
	c := upgradeRaw(t, url)
	c.sendFrame(0x01, []byte{1}, rawStr("dora"), rawStr("pw"))
	if op, _, _ := c.next(); op != 0x81 {
		t.Fatalf("login: op 0x%02x", op)
	}
	c.send(false, edge.WSBinary, []byte{0x03, 'h', 'a', 'l', 'f'})
	c.nc.(*net.TCPConn).SetLinger(0)
	c.nc.Close()
	natstest.Eventually(t, 10*time.Second, func() bool { return b.edge.Conns() == 0 }, "connection ended")
	for _, m := range b.events(t) {
		if m.Header.Get(bus.HeaderType) == bus.EventMessage {
			t.Fatalf("event %q from a truncated message", m.Data)
		}
	}
}

// TestWebSocketLoginTimeout: a WebSocket that does not log in in time is
// told so and closed.
func TestWebSocketLoginTimeout(t *testing.T) {
	b := startBareEdge(t, func(s *edge.Server) { s.LoginTimeout = 300 * time.Millisecond })
	url := serveWebSocket(t, b.edge, edge.WebSocketOptions{}, nil)
	c := upgradeRaw(t, url)
	c.expectError(5, true)
}

// TestWebSocketOrigin: browser pages of other origins are refused before
// the upgrade, unless allowed.
func TestWebSocketOrigin(t *testing.T) {
	b := startBareEdge(t, nil)
	url := serveWebSocket(t, b.edge, edge.WebSocketOptions{OriginPatterns: []string{"*.example.com", "[bad"}}, nil)
	host := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/ws")
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols}, // not a browser
		{"http://" + host, http.StatusSwitchingProtocols},
		{"https://game.example.com", http.StatusSwitchingProtocols},
		{"https://example.org", http.StatusForbidden},
		{"https://game.example.com.evil.org", http.StatusForbidden},
		{"http://localhost:1", http.StatusForbidden},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			var header []string
			if tc.origin != "" {
				header = append(header, "Origin: "+tc.origin)
			}
			if _, resp := dialRawWS(t, url, header...); resp.StatusCode != tc.want {
				t.Fatalf("%s, want %d", resp.Status, tc.want)
			}
		})
	}
	d := &client.Dialer{Header: http.Header{"Origin": {"https://evil.example.org"}}}
	if _, err := d.DialWebSocket(t.Context(), url, "eve", "pw"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("dial from another origin: %v", err)
	}
}

// TestWebSocketShutdown: Shutdown tells WebSocket clients, logged in or
// not, that the edge is going away, closes their connections, and leaves
// no goroutine behind.
func TestWebSocketShutdown(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	srv := &edge.Server{JS: env.JS, World: env.World, Logger: testLogger(t), Auth: edge.AuthFunc(acceptAll)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.WebSocketHandler(edge.WebSocketOptions{}), ReadHeaderTimeout: 10 * time.Second}
	hserved := make(chan error, 1)
	go func() { hserved <- hs.Serve(hl) }()
	url := "ws://" + hl.Addr().String() + "/ws"
	// The first upgrade starts the edge (its consumers live on in the
	// NATS server after it): the count starts after it.
	upgradeRaw(t, url).nc.Close()
	natstest.Eventually(t, 10*time.Second, func() bool { return srv.Conns() == 0 }, "warm-up connection closed")
	before := runtime.NumGoroutine()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var clients []*client.Client
	for i := range 5 {
		c, err := client.DialWebSocket(ctx, url, fmt.Sprintf("p%d", i), "pw")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	raw := upgradeRaw(t, url) // not logged in
	tcp, err := client.Dial(ctx, l.Addr().String(), "tcp", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	// The raw upgrade's answer may reach it before the edge has counted
	// its connection.
	natstest.Eventually(t, 10*time.Second, func() bool { return srv.Conns() == 7 }, "7 connections")

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	raw.expectError(15, true)
	for _, c := range append(clients, tcp) {
		select {
		case e := <-c.Errors():
			if e.Code != wire.CodeShuttingDown {
				t.Fatalf("error %v, want shutting down", e)
			}
		case <-ctx.Done():
			t.Fatal("no shutting-down error")
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("connection not closed")
		}
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, edge.ErrServerClosed) {
		t.Fatalf("serve: %v", err)
	}
	if srv.Conns() != 0 {
		t.Fatalf("%d connections after Shutdown", srv.Conns())
	}
	// A request after Shutdown is refused before the upgrade.
	if _, resp := dialRawWS(t, url); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("upgrade after shutdown: %s", resp.Status)
	}
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-hserved; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("http serve: %v", err)
	}
	raw.nc.Close()
	for _, c := range clients {
		c.Close()
	}
	tcp.Close()
	natstest.Eventually(t, 10*time.Second, func() bool { return runtime.NumGoroutine() <= before },
		"goroutines back to %d (now %d)\n%s", before, runtime.NumGoroutine(), goroutineDump())
}

// goroutineDump returns every goroutine's stack, for a failure's message.
func goroutineDump() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// TestEdgeTLS: a client logs in over TLS on TCP and over wss, with a
// certificate made for the test, and messages go both ways.
func TestEdgeTLS(t *testing.T) {
	cert := tlstest.New(t)
	serverTLS, clientTLS := cert.Server, cert.Client
	env := natstest.Start(t, natstest.Options{})
	srv := &edge.Server{JS: env.JS, World: env.World, Logger: testLogger(t), Auth: edge.AuthFunc(acceptAll)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bareEdge{env: env, edge: srv, addr: serveOn(t, srv, tls.NewListener(l, serverTLS))}
	url := serveWebSocket(t, srv, edge.WebSocketOptions{}, serverTLS)
	if !strings.HasPrefix(url, "wss://") {
		t.Fatalf("url %s", url)
	}
	d := &client.Dialer{TLSConfig: clientTLS}
	for _, tc := range []struct {
		name string
		dial func(ctx context.Context) (*client.Client, error)
	}{
		{"tcp", func(ctx context.Context) (*client.Client, error) { return d.Dial(ctx, b.addr, "tls-tcp", "pw") }},
		{"wss", func(ctx context.Context) (*client.Client, error) { return d.DialWebSocket(ctx, url, "tls-ws", "pw") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c, err := tc.dial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Send([]byte("over " + tc.name)); err != nil {
				t.Fatal(err)
			}
			natstest.Eventually(t, 10*time.Second, func() bool {
				for _, m := range b.events(t) {
					if string(m.Data) == "over "+tc.name {
						return true
					}
				}
				return false
			}, "the event stored")
			b.toSession(t, c.Session(), []byte("back over "+tc.name))
			if m := nextMessage(ctx, t, c); string(m.Payload) != "back over "+tc.name {
				t.Fatalf("got %q", m.Payload)
			}
			// Without the certificate's root, the client refuses the edge.
			if _, err := (&client.Dialer{TLSConfig: &tls.Config{}}).Dial(ctx, b.addr, "x", "pw"); err == nil {
				t.Fatal("an unknown certificate was accepted")
			}
		})
	}
}

// TestWebSocketBadConnections: 10,000 bad connections to a WebSocket
// listener (malformed upgrade requests, garbage, oversize messages, text
// messages, connections cut short) leave no connection, goroutine or
// memory behind.
func TestWebSocketBadConnections(t *testing.T) {
	const n = 10_000
	b := startBareEdge(t, func(s *edge.Server) {
		s.MaxFrame = 256
		s.Logger = nil // 10,000 lines of the test's log would be measured too
	})
	url := serveWebSocket(t, b.edge, edge.WebSocketOptions{}, nil)
	host := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/ws")
	upgrade := "GET /ws HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	kinds := []struct {
		name string
		send []byte
		// upgraded: the request is a good one, and the edge answers 101.
		upgraded bool
		// closed: the edge closes the connection (after a close frame, on
		// a WebSocket), and the client reads until then; otherwise the
		// client cuts it.
		closed bool
	}{
		{"no upgrade headers", []byte("GET /ws HTTP/1.1\r\nHost: " + host + "\r\n\r\n"), false, false},
		{"bad key", []byte(strings.Replace(upgrade, "dGhlIHNhbXBsZSBub25jZQ==", "short", 1)), false, false},
		{"not http", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"), false, true},
		{"garbage after the upgrade", append([]byte(upgrade), "\x00\xff\x13\x37 not a frame at all"...), true, true},
		{"oversize message", append([]byte(upgrade), edge.ClientWSFrame(true, edge.WSBinary, make([]byte, 300))...), true, true},
		{"text message", append([]byte(upgrade), edge.ClientWSFrame(true, edge.WSText, []byte("hello"))...), true, false},
		{"cut inside a frame", append([]byte(upgrade), edge.ClientWSFrame(true, edge.WSBinary, []byte{0x05, 1, 2, 3, 4, 5, 6, 7, 8})[:9]...), true, false},
		{"cut after the upgrade", []byte(upgrade), true, false},
	}
	bad := func(kind int) error {
		k := kinds[kind]
		nc, err := net.Dial("tcp", host)
		if err != nil {
			return err
		}
		defer nc.Close()
		_ = nc.(*net.TCPConn).SetLinger(0) // cut: no TIME_WAIT left on the machine
		_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := nc.Write(k.send); err != nil {
			return err
		}
		r := bufio.NewReader(nc)
		resp, err := http.ReadResponse(r, nil)
		switch {
		case err != nil && k.upgraded:
			return fmt.Errorf("%s: %v", k.name, err)
		case err == nil && k.upgraded != (resp.StatusCode == http.StatusSwitchingProtocols):
			return fmt.Errorf("%s: %s", k.name, resp.Status)
		}
		switch {
		case k.closed && k.upgraded:
			// The edge waits a while for the client's close frame; this
			// client cuts the connection instead.
			for {
				_, op, _, err := edge.ReadServerWSFrame(r)
				if err != nil {
					return fmt.Errorf("%s: no close frame: %v", k.name, err)
				}
				if op == edge.WSClose {
					return nil
				}
			}
		case k.closed:
			if _, err := io.Copy(io.Discard, r); err != nil {
				return fmt.Errorf("%s: not closed by the edge: %v", k.name, err)
			}
		}
		return nil
	}
	// One of each first, so that what the edge starts once is running
	// before the count.
	for i := range kinds {
		if err := bad(i); err != nil {
			t.Fatal(err)
		}
	}
	settle := func() {
		natstest.Eventually(t, 30*time.Second, func() bool { return b.edge.Conns() == 0 }, "%d connections left", b.edge.Conns())
	}
	settle()
	goroutines, heap := runtime.NumGoroutine(), heapInUse()
	start := time.Now()
	var next atomic.Int64
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if err := bad(int(i) % len(kinds)); err != nil {
					select {
					case errs <- err:
					default:
					}
					next.Store(n)
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("%d bad connections in %v", n, time.Since(start).Round(time.Millisecond))
	settle()
	natstest.Eventually(t, 30*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines },
		"goroutines back to %d (now %d)", goroutines, runtime.NumGoroutine())
	// A connection left behind would hold its buffers and the library's
	// state, some kilobytes: 10,000 of them, tens of megabytes.
	const slack = 8 << 20
	natstest.Eventually(t, 30*time.Second, func() bool { return heapInUse() <= heap+slack },
		"heap grew from %d to %d bytes", heap, heapInUse())
	// The edge still serves.
	_, c := dialWebSocketClient(t, url, "after")
	if c.Session() == "" {
		t.Fatal("no session")
	}
}

// heapInUse returns the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
