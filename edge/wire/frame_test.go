package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, v := range []any{
		Login{Version: 1, Name: "ann", Password: "pw"},
		Reconnect{Version: 1, Token: "tok", LastSeq: 1 << 40},
		Send{Payload: []byte("hi")}, Logout{}, Ping{Nonce: 7},
		ChannelSend{Channel: "global", Payload: []byte("yo")},
		LoginOK{Version: 1, Session: "s", Token: "t", MaxFrame: 65536, RatePerSecond: 50},
		LoginFailed{Code: CodeBadCredentials, Reason: "no"},
		Message{Seq: 9, Payload: []byte("m")}, ChannelJoin{Channel: "c"}, ChannelLeave{Channel: "c"},
		ChannelMessage{Channel: "c", Seq: 3, Payload: []byte("x")}, LogoutOK{},
		ErrorInfo{Code: CodeRateLimited, Reason: "slow down"}, Pong{Nonce: 7},
		Reconnect{Version: 2, Token: "tok", LastSeq: 9, Acked: 4},
		LoginOK{Version: 2, Session: "s", Token: "t", MaxFrame: 65536, RatePerSecond: 50, LastSend: 1 << 33},
		SeqSend{Seq: 1, Payload: []byte("hi")}, SeqChannelSend{Seq: 2, Channel: "global", Payload: []byte("yo")},
		Ack{Seq: 1 << 50},
	} {
		wire := AppendFrame(nil, Encode(v))
		f, err := ReadFrame(bytes.NewReader(wire), 1<<20)
		if err != nil {
			t.Fatalf("%T: read: %v", v, err)
		}
		got, err := Decode(f)
		if err != nil {
			t.Fatalf("%T: decode: %v", v, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(v)) {
			t.Errorf("round trip of %#v gave %#v", v, got)
		}
	}
}

// normalize makes empty and nil payloads compare equal.
func normalize(v any) any {
	switch m := v.(type) {
	case Send:
		if len(m.Payload) == 0 {
			m.Payload = nil
		}
		return m
	case SeqSend:
		if len(m.Payload) == 0 {
			m.Payload = nil
		}
		return m
	}
	return v
}

func TestReadFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"short header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"truncated body", []byte{0, 0, 0, 5, 1, 2}, io.ErrUnexpectedEOF},
		{"zero length", []byte{0, 0, 0, 0}, ErrMalformed},
		{"too large", []byte{0, 1, 0, 0, 1}, ErrFrameTooLarge},
	} {
		if _, err := ReadFrame(bytes.NewReader(tc.in), 1024); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Decode(Frame{Op: OpPing, Body: []byte{1, 2}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("short ping: %v", err)
	}
	if _, err := Decode(Frame{Op: OpLogout, Body: []byte{1}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("logout with trailing bytes: %v", err)
	}
	var pe *ProtocolError
	if _, err := Decode(Frame{Op: 0x7f}); !errors.As(err, &pe) || pe.Code != CodeUnknownOpcode {
		t.Errorf("unknown opcode: %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to the frame reader and decoder: they
// must never panic, and whatever decodes must encode back to the same
// frame.
func FuzzDecode(f *testing.F) {
	for _, v := range []any{
		Login{Version: 1, Name: "ann", Password: "pw"}, Reconnect{Version: 1, Token: "t", LastSeq: 3},
		Send{Payload: []byte("x")}, Ping{Nonce: 1}, Message{Seq: 1, Payload: []byte("m")},
		ErrorInfo{Code: 1, Reason: "r"}, ChannelMessage{Channel: "c", Seq: 1},
		Reconnect{Version: 2, Token: "t", LastSeq: 3, Acked: 2}, SeqSend{Seq: 1, Payload: []byte("x")},
		SeqChannelSend{Seq: 2, Channel: "c", Payload: []byte("y")}, Ack{Seq: 2},
		LoginOK{Version: 2, Session: "s", Token: "t", MaxFrame: 1, RatePerSecond: 1, LastSend: 7},
	} {
		f.Add(AppendFrame(nil, Encode(v)))
	}
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{0, 0, 0, 1, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			fr, err := ReadFrame(r, 1<<16)
			if err != nil {
				return
			}
			v, err := Decode(fr)
			if err != nil {
				continue
			}
			again := Encode(v)
			if again.Op != fr.Op || !bytes.Equal(again.Body, fr.Body) {
				t.Fatalf("frame 0x%02x %x decoded to %#v, encoded back to %x", fr.Op, fr.Body, v, again.Body)
			}
		}
	})
}

// TestVersionedBodies: LOGIN_OK and RECONNECT carry their version 2
// fields only at version 2 and later, so that a version 1 peer reads
// exactly the bodies of version 1.
func TestVersionedBodies(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want []byte
	}{
		{Reconnect{Version: 1, Token: "t", LastSeq: 3, Acked: 9}, []byte{1, 0, 1, 't', 0, 0, 0, 0, 0, 0, 0, 3}},
		{Reconnect{Version: 2, Token: "t", LastSeq: 3, Acked: 9}, []byte{2, 0, 1, 't', 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9}},
		{LoginOK{Version: 1, Session: "s", Token: "t", MaxFrame: 1, RatePerSecond: 2, LastSend: 9},
			[]byte{1, 0, 1, 's', 0, 1, 't', 0, 0, 0, 1, 0, 0, 0, 2}},
		{LoginOK{Version: 2, Session: "s", Token: "t", MaxFrame: 1, RatePerSecond: 2, LastSend: 9},
			[]byte{2, 0, 1, 's', 0, 1, 't', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9}},
		{SeqSend{Seq: 5, Payload: []byte("hi")}, []byte{0, 0, 0, 0, 0, 0, 0, 5, 'h', 'i'}},
		{SeqChannelSend{Seq: 6, Channel: "c", Payload: []byte("x")}, []byte{0, 0, 0, 0, 0, 0, 0, 6, 0, 1, 'c', 'x'}},
		{Ack{Seq: 7}, []byte{0, 0, 0, 0, 0, 0, 0, 7}},
	} {
		if got := Encode(tc.v).Body; !bytes.Equal(got, tc.want) {
			t.Errorf("%#v: body % x, want % x", tc.v, got, tc.want)
		}
	}
	// A version 2 body read as version 1 (its first byte changed) has
	// trailing bytes; a version 1 body read as version 2 is short.
	if _, err := Decode(Frame{Op: OpLoginOK, Body: []byte{2, 0, 1, 's', 0, 1, 't', 0, 0, 0, 1, 0, 0, 0, 2}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("version 2 LOGIN_OK without last-send: %v", err)
	}
}
