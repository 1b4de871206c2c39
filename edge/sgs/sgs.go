package sgs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/starbus/starbus/edge/internal/fields"
)

// Version is the protocol version this package speaks, the version byte
// of LOGIN_REQUEST, RELOCATE_REQUEST and RECONNECT_REQUEST. Darkstar's
// server disconnects a client whose version differs.
const Version byte = 0x05

// Limits, as SimpleSgsProtocol.java states them.
const (
	// MaxMessageLength bounds a whole message, its u16 length included.
	MaxMessageLength = 65535
	// MaxPayloadLength bounds an application payload: a SESSION_MESSAGE's
	// message, or a CHANNEL_MESSAGE's id, id length and message together.
	MaxPayloadLength = 65532
	// MaxFrameLength bounds the u16 length of a message: its opcode and
	// content.
	MaxFrameLength = MaxMessageLength - LengthLen
	// LengthLen is the length of the prefix before a message's opcode.
	LengthLen = 2
)

// Opcodes, as SimpleSgsProtocol.java (version 0x05) defines them.
const (
	OpLoginRequest            byte = 0x10 // C→S: version byte, name String, password String
	OpLoginSuccess            byte = 0x11 // S→C: reconnectionKey ByteArray
	OpLoginFailure            byte = 0x12 // S→C: reason String
	OpLoginRedirect           byte = 0x13 // S→C: host String, port int
	OpSuspendMessages         byte = 0x14 // S→C: none
	OpSuspendMessagesComplete byte = 0x15 // C→S: none
	OpResumeMessages          byte = 0x16 // S→C: none
	OpRelocateNotification    byte = 0x17 // S→C: host String, port int, relocationKey ByteArray
	OpRelocateRequest         byte = 0x18 // C→S: version byte, relocationKey ByteArray
	OpRelocateSuccess         byte = 0x19 // S→C: reconnectionKey ByteArray
	OpRelocateFailure         byte = 0x1a // S→C: reason String
	OpReconnectRequest        byte = 0x20 // C→S: version byte, reconnectionKey ByteArray
	OpReconnectSuccess        byte = 0x21 // S→C: reconnectionKey ByteArray
	OpReconnectFailure        byte = 0x22 // S→C: reason String
	OpSessionMessage          byte = 0x30 // C↔S: message ByteArray
	OpLogoutRequest           byte = 0x40 // C→S: none
	OpLogoutSuccess           byte = 0x41 // S→C: none
	OpChannelJoin             byte = 0x50 // S→C: name String, id ByteArray
	OpChannelLeave            byte = 0x51 // S→C: id ByteArray
	OpChannelMessage          byte = 0x52 // C↔S: id length u16, id, message ByteArray
)

// opNames are the opcodes' names in SimpleSgsProtocol.java.
var opNames = map[byte]string{
	OpLoginRequest: "LOGIN_REQUEST", OpLoginSuccess: "LOGIN_SUCCESS", OpLoginFailure: "LOGIN_FAILURE",
	OpLoginRedirect: "LOGIN_REDIRECT", OpSuspendMessages: "SUSPEND_MESSAGES",
	OpSuspendMessagesComplete: "SUSPEND_MESSAGES_COMPLETE", OpResumeMessages: "RESUME_MESSAGES",
	OpRelocateNotification: "RELOCATE_NOTIFICATION", OpRelocateRequest: "RELOCATE_REQUEST",
	OpRelocateSuccess: "RELOCATE_SUCCESS", OpRelocateFailure: "RELOCATE_FAILURE",
	OpReconnectRequest: "RECONNECT_REQUEST", OpReconnectSuccess: "RECONNECT_SUCCESS",
	OpReconnectFailure: "RECONNECT_FAILURE", OpSessionMessage: "SESSION_MESSAGE",
	OpLogoutRequest: "LOGOUT_REQUEST", OpLogoutSuccess: "LOGOUT_SUCCESS", OpChannelJoin: "CHANNEL_JOIN",
	OpChannelLeave: "CHANNEL_LEAVE", OpChannelMessage: "CHANNEL_MESSAGE",
}

