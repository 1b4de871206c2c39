package edge_test

import (
	"encoding/binary"
	"io"
	"math"
	"testing"
	"time"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/internal/natstest"
)

// rawWire is a raw client connection over one transport, written from
// PROTOCOL.md alone, for the contract both transports keep.
type rawWire interface {
	// frame sends one frame.
	frame(op byte, body ...[]byte)
	// oversize sends a SEND frame of n bytes, opcode included.
	oversize(n int)
	// next reads the next frame.
	next() (op byte, body []byte)
	// closed reads the end of the connection: after an error frame with
	// code why, or after LOGOUT_OK (why 0).
	closed(why uint16)
	// drain reads everything until the end of the connection, or fails
	// the test.
	drain()
}

// tcpWire is PROTOCOL.md's byte stream.
type tcpWire struct{ *rawConn }

func dialTCPWire(t testing.TB, addr string) rawWire { return &tcpWire{dialRaw(t, addr)} }

func (w *tcpWire) frame(op byte, body ...[]byte) { w.nc.Write(rawFrame(op, body...)) }
func (w *tcpWire) oversize(n int)                { w.nc.Write(rawFrame(0x03, make([]byte, n-1))) }
func (w *tcpWire) next() (byte, []byte)          { return readRaw(w.t, w.r) }

func (w *tcpWire) drain() {
	w.t.Helper()
	if _, err := io.Copy(io.Discard, w.r); err != nil {
		w.t.Fatalf("connection not closed: %v", err)
	}
}

func (w *tcpWire) closed(uint16) {
	w.t.Helper()
	if _, err := w.r.ReadByte(); err != io.EOF {
		w.t.Fatalf("connection not closed: %v", err)
	}
}

// wsWire is PROTOCOL.md over WebSocket.
type wsWire struct{ c *rawWS }

func dialWSWire(t testing.TB, url string) rawWire { return &wsWire{upgradeRaw(t, url)} }

func (w *wsWire) frame(op byte, body ...[]byte) { w.c.sendFrame(op, body...) }
func (w *wsWire) oversize(n int) {
	w.c.send(true, edge.WSBinary, append([]byte{0x03}, make([]byte, n-1)...))
}

func (w *wsWire) next() (byte, []byte) {
	w.c.t.Helper()
	op, body, cc := w.c.next()
	if op == 0 {
		w.c.t.Fatalf("closed with %d, want a frame", cc)
	}
	return op, body
}

// drain reads bytes, not frames: a connection closed on a client that does
// not read may end inside a frame, its close frame unsent.
func (w *wsWire) drain() {
	w.c.t.Helper()
	if _, err := io.Copy(io.Discard, w.c.r); err != nil {
		w.c.t.Fatalf("connection not closed: %v", err)
	}
}

func (w *wsWire) closed(why uint16) {
	w.c.t.Helper()
	if why == 0 {
		w.c.expectClose(1000)
		return
	}
	w.c.expectClose(4000 + why)
}

// until reads frames until one with op, skipping MESSAGEs, and returns its
// body.
func until(t testing.TB, w rawWire, op byte) []byte {
	t.Helper()
	for {
		got, body := w.next()
		switch got {
		case op:
			return body
		case 0x83:
		default:
			t.Fatalf("got op 0x%02x %q, want 0x%02x", got, body, op)
		}
	}
}

// expectCode reads an ERROR frame (skipping MESSAGEs) and checks its code;
// if closes, the connection's end too.
func expectCode(t testing.TB, w rawWire, code uint16, closes bool) {
	t.Helper()
	if body := until(t, w, 0x88); binary.BigEndian.Uint16(body) != code {
		t.Fatalf("error %d %q, want %d", binary.BigEndian.Uint16(body), body[2:], code)
	}
	if closes {
		w.closed(code)
	}
}

// usable checks that the connection still answers: PING, PONG.
func usable(t testing.TB, w rawWire) {
	t.Helper()
	w.frame(0x05, binary.BigEndian.AppendUint64(nil, 99))
	if body := until(t, w, 0x89); binary.BigEndian.Uint64(body) != 99 {
		t.Fatalf("pong %x", body)
	}
}

func login(t testing.TB, w rawWire, name string) (token string) {
	t.Helper()
	w.frame(0x01, []byte{1}, rawStr(name), rawStr("pw"))
	body := until(t, w, 0x81)
	_, rest := rawStrAt(body[1:])
	token, _ = rawStrAt(rest)
	return token
}

