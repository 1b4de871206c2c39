package edge

import (
	"errors"
	"net"
	"testing"

	"github.com/starbus/starbus/edge/sgs"
	"github.com/starbus/starbus/edge/wire"
)

// pipeSGS is a SimpleSgs transport over one end of a pipe, on a server
// that knows no other edge, and the pipe's other end.
func pipeSGS(t *testing.T) (*sgsTransport, net.Conn) {
	s := &Server{}
	s.init()
	t.Cleanup(s.cancel)
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	tr := newSGSTransport(s, server)
	s.newConn(tr)
	return tr, client
}

// FuzzSGSRead feeds arbitrary bytes to a SimpleSgs connection that has
// not logged in: nothing panics, the transport hands the conn nothing but
// well-formed logins and relocations (everything else before login is
// dropped or ends the connection), and it stops at the first bad message.
func FuzzSGSRead(f *testing.F) {
	for _, m := range []sgs.Message{
		sgs.LoginRequest{Version: sgs.Version, Name: "ann", Password: "pw"},
		sgs.RelocateRequest{Version: sgs.Version, RelocationKey: relocationKey("S1.x", 7)},
		sgs.SessionMessage{Message: []byte("early")},
		sgs.ChannelMessage{ID: []byte("Foo"), Message: []byte("early")},
		sgs.SuspendMessagesComplete{},
		sgs.LogoutRequest{},
		sgs.ReconnectRequest{Version: sgs.Version},
	} {
		b, _ := sgs.Append(nil, m)
		f.Add(b)
	}
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 0x30})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, client := pipeSGS(t)
		go func() {
			_, _ = client.Write(data)
			client.Close()
		}()
		for range len(data) + 1 { // every message takes at least three bytes
			fr, err := tr.ReadFrame(64 << 10)
			if err != nil {
				return
			}
			v, err := wire.Decode(fr)
			if err != nil {
				t.Fatalf("the transport made a malformed frame 0x%02x % x: %v", fr.Op, fr.Body, err)
			}
			switch v.(type) {
			case wire.Login, wire.Reconnect:
			default:
				t.Fatalf("before login, the transport handed the conn a %T", v)
			}
		}
		t.Fatalf("%d bytes read as more messages than they can hold", len(data))
	})
}

// FuzzSGSTranslate: any frame the conn could write translates to a
// SimpleSgs message that encodes, or to nothing, or is too long for
// SimpleSgs (dropped and logged).
func FuzzSGSTranslate(f *testing.F) {
	for _, v := range []any{
		wire.LoginOK{Version: 1, Session: "s", Token: "s.t", MaxFrame: 1 << 16, RatePerSecond: 50},
		wire.LoginFailed{Code: wire.CodeBadToken, Reason: "no"},
		wire.Message{Seq: 1, Payload: []byte("hi")},
		wire.ChannelJoin{Seq: 2, Channel: "Foo"}, wire.ChannelLeave{Seq: 3, Channel: "Foo"},
		wire.ChannelMessage{Channel: "Foo", Seq: 4, Payload: []byte("yo")},
		wire.LogoutOK{}, wire.ErrorInfo{Code: wire.CodeRateLimited},
	} {
		fr := wire.Encode(v)
		f.Add(fr.Op, fr.Body)
	}
	f.Fuzz(func(t *testing.T, op byte, body []byte) {
		tr, _ := pipeSGS(t)
		m, _ := tr.translate(wire.Frame{Op: op, Body: body})
		if m == nil {
			return
		}
		if _, err := sgs.Encode(m); err != nil && !errors.Is(err, sgs.ErrTooLong) {
			t.Fatalf("0x%02x % x translates to %#v, which does not encode: %v", op, body, m, err)
		}
	})
}