// OpName returns the name of opcode op, as SimpleSgsProtocol.java names
// it, or "" for an opcode the protocol does not define.
func OpName(op byte) string { return opNames[op] }

// Errors of the codec.
var (
	// ErrTooLong reports a message over the protocol's limits.
	ErrTooLong = errors.New("sgs: message too long")
	// ErrMalformed reports a message whose content does not match its
	// opcode, or a string that is not modified UTF-8 as writeUTF writes it.
	ErrMalformed = errors.New("sgs: malformed message")
	// ErrUnknownOpcode reports an opcode the protocol does not define.
	ErrUnknownOpcode = errors.New("sgs: unknown opcode")
)

// Frame is one message: its opcode and content.
type Frame struct {
	Op      byte
	Content []byte
}

// ReadFrame reads one message from r. A clean end of input before any
// byte is io.EOF; an end inside a message is io.ErrUnexpectedEOF. A
// length of 0 (no opcode) is ErrMalformed, and one over MaxFrameLength
// ErrTooLong: the stream cannot be resynchronised after either.
func ReadFrame(r io.Reader) (Frame, error) {
	var hdr [LengthLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	switch {
	case n == 0:
		return Frame{}, fmt.Errorf("%w: a message of length 0 has no opcode", ErrMalformed)
	case n > MaxFrameLength:
		return Frame{}, fmt.Errorf("%w: length %d, limit %d", ErrTooLong, n, MaxFrameLength)
	}
	buf, err := fields.ReadBody(r, n)
	if err != nil {
		return Frame{}, err
	}
	return Frame{Op: buf[0], Content: buf[1:]}, nil
}

// AppendFrame appends f, length prefix included, to b. A frame over
// MaxFrameLength is ErrTooLong, and nothing is appended.
func AppendFrame(b []byte, f Frame) ([]byte, error) {
	n := 1 + len(f.Content)
	if n > MaxFrameLength {
		return b, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, n, MaxFrameLength)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, f.Op)
	return append(b, f.Content...), nil
}

// Append encodes m and appends it, length prefix included, to b.
func Append(b []byte, m Message) ([]byte, error) {
	f, err := Encode(m)
	if err != nil {
		return b, err
	}
	return AppendFrame(b, f)
}

// Message is a decoded message: one of the types below.
type Message interface {
	// Op returns the message's opcode.
	Op() byte
	appendContent(b []byte) ([]byte, error)
}

// The messages, named as in SimpleSgsProtocol.java. Keys are opaque bytes;
// ports are Java ints.
type (
	LoginRequest struct {
		Version        byte
		Name, Password string
	}
	LoginSuccess  struct{ ReconnectionKey []byte }
	LoginFailure  struct{ Reason string }
	LoginRedirect struct {
		Host string
		Port int32
	}
	SuspendMessages         struct{}
	SuspendMessagesComplete struct{}
	ResumeMessages          struct{}
	RelocateNotification    struct {
		Host          string
		Port          int32
		RelocationKey []byte
	}
	RelocateRequest struct {
		Version       byte
		RelocationKey []byte
	}
	RelocateSuccess  struct{ ReconnectionKey []byte }
	RelocateFailure  struct{ Reason string }
	ReconnectRequest struct {
		Version         byte
		ReconnectionKey []byte
	}
	ReconnectSuccess struct{ ReconnectionKey []byte }
	ReconnectFailure struct{ Reason string }
	SessionMessage   struct{ Message []byte }
	LogoutRequest    struct{}
	LogoutSuccess    struct{}
	ChannelJoin      struct {
		Name string
		ID   []byte
	}
	ChannelLeave   struct{ ID []byte }
	ChannelMessage struct {
		ID      []byte
		Message []byte
	}
)

