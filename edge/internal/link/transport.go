package link

import (
	"bufio"
	"errors"
	"net"
	"time"

	"github.com/starbus/starbus/edge/wire"
)

// BadMessage is a whole message that is not a frame (a WebSocket message,
// or a TCP frame of length 0), after which the next message is a frame
// again: the edge answers it with ERROR malformed, and the connection goes
// on.
type BadMessage struct{ Reason string }

func (e *BadMessage) Error() string { return "malformed message: " + e.Reason }

// Unwrap makes a bad message a [wire.ErrMalformed].
func (e *BadMessage) Unwrap() error { return wire.ErrMalformed }

// Buffers lends the write buffers a WebSocket gathers a burst in.
type Buffers interface {
	// Get returns an empty buffer.
	Get() *[]byte
	// Put takes back a buffer Get returned.
	Put(*[]byte)
}

// TCP is the protocol over a byte stream: frames with their length
// prefix, a burst written with one write(2).
type TCP struct {
	nc net.Conn
	r  *bufio.Reader
}

// readBuffer is the size of a TCP connection's read buffer: most client
// frames are a few dozen bytes, and a larger frame is read straight into
// its own slice.
const readBuffer = 256

// NewTCP returns the transport over nc.
func NewTCP(nc net.Conn) *TCP {
	return &TCP{nc: nc, r: bufio.NewReaderSize(nc, readBuffer)}
}

// Stream returns the connection and its read buffer, for a transport that
// speaks another framing over the same byte stream (edge's SimpleSgs
// transport), reading through the buffer.
func (t *TCP) Stream() (net.Conn, *bufio.Reader) { return t.nc, t.r }

// ReadFrame reads the client's next frame, of at most max bytes.
func (t *TCP) ReadFrame(max int) (wire.Frame, error) {
	f, err := wire.ReadFrame(t.r, max)
	if errors.Is(err, wire.ErrMalformed) {
		// A length of 0: the next four bytes are a length again.
		return wire.Frame{}, &BadMessage{Reason: "a frame of length 0; a frame holds at least its opcode"}
	}
	return f, err
}

// Write writes a burst of frames, length prefixes included.
func (t *TCP) Write(b []byte) error {
	_, err := t.nc.Write(b)
	return err
}

// CloseWrite half-closes the stream, so the client reads the last frames
// and then the end.
func (t *TCP) CloseWrite() {
	if cw, ok := t.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// Close closes the connection.
func (t *TCP) Close(*wire.ProtocolError) { _ = t.nc.Close() }

// RemoteAddr names the client in logs.
func (t *TCP) RemoteAddr() string { return t.nc.RemoteAddr().String() }

// Buffered is how many bytes of the client's next frames are read.
func (t *TCP) Buffered() int { return t.r.Buffered() }

// SetReadDeadline bounds the reads of the connection.
func (t *TCP) SetReadDeadline(d time.Time) error { return t.nc.SetReadDeadline(d) }

// SetWriteDeadline bounds the writes of the connection.
func (t *TCP) SetWriteDeadline(d time.Time) error { return t.nc.SetWriteDeadline(d) }
