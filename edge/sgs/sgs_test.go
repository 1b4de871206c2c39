package sgs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/starbus/starbus/edge/sgs"
)

func TestRoundTrip(t *testing.T) {
	for _, m := range []sgs.Message{
		sgs.LoginRequest{Version: sgs.Version, Name: "ann", Password: "pw\x00é𝄞"},
		sgs.LoginSuccess{ReconnectionKey: []byte("key")},
		sgs.LoginFailure{Reason: "login refused"},
		sgs.LoginRedirect{Host: "10.0.0.2", Port: 62964},
		sgs.SuspendMessages{}, sgs.SuspendMessagesComplete{}, sgs.ResumeMessages{},
		sgs.RelocateNotification{Host: "h", Port: -1, RelocationKey: []byte{0, 1, 2}},
		sgs.RelocateRequest{Version: sgs.Version, RelocationKey: []byte{9}},
		sgs.RelocateSuccess{ReconnectionKey: []byte("k")},
		sgs.RelocateFailure{Reason: "relocation refused"},
		sgs.ReconnectRequest{Version: sgs.Version, ReconnectionKey: []byte("k")},
		sgs.ReconnectSuccess{ReconnectionKey: []byte("k")},
		sgs.ReconnectFailure{Reason: "no"},
		sgs.SessionMessage{Message: []byte("hello")},
		sgs.LogoutRequest{}, sgs.LogoutSuccess{},
		sgs.ChannelJoin{Name: "lobby", ID: []byte("lobby")},
		sgs.ChannelLeave{ID: []byte("lobby")},
		sgs.ChannelMessage{ID: []byte("lobby"), Message: []byte("hi")},
	} {
		b, err := sgs.Append(nil, m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		f, err := sgs.ReadFrame(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%T: read: %v", m, err)
		}
		if f.Op != m.Op() {
			t.Fatalf("%T: opcode 0x%02x", m, f.Op)
		}
		got, err := sgs.Decode(f)
		if err != nil {
			t.Fatalf("%T: decode: %v", m, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(m)) {
			t.Errorf("round trip of %#v gave %#v", m, got)
		}
	}
}

// normalize makes empty and nil byte slices compare equal.
func normalize(m sgs.Message) string { return fmt.Sprintf("%T%+v", m, m) }

// TestWire checks encodings byte by byte against the specification.
func TestWire(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    sgs.Message
		want []byte
	}{
		{"login", sgs.LoginRequest{Version: 5, Name: "ann", Password: "pw"},
			[]byte{0, 11, 0x10, 5, 0, 3, 'a', 'n', 'n', 0, 2, 'p', 'w'}},
		{"redirect: a Java int port", sgs.LoginRedirect{Host: "h", Port: 62964},
			[]byte{0, 8, 0x13, 0, 1, 'h', 0, 0, 0xf5, 0xf4}},
		{"channel message: u16 id length", sgs.ChannelMessage{ID: []byte("c"), Message: []byte("hi")},
			[]byte{0, 6, 0x52, 0, 1, 'c', 'h', 'i'}},
		{"channel join: name then id", sgs.ChannelJoin{Name: "c", ID: []byte("c")},
			[]byte{0, 5, 0x50, 0, 1, 'c', 'c'}},
		{"suspend", sgs.SuspendMessages{}, []byte{0, 1, 0x14}},
		{"relocate request", sgs.RelocateRequest{Version: 5, RelocationKey: []byte{7, 8}},
			[]byte{0, 4, 0x18, 5, 7, 8}},
	} {
		got, err := sgs.Append(nil, tc.m)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: % x, %v; want % x", tc.name, got, err, tc.want)
		}
	}
}

