package edge

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/starbus/starbus/edge/wire"
)

// WebSocket opcodes (RFC 6455, 5.2), for the raw frames of the tests.
const (
	wsContinuation byte = 0x0
	wsText         byte = 0x1
	wsBinary       byte = 0x2
	wsClose        byte = 0x8
	wsPing         byte = 0x9
	wsPong         byte = 0xa
)

// clientFrame encodes one WebSocket frame as a client sends it (RFC 6455,
// 5.2): masked, with the fin bit and opcode given.
func clientFrame(fin bool, opcode byte, payload []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = binary.BigEndian.AppendUint16(append(out, 0x80|126), uint16(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, 0x80|127), uint64(n))
	}
	key := [4]byte{0x5a, 0x17, 0xc3, 0x09}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// readServerFrame reads one WebSocket frame as a server sends it
// (unmasked).
func readServerFrame(r *bufio.Reader) (fin bool, opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return false, 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return false, 0, nil, errors.New("masked frame from the server")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 16<<20 {
		return false, 0, nil, fmt.Errorf("a frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return false, 0, nil, err
	}
	return h[0]&0x80 != 0, h[0] & 0x0f, payload, nil
}

// pipeResponse is a ResponseWriter whose connection is one end of a pipe.
// The handshake's answer is not written: the tests' clients send frames
// without reading it.
type pipeResponse struct {
	header http.Header
	nc     net.Conn
}

func (w *pipeResponse) Header() http.Header         { return w.header }
func (w *pipeResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *pipeResponse) WriteHeader(int)             {}
func (w *pipeResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.nc, bufio.NewReadWriter(bufio.NewReader(w.nc), bufio.NewWriter(w.nc)), nil
}

// upgradeRequest is a client's WebSocket handshake request.
func upgradeRequest() *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	return req
}

// pipeWebSocket upgrades server, one end of a pipe, to a WebSocket
// transport of s, as WebSocketHandler does. The transport is closed when
// the test ends.
func pipeWebSocket(t testing.TB, s *Server, server net.Conn) *wsTransport {
	t.Helper()
	tr, err := s.acceptWebSocket(&pipeResponse{header: http.Header{}, nc: server}, upgradeRequest(), &websocket.AcceptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.ws.CloseNow() })
	return tr
}

// pipeServer is a server for transports over pipes, started by nothing.
func pipeServer(maxFrame int) *Server {
	s := &Server{MaxFrame: maxFrame}
	s.init()
	return s
}

// feed writes raw to client from a goroutine, then, if cut, closes it,
// and drains what the server writes back; the goroutines end with the
// test.
func feed(t testing.TB, client net.Conn, raw []byte, cut bool) {
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(io.Discard, client) })
	wg.Go(func() {
		_, _ = client.Write(raw)
		if cut {
			_ = client.Close()
		}
	})
	t.Cleanup(func() {
		_ = client.Close()
		wg.Wait()
	})
}

// TestMessageFrame: the frame a whole message holds, or why it holds none.
func TestMessageFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
		want wire.Frame
		err  error
	}{
		{"ping", websocket.MessageBinary, []byte{wire.OpPing, 0, 0, 0, 0, 0, 0, 0, 7}, wire.Frame{Op: wire.OpPing, Body: []byte{0, 0, 0, 0, 0, 0, 0, 7}}, nil},
		{"opcode alone", websocket.MessageBinary, []byte{wire.OpLogout}, wire.Frame{Op: wire.OpLogout, Body: []byte{}}, nil},
		{"largest", websocket.MessageBinary, bytes.Repeat([]byte{wire.OpSend}, 16), wire.Frame{Op: wire.OpSend, Body: bytes.Repeat([]byte{wire.OpSend}, 15)}, nil},
		{"too large", websocket.MessageBinary, make([]byte, 17), wire.Frame{}, wire.ErrFrameTooLarge},
		{"text", websocket.MessageText, []byte{wire.OpLogout}, wire.Frame{}, wire.ErrMalformed},
		{"text too large", websocket.MessageText, make([]byte, 17), wire.Frame{}, wire.ErrFrameTooLarge},
		{"empty", websocket.MessageBinary, nil, wire.Frame{}, wire.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := messageFrame(tc.typ, tc.msg, 16)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			var bad *badMessage
			if errors.Is(tc.err, wire.ErrMalformed) && !errors.As(err, &bad) {
				t.Fatalf("%v is not a bad message: the connection would close", err)
			}
			if f.Op != tc.want.Op || !bytes.Equal(f.Body, tc.want.Body) {
				t.Fatalf("frame %x %x, want %x %x", f.Op, f.Body, tc.want.Op, tc.want.Body)
			}
		})
	}
}

