package link

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/starbus/starbus/edge/internal/linktest"
	"github.com/starbus/starbus/edge/wire"
)

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
// transport reading frames of at most maxFrame bytes, as the edge's
// WebSocketHandler does. The transport is closed when the test ends.
func pipeWebSocket(t testing.TB, maxFrame int, server net.Conn) *WebSocket {
	t.Helper()
	cfg := WebSocketConfig{MaxFrame: maxFrame, CloseWait: time.Second, Buffers: &buffers{}}
	tr, err := AcceptWebSocket(&pipeResponse{header: http.Header{}, nc: server}, upgradeRequest(), &websocket.AcceptOptions{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.ws.CloseNow() })
	return tr
}

// buffers lends fresh buffers.
type buffers struct{}

func (*buffers) Get() *[]byte { b := make([]byte, 0, 1024); return &b }
func (*buffers) Put(*[]byte)  {}

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
			var bad *BadMessage
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
	cc := &linktest.CountingConn{Conn: server}
	tr := pipeWebSocket(t, 1024, cc)
	defer client.Close()
	var burst []byte
	for i := 1; i <= 100; i++ {
		burst = append(burst, wireMsg(uint64(i))...)
	}
	written := make(chan error, 1)
	go func() { written <- tr.Write(burst) }()
	r := bufio.NewReader(client)
	for i := 1; i <= 100; i++ {
		fin, op, p, err := linktest.ReadServerFrame(r)
		if err != nil || !fin || op != linktest.WSBinary {
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
	if n := cc.Writes.Load(); n != 1 {
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
		{"whole", linktest.ClientFrame(true, linktest.WSBinary, ping), ping, nil},
		{"fragmented", append(append(linktest.ClientFrame(false, linktest.WSBinary, ping[:2]), linktest.ClientFrame(false, linktest.WSContinuation, ping[2:5])...), linktest.ClientFrame(true, linktest.WSContinuation, ping[5:])...), ping, nil},
		{"ping between fragments", append(append(linktest.ClientFrame(false, linktest.WSBinary, ping[:2]), linktest.ClientFrame(true, linktest.WSPing, []byte("x"))...), linktest.ClientFrame(true, linktest.WSContinuation, ping[2:])...), ping, nil},
		{"text", linktest.ClientFrame(true, linktest.WSText, []byte("hello")), nil, wire.ErrMalformed},
		{"too large", linktest.ClientFrame(true, linktest.WSBinary, make([]byte, 65)), nil, wire.ErrFrameTooLarge},
		{"too large in fragments", append(linktest.ClientFrame(false, linktest.WSBinary, make([]byte, 40)), linktest.ClientFrame(true, linktest.WSContinuation, make([]byte, 40))...), nil, wire.ErrFrameTooLarge},
		{"cut between fragments", linktest.ClientFrame(false, linktest.WSBinary, ping[:3]), nil, io.ErrUnexpectedEOF},
		{"cut inside a frame", linktest.ClientFrame(true, linktest.WSBinary, ping)[:8], nil, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := net.Pipe()
			tr := pipeWebSocket(t, 64, server)
			feed(t, client, tc.wire, errors.Is(tc.err, io.ErrUnexpectedEOF))
			f, err := tr.ReadFrame(64)
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
		tr := pipeWebSocket(t, max, server)
		op := linktest.WSBinary
		if text {
			op = linktest.WSText
		}
		var raw []byte
		if k := int(split); k > 0 && k < len(msg) {
			raw = append(linktest.ClientFrame(false, op, msg[:k]), linktest.ClientFrame(true, linktest.WSContinuation, msg[k:])...)
		} else {
			raw = linktest.ClientFrame(true, op, msg)
		}
		feed(t, client, raw, true)
		fr, err := tr.ReadFrame(max)
		var bad *BadMessage
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
	f.Add(linktest.ClientFrame(true, linktest.WSBinary, []byte{wire.OpPing, 0, 0, 0, 0, 0, 0, 0, 1}))
	f.Add(append(linktest.ClientFrame(false, linktest.WSText, []byte("he")), linktest.ClientFrame(true, linktest.WSContinuation, []byte("llo"))...))
	f.Add(linktest.ClientFrame(true, linktest.WSClose, []byte{0x03, 0xe8}))
	f.Add(linktest.ClientFrame(true, linktest.WSPing, []byte("p")))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := net.Pipe()
		tr := pipeWebSocket(t, 256, server)
		feed(t, client, data, true)
		for range len(data) + 1 { // every message takes at least two bytes
			fr, err := tr.ReadFrame(256)
			var bad *BadMessage
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

// wireMsg is the encoded MESSAGE numbered seq.
func wireMsg(seq uint64) []byte {
	return wire.AppendFrame(nil, wire.Encode(wire.Message{Seq: seq, Payload: []byte("x")}))
}