func TestModifiedUTF8(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want []byte
	}{
		{"", nil},
		{"a", []byte{'a'}},
		{"\x00", []byte{0xc0, 0x80}},
		{"é", []byte{0xc3, 0xa9}},
		{"€", []byte{0xe2, 0x82, 0xac}},
		// U+1D11E: surrogates D834 DD1E, three bytes each.
		{"𝄞", []byte{0xed, 0xa0, 0xb4, 0xed, 0xb4, 0x9e}},
	} {
		b, err := sgs.AppendString(nil, tc.s)
		if err != nil {
			t.Fatalf("%q: %v", tc.s, err)
		}
		if !bytes.Equal(b[2:], tc.want) || int(b[0])<<8|int(b[1]) != len(tc.want) {
			t.Errorf("%q: % x, want % x", tc.s, b, tc.want)
		}
		s, err := sgs.ParseString(tc.want)
		if err != nil || s != tc.s {
			t.Errorf("parse % x: %q, %v", tc.want, s, err)
		}
	}
	for _, bad := range [][]byte{
		{0x00},                               // raw NUL: writeUTF writes 0xC0 0x80
		{0xc1, 0x81},                         // overlong 'A'
		{0xe0, 0x81, 0x81},                   // overlong
		{0xf0, 0x9d, 0x84, 0x9e},             // a four-byte sequence
		{0x80},                               // a stray continuation
		{0xc3},                               // truncated
		{0xe2, 0x82},                         // truncated
		{0xed, 0xa0, 0xb4},                   // lone high surrogate
		{0xed, 0xb4, 0x9e},                   // lone low surrogate
		{0xed, 0xb4, 0x9e, 0xed, 0xa0, 0xb4}, // reversed pair
		{0xed, 0xa0, 0xb4, 'a'},              // high surrogate, then no low
	} {
		if s, err := sgs.ParseString(bad); !errors.Is(err, sgs.ErrMalformed) {
			t.Errorf("% x: %q, %v; want ErrMalformed", bad, s, err)
		}
	}
	if _, err := sgs.AppendString(nil, "\xff"); !errors.Is(err, sgs.ErrMalformed) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := sgs.AppendString(nil, strings.Repeat("é", 0x8000)); !errors.Is(err, sgs.ErrMalformed) {
		t.Errorf("a string of 65,536 bytes: %v", err)
	}
	if b, err := sgs.AppendString(nil, strings.Repeat("a", 0xffff)); err != nil || len(b) != 0x10001 {
		t.Errorf("a string of 65,535 bytes: %d bytes, %v", len(b), err)
	}
}