func (LoginRequest) Op() byte            { return OpLoginRequest }
func (LoginSuccess) Op() byte            { return OpLoginSuccess }
func (LoginFailure) Op() byte            { return OpLoginFailure }
func (LoginRedirect) Op() byte           { return OpLoginRedirect }
func (SuspendMessages) Op() byte         { return OpSuspendMessages }
func (SuspendMessagesComplete) Op() byte { return OpSuspendMessagesComplete }
func (ResumeMessages) Op() byte          { return OpResumeMessages }
func (RelocateNotification) Op() byte    { return OpRelocateNotification }
func (RelocateRequest) Op() byte         { return OpRelocateRequest }
func (RelocateSuccess) Op() byte         { return OpRelocateSuccess }
func (RelocateFailure) Op() byte         { return OpRelocateFailure }
func (ReconnectRequest) Op() byte        { return OpReconnectRequest }
func (ReconnectSuccess) Op() byte        { return OpReconnectSuccess }
func (ReconnectFailure) Op() byte        { return OpReconnectFailure }
func (SessionMessage) Op() byte          { return OpSessionMessage }
func (LogoutRequest) Op() byte           { return OpLogoutRequest }
func (LogoutSuccess) Op() byte           { return OpLogoutSuccess }
func (ChannelJoin) Op() byte             { return OpChannelJoin }
func (ChannelLeave) Op() byte            { return OpChannelLeave }
func (ChannelMessage) Op() byte          { return OpChannelMessage }

func (m LoginRequest) appendContent(b []byte) ([]byte, error) {
	b, err := AppendString(append(b, m.Version), m.Name)
	if err != nil {
		return b, err
	}
	return AppendString(b, m.Password)
}
func (m LoginSuccess) appendContent(b []byte) ([]byte, error) {
	return append(b, m.ReconnectionKey...), nil
}
func (m LoginFailure) appendContent(b []byte) ([]byte, error) { return AppendString(b, m.Reason) }
func (m LoginRedirect) appendContent(b []byte) ([]byte, error) {
	b, err := AppendString(b, m.Host)
	return binary.BigEndian.AppendUint32(b, uint32(m.Port)), err
}
func (SuspendMessages) appendContent(b []byte) ([]byte, error)         { return b, nil }
func (SuspendMessagesComplete) appendContent(b []byte) ([]byte, error) { return b, nil }
func (ResumeMessages) appendContent(b []byte) ([]byte, error)          { return b, nil }
func (m RelocateNotification) appendContent(b []byte) ([]byte, error) {
	b, err := AppendString(b, m.Host)
	b = binary.BigEndian.AppendUint32(b, uint32(m.Port))
	return append(b, m.RelocationKey...), err
}
func (m RelocateRequest) appendContent(b []byte) ([]byte, error) {
	return append(append(b, m.Version), m.RelocationKey...), nil
}
func (m RelocateSuccess) appendContent(b []byte) ([]byte, error) {
	return append(b, m.ReconnectionKey...), nil
}
func (m RelocateFailure) appendContent(b []byte) ([]byte, error) { return AppendString(b, m.Reason) }
func (m ReconnectRequest) appendContent(b []byte) ([]byte, error) {
	return append(append(b, m.Version), m.ReconnectionKey...), nil
}
func (m ReconnectSuccess) appendContent(b []byte) ([]byte, error) {
	return append(b, m.ReconnectionKey...), nil
}
func (m ReconnectFailure) appendContent(b []byte) ([]byte, error) { return AppendString(b, m.Reason) }
func (m SessionMessage) appendContent(b []byte) ([]byte, error)   { return append(b, m.Message...), nil }
func (LogoutRequest) appendContent(b []byte) ([]byte, error)      { return b, nil }
func (LogoutSuccess) appendContent(b []byte) ([]byte, error)      { return b, nil }
func (m ChannelJoin) appendContent(b []byte) ([]byte, error) {
	b, err := AppendString(b, m.Name)
	return append(b, m.ID...), err
}
func (m ChannelLeave) appendContent(b []byte) ([]byte, error) { return append(b, m.ID...), nil }
func (m ChannelMessage) appendContent(b []byte) ([]byte, error) {
	if len(m.ID) > 0xffff {
		return b, fmt.Errorf("%w: a channel id of %d bytes", ErrTooLong, len(m.ID))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.ID)))
	return append(append(b, m.ID...), m.Message...), nil
}

