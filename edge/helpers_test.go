package edge_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

func natsMsg(subject string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	return m
}

// testLogger logs through t.Log, so a failing test shows the edge's view.
// Benchmarks log nothing: their log would be held in memory and measured.
func testLogger(t testing.TB) *slog.Logger {
	if _, ok := t.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// bareEdge is an edge on a world with no workers: the tests play the game's
// part, reading events from the stream and publishing to session subjects.
type bareEdge struct {
	env  *natstest.Env
	edge *edge.Server
	addr string
}

// startBareEdge starts an edge that lets anyone in under any name.
func startBareEdge(t testing.TB, configure func(*edge.Server)) *bareEdge {
	t.Helper()
	env := natstest.Start(t, natstest.Options{})
	srv := &edge.Server{
		JS: env.JS, World: env.World, Logger: testLogger(t),
		Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil }),
	}
	if configure != nil {
		configure(srv)
	}
	return &bareEdge{env: env, edge: srv, addr: serve(t, srv)}
}

// serve runs srv on a loopback port until the test's cleanup shuts it
// down, and returns its address.
func serve(t testing.TB, srv *edge.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, srv, l)
}

// serveOn runs srv on l until the test's cleanup shuts it down, and
// returns its address.
func serveOn(t testing.TB, srv *edge.Server, l net.Listener) string {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, edge.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return l.Addr().String()
}

