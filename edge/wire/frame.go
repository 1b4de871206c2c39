package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/starbus/starbus/edge/internal/fields"
)

// WebSocketSubprotocol is the WebSocket subprotocol of PROTOCOL.md's
// frames, one per binary message. A client offers it in its handshake
// (Sec-WebSocket-Protocol); the edge selects it, and serves a client that
// offers none the same protocol.
const WebSocketSubprotocol = "starbus.v1"

// Protocol versions. A LOGIN or RECONNECT carries the version the client
// speaks, and LOGIN_OK the version the session runs at. Version 2 numbers
// the client's sends (SEQ_SEND, SEQ_CHANNEL_SEND), acknowledges them
// (ACK), and adds the last stored send to LOGIN_OK and the client's
// acknowledged sends to RECONNECT; everything else is as in version 1.
const (
	Version1 byte = 1
	Version2 byte = 2
	// ProtocolVersion is the newest version this package speaks.
	ProtocolVersion = Version2
)

// Opcodes, as PROTOCOL.md defines them. Client-to-server opcodes are below
// 0x80, server-to-client ones at or above it.
const (
	OpLogin       byte = 0x01 // version u8, name str, password str
	OpReconnect   byte = 0x02 // version u8, token str, last-seq u64; version 2: acked u64
	OpSend        byte = 0x03 // payload
	OpLogout      byte = 0x04 // empty
	OpPing        byte = 0x05 // nonce u64
	OpChannelSend byte = 0x06 // channel str, payload
	// Version 2.
	OpSeqSend        byte = 0x07 // seq u64, payload
	OpSeqChannelSend byte = 0x08 // seq u64, channel str, payload

	OpLoginOK        byte = 0x81 // version u8, session str, token str, max-frame u32, rate u32; version 2: last-send u64
	OpLoginFailed    byte = 0x82 // code u16, reason str
	OpMessage        byte = 0x83 // seq u64, payload
	OpChannelJoin    byte = 0x84 // seq u64, channel str
	OpChannelLeave   byte = 0x85 // seq u64, channel str
	OpChannelMessage byte = 0x86 // channel str, seq u64, payload
	OpLogoutOK       byte = 0x87 // empty
	OpError          byte = 0x88 // code u16, reason str
	OpPong           byte = 0x89 // nonce u64
	// Version 2.
	OpAck byte = 0x8a // seq u64
)

// Frame is one protocol frame: an opcode and its body.
type Frame struct {
	Op   byte
	Body []byte
}

// Errors of the frame codec.
var (
	// ErrFrameTooLarge reports a frame whose declared length exceeds the
	// limit. The stream cannot be resynchronised after it.
	ErrFrameTooLarge = errors.New("edge: frame too large")
	// ErrMalformed reports a frame whose body does not match its opcode.
	ErrMalformed = errors.New("edge: malformed frame")
)

// HeaderLen is the length of the prefix (u32) that precedes a frame's opcode
// and body on a stream transport (TCP).
const HeaderLen = 4

// ReadFrame reads one frame from r. max bounds the declared length (opcode
// plus body). A clean end of input before any byte is io.EOF; an end in
// the middle of a frame is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int) (Frame, error) {
	var hdr [HeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return Frame{}, fmt.Errorf("%w: zero length", ErrMalformed)
	}
	if uint64(n) > uint64(max) {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	buf, err := fields.ReadBody(r, int(n))
	if err != nil {
		return Frame{}, err
	}
	return Frame{Op: buf[0], Body: buf[1:]}, nil
}

// AppendFrame appends the encoding of f to b.
func AppendFrame(b []byte, f Frame) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+len(f.Body)))
	b = append(b, f.Op)
	return append(b, f.Body...)
}

// body builds frame bodies.
type body []byte