func TestLimits(t *testing.T) {
	max := sgs.SessionMessage{Message: make([]byte, sgs.MaxPayloadLength)}
	b, err := sgs.Append(nil, max)
	if err != nil || len(b) != sgs.MaxMessageLength {
		t.Fatalf("the largest session message: %d bytes, %v", len(b), err)
	}
	if _, err := sgs.ReadFrame(bytes.NewReader(b)); err != nil {
		t.Fatalf("read the largest: %v", err)
	}
	if _, err := sgs.Append(nil, sgs.SessionMessage{Message: make([]byte, sgs.MaxPayloadLength+1)}); !errors.Is(err, sgs.ErrTooLong) {
		t.Errorf("a payload over the limit: %v", err)
	}
	if _, err := sgs.Append(nil, sgs.ChannelMessage{ID: []byte("c"), Message: make([]byte, sgs.MaxPayloadLength-2)}); !errors.Is(err, sgs.ErrTooLong) {
		t.Errorf("a channel message over the limit: %v", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"half a length", []byte{0}, io.ErrUnexpectedEOF},
		{"zero length", []byte{0, 0}, sgs.ErrMalformed},
		{"over the limit", []byte{0xff, 0xff, 0x30}, sgs.ErrTooLong},
		{"just over the limit", []byte{0xff, 0xfe, 0x30}, sgs.ErrTooLong},
		{"cut short", []byte{0, 5, 0x30, 'a'}, io.ErrUnexpectedEOF},
	} {
		if _, err := sgs.ReadFrame(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    sgs.Frame
		want error
	}{
		{"unknown opcode", sgs.Frame{Op: 0x01}, sgs.ErrUnknownOpcode},
		{"starbus login", sgs.Frame{Op: 0x99}, sgs.ErrUnknownOpcode},
		{"login without version", sgs.Frame{Op: sgs.OpLoginRequest}, sgs.ErrMalformed},
		{"login without password", sgs.Frame{Op: sgs.OpLoginRequest, Content: []byte{5, 0, 1, 'a'}}, sgs.ErrMalformed},
		{"login with trailing bytes", sgs.Frame{Op: sgs.OpLoginRequest, Content: []byte{5, 0, 1, 'a', 0, 0, 9}}, sgs.ErrMalformed},
		{"login with a raw NUL", sgs.Frame{Op: sgs.OpLoginRequest, Content: []byte{5, 0, 1, 0, 0, 0}}, sgs.ErrMalformed},
		{"string longer than the content", sgs.Frame{Op: sgs.OpLoginFailure, Content: []byte{0, 9, 'a'}}, sgs.ErrMalformed},
		{"logout with content", sgs.Frame{Op: sgs.OpLogoutRequest, Content: []byte{1}}, sgs.ErrMalformed},
		{"channel id longer than the content", sgs.Frame{Op: sgs.OpChannelMessage, Content: []byte{0, 9, 'c'}}, sgs.ErrMalformed},
		{"channel message without an id length", sgs.Frame{Op: sgs.OpChannelMessage, Content: []byte{0}}, sgs.ErrMalformed},
		{"redirect without a port", sgs.Frame{Op: sgs.OpLoginRedirect, Content: []byte{0, 1, 'h', 0, 0}}, sgs.ErrMalformed},
	} {
		if m, err := sgs.Decode(tc.f); !errors.Is(err, tc.want) {
			t.Errorf("%s: %#v, %v; want %v", tc.name, m, err, tc.want)
		}
	}
}

// FuzzDecode reads arbitrary bytes as a stream of messages: nothing
// panics, and whatever decodes encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, m := range []sgs.Message{
		sgs.LoginRequest{Version: 5, Name: "ann", Password: "p\x00𝄞"},
		sgs.RelocateNotification{Host: "h", Port: 1, RelocationKey: []byte("k")},
		sgs.ChannelMessage{ID: []byte("c"), Message: []byte("m")},
		sgs.ChannelJoin{Name: "c", ID: []byte("c")},
		sgs.SessionMessage{Message: []byte("x")},
	} {
		b, _ := sgs.Append(nil, m)
		f.Add(b)
	}
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			fr, err := sgs.ReadFrame(r)
			if err != nil {
				return
			}
			m, err := sgs.Decode(fr)
			if err != nil {
				if !errors.Is(err, sgs.ErrMalformed) && !errors.Is(err, sgs.ErrUnknownOpcode) {
					t.Fatalf("decode error %v is neither malformed nor unknown", err)
				}
				continue
			}
			again, err := sgs.Encode(m)
			if err != nil {
				t.Fatalf("%#v decoded from % x does not encode: %v", m, fr.Content, err)
			}
			if again.Op != fr.Op || !bytes.Equal(again.Content, fr.Content) {
				t.Fatalf("% x decoded to %#v, which encodes to % x", fr.Content, m, again.Content)
			}
		}
	})
}

// FuzzString: ParseString accepts exactly the encodings AppendString
// writes.
func FuzzString(f *testing.F) {
	f.Add([]byte("abc"))
	f.Add([]byte{0xc0, 0x80})
	f.Add([]byte{0xed, 0xa0, 0xb4, 0xed, 0xb4, 0x9e})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > sgs.MaxStringLength {
			return
		}
		s, err := sgs.ParseString(in)
		if err != nil {
			return
		}
		b, err := sgs.AppendString(nil, s)
		if err != nil || !bytes.Equal(b[2:], in) {
			t.Fatalf("% x parsed to %q, which encodes to % x (%v)", in, s, b, err)
		}
		if t2, err := sgs.ParseString(b[2:]); err != nil || t2 != s {
			t.Fatalf("%q does not round-trip: %q, %v", s, t2, err)
		}
	})
}