// toSession stores a message for a session, as a committing task would.
func (b *bareEdge) toSession(t testing.TB, session string, payload []byte) uint64 {
	t.Helper()
	subj, err := b.env.World.Session(session)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := b.env.JS.Publish(context.Background(), subj, payload)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// sendAway commits n messages "away 0", "away 1", ... to session, as a
// task would, each in a transaction of its own: what the world says while
// a client is away, for its reconnect to replay.
func (w *world) sendAway(ctx context.Context, t testing.TB, session string, n int) {
	t.Helper()
	subj, err := w.env.World.Session(session)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.store.Update(ctx, func(tx *kv.Tx) error {
			return tx.Publish(natsMsg(subj, fmt.Appendf(nil, "away %d", i)))
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// events returns the events stored so far.
func (b *bareEdge) events(t testing.TB) []*jetstream.RawStreamMsg {
	t.Helper()
	return storedEvents(t, b.env)
}

// storedEvents returns the events stored in env's world (those the workers
// have not purged), read one by one with direct gets: polling with a
// consumer per call would run into the server's limit on consumers.
func storedEvents(t testing.TB, env *natstest.Env) []*jetstream.RawStreamMsg {
	t.Helper()
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := env.Stream.GetMsg(context.Background(), seq, jetstream.WithGetMsgSubject(env.World.EventFilter()))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

// nextMessage waits for c's next message, until ctx ends.
func nextMessage(ctx context.Context, t testing.TB, c *client.Client) client.Message {
	t.Helper()
	select {
	case m := <-c.Messages():
		return m
	case <-ctx.Done():
		t.Fatal("timed out waiting for a message")
	}
	return client.Message{}
}

// dialClient logs name in with the Go client; the returned context bounds
// the test's waits.
func dialClient(t testing.TB, addr, name string) (context.Context, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, addr, name, "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

// serveWebSocket serves srv's WebSocket handler at /ws on a loopback port,
// over TLS if cfg is set, until the test's cleanup shuts the HTTP server
// down (before the edge's: the edge's Shutdown closes the WebSocket
// connections, which the HTTP server no longer holds). It returns the URL.
func serveWebSocket(t testing.TB, srv *edge.Server, opts edge.WebSocketOptions, cfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "ws"
	if cfg != nil {
		l, scheme = tls.NewListener(l, cfg), "wss"
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", srv.WebSocketHandler(opts))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("http shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("http serve: %v", err)
		}
	})
	return scheme + "://" + l.Addr().String() + "/ws"
}

// dialWebSocketClient logs name in over WebSocket with the Go client; the
// returned context bounds the test's waits.
func dialWebSocketClient(t testing.TB, url, name string) (context.Context, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := client.DialWebSocket(ctx, url, name, "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

// rawWS is a WebSocket client written from RFC 6455 and PROTOCOL.md alone,
// for what the Go client never sends.
type rawWS struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

// dialRawWS opens a WebSocket to url (ws://host:port/path) by hand, with
// the extra request header lines given, and returns the handshake's
// answer; on a 101, the connection is ready for frames.
func dialRawWS(t testing.TB, url string, header ...string) (*rawWS, *http.Response) {
	t.Helper()
	hostPath := strings.TrimPrefix(url, "ws://")
	host, path, _ := strings.Cut(hostPath, "/")
	nc, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	req := fmt.Sprintf("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: %s\r\n",
		path, host, wire.WebSocketSubprotocol)
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &rawWS{t: t, nc: nc, r: r}, resp
}

// upgradeRaw opens a WebSocket to url by hand and fails the test unless
// the edge switches protocols.
func upgradeRaw(t testing.TB, url string) *rawWS {
	t.Helper()
	c, resp := dialRawWS(t, url)
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != wire.WebSocketSubprotocol {
		t.Fatalf("handshake: %s, subprotocol %q", resp.Status, resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	return c
}

// send writes one WebSocket frame.
func (c *rawWS) send(fin bool, opcode byte, payload []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(edge.ClientWSFrame(fin, opcode, payload)); err != nil {
		c.t.Fatal(err)
	}
}

// sendFrame sends a protocol frame in one binary message: opcode and body.
func (c *rawWS) sendFrame(op byte, body ...[]byte) {
	c.t.Helper()
	c.send(true, edge.WSBinary, rawFrame(op, body...)[4:])
}

// next returns the next WebSocket frame from the edge: a binary message's
// protocol frame (op, body), or a close frame (op 0, its status code).
func (c *rawWS) next() (op byte, body []byte, closeCode uint16) {
	c.t.Helper()
	fin, wsop, p, err := edge.ReadServerWSFrame(c.r)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	switch {
	case wsop == edge.WSClose && len(p) >= 2:
		return 0, nil, binary.BigEndian.Uint16(p)
	case wsop == edge.WSClose:
		return 0, nil, 1005
	case wsop != edge.WSBinary || !fin || len(p) == 0:
		c.t.Fatalf("got WebSocket frame fin %v op %x %q, want a binary message", fin, wsop, p)
	}
	return p[0], p[1:], 0
}

// expectError reads an ERROR frame with code; if closes, then the close
// frame with 4000 plus code, and the end of the connection.
func (c *rawWS) expectError(code uint16, closes bool) {
	c.t.Helper()
	op, body, cc := c.next()
	if op != 0x88 || binary.BigEndian.Uint16(body) != code {
		c.t.Fatalf("got op 0x%02x %q (close %d), want error %d", op, body, cc, code)
	}
	if closes {
		c.expectClose(4000 + code)
	}
}

// expectClose reads a close frame with code, answers it, and reads the
// end of the connection.
func (c *rawWS) expectClose(code uint16) {
	c.t.Helper()
	if op, body, cc := c.next(); cc != code {
		c.t.Fatalf("got op 0x%02x %q (close %d), want close %d", op, body, cc, code)
	}
	c.send(true, edge.WSClose, binary.BigEndian.AppendUint16(nil, code))
	if _, err := c.r.ReadByte(); err != io.EOF {
		c.t.Fatalf("after the close: %v, want the end", err)
	}
}

// ping sends PING and waits for its PONG: the connection is usable.
func (c *rawWS) ping(nonce uint64) {
	c.t.Helper()
	c.sendFrame(0x05, binary.BigEndian.AppendUint64(nil, nonce))
	if op, body, cc := c.next(); op != 0x89 || binary.BigEndian.Uint64(body) != nonce {
		c.t.Fatalf("got op 0x%02x %q (close %d), want pong %d", op, body, cc, nonce)
	}
}