// TestTransportContract runs one suite of PROTOCOL.md's behaviours over
// each transport, TCP and WebSocket, on one edge.
func TestTransportContract(t *testing.T) {
	w := startWorld(t, func(s *edge.Server) {
		s.Auth = edge.AuthFunc(acceptAll)
		s.MaxFrame = 1 << 10
		s.LoginTimeout = time.Second
		s.RatePerSecond, s.Burst = 5, 5
		s.OutboundQueue = 16 // pipelined answers go past it
	})
	url := serveWebSocket(t, w.edge, edge.WebSocketOptions{}, nil)
	transports := []struct {
		name string
		dial func(t testing.TB) rawWire
	}{
		{"tcp", func(t testing.TB) rawWire { return dialTCPWire(t, w.addr) }},
		{"websocket", func(t testing.TB) rawWire { return dialWSWire(t, url) }},
	}
	for i, tr := range transports {
		other := transports[1-i]
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, c rawWire)
			}{
				{"login, echo, ping, logout", func(t *testing.T, c rawWire) {
					login(t, c, "ann-"+tr.name)
					if op, body := c.next(); op != 0x83 || string(body[8:]) != "welcome ann-"+tr.name {
						t.Fatalf("got op 0x%02x %q, want the welcome", op, body)
					}
					c.frame(0x03, []byte("hello"))
					if op, body := c.next(); op != 0x83 || string(body[8:]) != "echo: hello" {
						t.Fatalf("got op 0x%02x %q, want the echo", op, body)
					}
					usable(t, c)
					c.frame(0x04)
					until(t, c, 0x87)
					c.closed(0)
				}},
				{"session frame before login", func(t *testing.T, c rawWire) {
					c.frame(0x03, []byte("hi"))
					expectCode(t, c, 4, false)
					usable(t, c)
				}},
				{"unknown opcode", func(t *testing.T, c rawWire) {
					c.frame(0x7f, []byte("??"))
					expectCode(t, c, 3, false)
					usable(t, c)
				}},
				{"malformed body", func(t *testing.T, c rawWire) {
					c.frame(0x01, []byte{1}, []byte{0, 50, 'a'})
					expectCode(t, c, 1, false)
					usable(t, c)
				}},
				{"server-to-client opcode", func(t *testing.T, c rawWire) {
					login(t, c, "srv-"+tr.name)
					c.frame(0x89, make([]byte, 8))
					expectCode(t, c, 16, false)
				}},
				{"largest frame", func(t *testing.T, c rawWire) {
					c.frame(0x7f, make([]byte, 1023))
					expectCode(t, c, 3, false)
				}},
				{"oversize frame", func(t *testing.T, c rawWire) {
					c.oversize(1025)
					expectCode(t, c, 2, true)
				}},
				{"bad version", func(t *testing.T, c rawWire) {
					c.frame(0x01, []byte{9}, rawStr("old"), rawStr("pw"))
					expectCode(t, c, 9, true)
				}},
				{"login timeout", func(t *testing.T, c rawWire) {
					expectCode(t, c, 5, true)
				}},
				{"already logged in", func(t *testing.T, c rawWire) {
					login(t, c, "twice-"+tr.name)
					c.frame(0x01, []byte{1}, rawStr("twice-"+tr.name), rawStr("pw"))
					expectCode(t, c, 12, false)
					usable(t, c)
				}},
				{"rate limit", func(t *testing.T, c rawWire) {
					login(t, c, "spam-"+tr.name)
					for range 20 {
						c.frame(0x03, []byte("spam"))
					}
					expectCode(t, c, 6, false)
				}},
				{"pipelined pings", func(t *testing.T, c rawWire) {
					// A client may write many requests before it reads the
					// answers: they wait for the client, it is not cut off.
					login(t, c, "pinger-"+tr.name)
					for i := range 300 {
						c.frame(0x05, binary.BigEndian.AppendUint64(nil, uint64(i)))
					}
					for i := range 300 {
						if body := until(t, c, 0x89); binary.BigEndian.Uint64(body) != uint64(i) {
							t.Fatalf("pong %d: nonce %x", i, body)
						}
					}
					usable(t, c)
				}},
				{"pipelined sends over the rate", func(t *testing.T, c rawWire) {
					// The answers to SENDs over the rate are the client's
					// own: it is not cut off for them.
					login(t, c, "eager-"+tr.name)
					start := time.Now()
					for range 400 {
						c.frame(0x03, []byte("spam"))
					}
					// A PING after them: its PONG comes after every
					// answer to them (a session's own frames keep the
					// order of what it sent).
					c.frame(0x05, binary.BigEndian.AppendUint64(nil, 7))
					limited := 0
				answers:
					for {
						switch op, body := c.next(); op {
						case 0x88:
							if code := binary.BigEndian.Uint16(body); code != 6 {
								t.Fatalf("error %d %q after %d rate-limited, want rate-limited", code, body[2:], limited)
							}
							limited++
						case 0x89:
							break answers
						case 0x83:
						default:
							t.Fatalf("got op 0x%02x %q", op, body)
						}
					}
					// What went through is the burst and what the rate
					// (5/s) refilled while the edge read them: on a slow
					// machine that takes more than the 200 ms of one token.
					allowed := 5 + 5*int(math.Ceil(time.Since(start).Seconds()))
					if limited < 400-allowed {
						t.Fatalf("%d of 400 SENDs rate-limited, want at least %d", limited, 400-allowed)
					}
					usable(t, c)
				}},
				{"client that never reads", func(t *testing.T, c rawWire) {
					name := "sleeper-" + tr.name
					login(t, c, name)
					subj := ""
					natstest.Eventually(t, 10*time.Second, func() bool {
						subj = sessionSubjectOf(t, w, name)
						return subj != ""
					}, "the session's subject")
					big := make([]byte, 32<<10)
					for range 400 {
						if _, err := w.env.JS.Publish(t.Context(), subj, big); err != nil {
							t.Fatal(err)
						}
					}
					c.drain() // the error frame is somewhere in the backlog
				}},
				{"taken over from the other transport", func(t *testing.T, c rawWire) {
					token := login(t, c, "moved-"+tr.name)
					o := other.dial(t)
					o.frame(0x02, []byte{1}, rawStr(token), make([]byte, 8))
					until(t, o, 0x81)
					expectCode(t, c, 12, true)
					usable(t, o)
				}},
			} {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, tr.dial(t)) })
			}
		})
	}
}