// Encode returns the frame of m. A message whose frame would be over
// MaxFrameLength is ErrTooLong; a string that cannot be written (not
// UTF-8, or over 65,535 bytes encoded) is ErrMalformed.
func Encode(m Message) (Frame, error) {
	c, err := m.appendContent(nil)
	if err != nil {
		return Frame{}, err
	}
	if n := 1 + len(c); n > MaxFrameLength {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, n, MaxFrameLength)
	}
	return Frame{Op: m.Op(), Content: c}, nil
}

// Decode returns the message f holds. Its byte slices alias f.Content.
func Decode(f Frame) (Message, error) {
	r := reader{fields.NewReader(f.Content, ErrMalformed)}
	var m Message
	switch f.Op {
	case OpLoginRequest:
		m = LoginRequest{Version: r.U8(), Name: r.str(), Password: r.str()}
	case OpLoginSuccess:
		m = LoginSuccess{ReconnectionKey: r.Rest()}
	case OpLoginFailure:
		m = LoginFailure{Reason: r.str()}
	case OpLoginRedirect:
		m = LoginRedirect{Host: r.str(), Port: r.i32()}
	case OpSuspendMessages:
		m = SuspendMessages{}
	case OpSuspendMessagesComplete:
		m = SuspendMessagesComplete{}
	case OpResumeMessages:
		m = ResumeMessages{}
	case OpRelocateNotification:
		m = RelocateNotification{Host: r.str(), Port: r.i32(), RelocationKey: r.Rest()}
	case OpRelocateRequest:
		m = RelocateRequest{Version: r.U8(), RelocationKey: r.Rest()}
	case OpRelocateSuccess:
		m = RelocateSuccess{ReconnectionKey: r.Rest()}
	case OpRelocateFailure:
		m = RelocateFailure{Reason: r.str()}
	case OpReconnectRequest:
		m = ReconnectRequest{Version: r.U8(), ReconnectionKey: r.Rest()}
	case OpReconnectSuccess:
		m = ReconnectSuccess{ReconnectionKey: r.Rest()}
	case OpReconnectFailure:
		m = ReconnectFailure{Reason: r.str()}
	case OpSessionMessage:
		m = SessionMessage{Message: r.Rest()}
	case OpLogoutRequest:
		m = LogoutRequest{}
	case OpLogoutSuccess:
		m = LogoutSuccess{}
	case OpChannelJoin:
		m = ChannelJoin{Name: r.str(), ID: r.Rest()}
	case OpChannelLeave:
		m = ChannelLeave{ID: r.Rest()}
	case OpChannelMessage:
		m = ChannelMessage{ID: r.Take(int(r.U16())), Message: r.Rest()}
	default:
		return nil, fmt.Errorf("%w: 0x%02x", ErrUnknownOpcode, f.Op)
	}
	if err := r.End(); err != nil {
		return nil, fmt.Errorf("opcode 0x%02x: %w", f.Op, err)
	}
	return m, nil
}

// reader decodes content. The first error sticks.
type reader struct{ *fields.Reader }

func (r reader) i32() int32 { return int32(r.U32()) }

// str reads a String: a u16 length, then modified UTF-8.
func (r reader) str() string {
	v := r.Take(int(r.U16()))
	if r.Err() != nil {
		return ""
	}
	s, err := ParseString(v)
	if err != nil {
		r.Fail(err)
	}
	return s
}