// TestWebSocketBurst: a burst of frames leaves as one binary message each,
// in order, with one write.
func TestWebSocketBurst(t *testing.T) {
	server, client := net.Pipe()
	cc := &countingConn{Conn: server}
	tr := pipeWebSocket(t, pipeServer(1024), cc)
	defer client.Close()
	var burst []byte
	for i := 1; i <= 100; i++ {
		burst = append(burst, wireMsg(uint64(i))...)
	}
	written := make(chan error, 1)
	go func() { written <- tr.write(burst) }()
	r := bufio.NewReader(client)
	for i := 1; i <= 100; i++ {
		fin, op, p, err := readServerFrame(r)
		if err != nil || !fin || op != wsBinary {
			t.Fatalf("message %d: fin %v op %x, %v", i, fin, op, err)
		}
		v, err := wire.Decode(wire.Frame{Op: p[0], Body: p[1:]})
		if m, ok := v.(wire.Message); err != nil || !ok || m.Seq != uint64(i) {
			t.Fatalf("message %d: %+v, %v", i, v, err)
		}
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load(); n != 1 {
		t.Fatalf("%d writes for a burst, want 1", n)
	}
}

// TestWebSocketReadFrame: what the transport makes of messages, including
// fragmented ones, which the library reassembles.
func TestWebSocketReadFrame(t *testing.T) {
	ping := []byte{wire.OpPing, 0, 0, 0, 0, 0, 0, 0, 9}
	for _, tc := range []struct {
		name string
		wire []byte
		want []byte // the message read, opcode first
		err  error
	}{
		{"whole", clientFrame(true, wsBinary, ping), ping, nil},
		{"fragmented", append(append(clientFrame(false, wsBinary, ping[:2]), clientFrame(false, wsContinuation, ping[2:5])...), clientFrame(true, wsContinuation, ping[5:])...), ping, nil},
		{"ping between fragments", append(append(clientFrame(false, wsBinary, ping[:2]), clientFrame(true, wsPing, []byte("x"))...), clientFrame(true, wsContinuation, ping[2:])...), ping, nil},
		{"text", clientFrame(true, wsText, []byte("hello")), nil, wire.ErrMalformed},
		{"too large", clientFrame(true, wsBinary, make([]byte, 65)), nil, wire.ErrFrameTooLarge},
		{"too large in fragments", append(clientFrame(false, wsBinary, make([]byte, 40)), clientFrame(true, wsContinuation, make([]byte, 40))...), nil, wire.ErrFrameTooLarge},
		{"cut between fragments", clientFrame(false, wsBinary, ping[:3]), nil, io.ErrUnexpectedEOF},
		{"cut inside a frame", clientFrame(true, wsBinary, ping)[:8], nil, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := net.Pipe()
			tr := pipeWebSocket(t, pipeServer(64), server)
			feed(t, client, tc.wire, errors.Is(tc.err, io.ErrUnexpectedEOF))
			f, err := tr.readFrame(64)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.want != nil && (f.Op != tc.want[0] || !bytes.Equal(f.Body, tc.want[1:])) {
				t.Fatalf("frame %x %x, want %x", f.Op, f.Body, tc.want)
			}
		})
	}
}

// FuzzWebSocketMessage feeds arbitrary messages, text or binary, whole or
// in two fragments, through the WebSocket transport's reading and the
// frame decoder: they must never panic, and a message must come out as the
// frame it holds or the error the protocol gives it.
func FuzzWebSocketMessage(f *testing.F) {
	f.Add(false, wire.AppendFrame(nil, wire.Encode(wire.Ping{Nonce: 1}))[wire.HeaderLen:], uint16(0))
	f.Add(false, wire.AppendFrame(nil, wire.Encode(wire.Login{Version: 1, Name: "ann", Password: "pw"}))[wire.HeaderLen:], uint16(3))
	f.Add(false, []byte{wire.OpSend, 'h', 'i'}, uint16(1))
	f.Add(true, []byte("hello"), uint16(0))
	f.Add(false, []byte{}, uint16(0))
	f.Add(false, bytes.Repeat([]byte{wire.OpSend}, 300), uint16(100))
	const max = 256
	f.Fuzz(func(t *testing.T, text bool, msg []byte, split uint16) {
		server, client := net.Pipe()
		tr := pipeWebSocket(t, pipeServer(max), server)
		op := wsBinary
		if text {
			op = wsText
		}
		var raw []byte
		if k := int(split); k > 0 && k < len(msg) {
			raw = append(clientFrame(false, op, msg[:k]), clientFrame(true, wsContinuation, msg[k:])...)
		} else {
			raw = clientFrame(true, op, msg)
		}
		feed(t, client, raw, true)
		fr, err := tr.readFrame(max)
		var bad *badMessage
		switch {
		case len(msg) > max:
			if !errors.Is(err, wire.ErrFrameTooLarge) {
				t.Fatalf("a message of %d bytes: %v", len(msg), err)
			}
		case text || len(msg) == 0:
			if !errors.As(err, &bad) {
				t.Fatalf("text %v, %d bytes: %v, want a bad message", text, len(msg), err)
			}
		case err != nil:
			t.Fatalf("a binary message of %d bytes: %v", len(msg), err)
		case fr.Op != msg[0] || !bytes.Equal(fr.Body, msg[1:]):
			t.Fatalf("frame %x %x from %x", fr.Op, fr.Body, msg)
		default:
			_, _ = wire.Decode(fr)
		}
	})
}

// FuzzWebSocketWire feeds arbitrary bytes to the WebSocket transport after
// the handshake, as a client could: reading frames from them must never
// panic, and ends.
func FuzzWebSocketWire(f *testing.F) {
	f.Add(clientFrame(true, wsBinary, []byte{wire.OpPing, 0, 0, 0, 0, 0, 0, 0, 1}))
	f.Add(append(clientFrame(false, wsText, []byte("he")), clientFrame(true, wsContinuation, []byte("llo"))...))
	f.Add(clientFrame(true, wsClose, []byte{0x03, 0xe8}))
	f.Add(clientFrame(true, wsPing, []byte("p")))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := net.Pipe()
		tr := pipeWebSocket(t, pipeServer(256), server)
		feed(t, client, data, true)
		for range len(data) + 1 { // every message takes at least two bytes
			fr, err := tr.readFrame(256)
			var bad *badMessage
			if errors.As(err, &bad) {
				continue
			}
			if err != nil {
				return
			}
			_, _ = wire.Decode(fr)
		}
		t.Fatalf("%d bytes read as more messages than they can hold", len(data))
	})
}