func (b body) u8(v byte) body    { return append(b, v) }
func (b body) u16(v uint16) body { return binary.BigEndian.AppendUint16(b, v) }
func (b body) u32(v uint32) body { return binary.BigEndian.AppendUint32(b, v) }
func (b body) u64(v uint64) body { return binary.BigEndian.AppendUint64(b, v) }
func (b body) str(s string) body {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	return append(b.u16(uint16(len(s))), s...)
}
func (b body) rest(p []byte) body { return append(b, p...) }

// reader decodes frame bodies. The first error sticks.
type reader struct{ *fields.Reader }

// str reads a str: a u16 length, then that many bytes of UTF-8.
func (r reader) str() string {
	v := r.Take(int(r.U16()))
	if r.Err() == nil && !utf8.Valid(v) {
		r.Fail(fmt.Errorf("%w: string is not UTF-8", ErrMalformed))
	}
	return string(v)
}

// Decoded frames. Decode turns a Frame into one of these; Encode does the
// reverse.
type (
	Login struct {
		Version        byte
		Name, Password string
	}
	Reconnect struct {
		Version byte
		Token   string
		LastSeq uint64
		// Acked (version 2 and later; not on the wire in version 1) is the
		// number of the last SEQ_SEND the client had acknowledged: by an
		// ACK, or by the last-send of a LOGIN_OK. It will not send those
		// again.
		Acked uint64
	}
	Send        struct{ Payload []byte }
	Logout      struct{}
	Ping        struct{ Nonce uint64 }
	ChannelSend struct {
		Channel string
		Payload []byte
	}
	LoginOK struct {
		Version                 byte
		Session, Token          string
		MaxFrame, RatePerSecond uint32
		// LastSend (version 2 and later; not on the wire in version 1) is
		// the number of the last SEQ_SEND the world has stored: the
		// client sends the ones after it.
		LastSend uint64
	}
	LoginFailed struct {
		Code   Code
		Reason string
	}
	Message struct {
		Seq     uint64
		Payload []byte
	}
	ChannelJoin struct {
		Seq     uint64
		Channel string
	}
	ChannelLeave struct {
		Seq     uint64
		Channel string
	}
	ChannelMessage struct {
		Channel string
		Seq     uint64
		Payload []byte
	}
	LogoutOK  struct{}
	ErrorInfo struct {
		Code   Code
		Reason string
	}
	Pong struct{ Nonce uint64 }

	// Version 2.

	// SeqSend is a SEND numbered by the client: from 1 per session, one
	// more for each SeqSend or SeqChannelSend, across reconnects.
	SeqSend struct {
		Seq     uint64
		Payload []byte
	}
	// SeqChannelSend is a CHANNEL_SEND numbered like a SeqSend, in the same
	// sequence.
	SeqChannelSend struct {
		Seq     uint64
		Channel string
		Payload []byte
	}
	// Ack tells the client that its sends up to Seq are stored.
	Ack struct{ Seq uint64 }
)

// Decode parses a frame's body according to its opcode.
func Decode(f Frame) (any, error) {
	r := reader{fields.NewReader(f.Body, ErrMalformed)}
	var v any
	switch f.Op {
	case OpLogin:
		v = Login{Version: r.U8(), Name: r.str(), Password: r.str()}
	case OpReconnect:
		m := Reconnect{Version: r.U8(), Token: r.str(), LastSeq: r.U64()}
		if m.Version >= Version2 {
			m.Acked = r.U64()
		}
		v = m
	case OpSend:
		v = Send{Payload: r.Rest()}
	case OpLogout:
		v = Logout{}
	case OpPing:
		v = Ping{Nonce: r.U64()}
	case OpChannelSend:
		v = ChannelSend{Channel: r.str(), Payload: r.Rest()}
	case OpSeqSend:
		v = SeqSend{Seq: r.U64(), Payload: r.Rest()}
	case OpSeqChannelSend:
		v = SeqChannelSend{Seq: r.U64(), Channel: r.str(), Payload: r.Rest()}
	case OpLoginOK:
		m := LoginOK{Version: r.U8(), Session: r.str(), Token: r.str(), MaxFrame: r.U32(), RatePerSecond: r.U32()}
		if m.Version >= Version2 {
			m.LastSend = r.U64()
		}
		v = m
	case OpLoginFailed:
		v = LoginFailed{Code: Code(r.U16()), Reason: r.str()}
	case OpMessage:
		v = Message{Seq: r.U64(), Payload: r.Rest()}
	case OpChannelJoin:
		v = ChannelJoin{Seq: r.U64(), Channel: r.str()}
	case OpChannelLeave:
		v = ChannelLeave{Seq: r.U64(), Channel: r.str()}
	case OpChannelMessage:
		v = ChannelMessage{Channel: r.str(), Seq: r.U64(), Payload: r.Rest()}
	case OpLogoutOK:
		v = LogoutOK{}
	case OpError:
		v = ErrorInfo{Code: Code(r.U16()), Reason: r.str()}
	case OpPong:
		v = Pong{Nonce: r.U64()}
	case OpAck:
		v = Ack{Seq: r.U64()}
	default:
		return nil, &ProtocolError{Code: CodeUnknownOpcode, Reason: fmt.Sprintf("unknown opcode 0x%02x", f.Op)}
	}
	if err := r.End(); err != nil {
		return nil, err
	}
	return v, nil
}

// Encode builds the frame of a decoded value. It panics on a type that is
// not a frame: that is a programming error.
func Encode(v any) Frame {
	switch v := v.(type) {
	case Login:
		return Frame{OpLogin, body(nil).u8(v.Version).str(v.Name).str(v.Password)}
	case Reconnect:
		b := body(nil).u8(v.Version).str(v.Token).u64(v.LastSeq)
		if v.Version >= Version2 {
			b = b.u64(v.Acked)
		}
		return Frame{OpReconnect, b}
	case Send:
		return Frame{OpSend, body(nil).rest(v.Payload)}
	case Logout:
		return Frame{OpLogout, nil}
	case Ping:
		return Frame{OpPing, body(nil).u64(v.Nonce)}
	case ChannelSend:
		return Frame{OpChannelSend, body(nil).str(v.Channel).rest(v.Payload)}
	case SeqSend:
		return Frame{OpSeqSend, body(nil).u64(v.Seq).rest(v.Payload)}
	case SeqChannelSend:
		return Frame{OpSeqChannelSend, body(nil).u64(v.Seq).str(v.Channel).rest(v.Payload)}
	case LoginOK:
		b := body(nil).u8(v.Version).str(v.Session).str(v.Token).u32(v.MaxFrame).u32(v.RatePerSecond)
		if v.Version >= Version2 {
			b = b.u64(v.LastSend)
		}
		return Frame{OpLoginOK, b}
	case LoginFailed:
		return Frame{OpLoginFailed, body(nil).u16(uint16(v.Code)).str(v.Reason)}
	case Message:
		return Frame{OpMessage, body(nil).u64(v.Seq).rest(v.Payload)}
	case ChannelJoin:
		return Frame{OpChannelJoin, body(nil).u64(v.Seq).str(v.Channel)}
	case ChannelLeave:
		return Frame{OpChannelLeave, body(nil).u64(v.Seq).str(v.Channel)}
	case ChannelMessage:
		return Frame{OpChannelMessage, body(nil).str(v.Channel).u64(v.Seq).rest(v.Payload)}
	case LogoutOK:
		return Frame{OpLogoutOK, nil}
	case ErrorInfo:
		return Frame{OpError, body(nil).u16(uint16(v.Code)).str(v.Reason)}
	case Pong:
		return Frame{OpPong, body(nil).u64(v.Nonce)}
	case Ack:
		return Frame{OpAck, body(nil).u64(v.Seq)}
	}
	panic(fmt.Sprintf("edge: Encode of %T", v))
}
