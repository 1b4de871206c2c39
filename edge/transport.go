package edge

import (
	"bufio"
	"errors"
	"net"
	"time"

	"github.com/starbus/starbus/edge/wire"
)

// transport is a client's connection as a [conn] uses it: frames in,
// bursts of encoded frames out. The conn owns everything else (its
// goroutines, the outbound queue, the limits, the session), so that both
// transports behave alike: tcpTransport, PROTOCOL.md's byte stream over
// TCP (or TLS over TCP), and wsTransport, one frame per binary WebSocket
// message.
//
// Only the conn's reader calls readFrame and, once the writer has ended,
// close; only a writer calls write and closeWrite. The deadlines, set by
// either goroutine (under conn.dl), bound those calls as they bound a
// net.Conn's reads and writes: a call in progress fails once its deadline
// passes.
type transport interface {
	// readFrame reads the client's next frame, of at most max bytes
	// (opcode included). Its errors: ErrFrameTooLarge, a *badMessage
	// (answered with ERROR malformed, and the connection goes on), a
	// net.Error timeout once the
	// read deadline passes, io.ErrUnexpectedEOF for a connection that
	// ended inside a frame, and any other end of the connection.
	readFrame(max int) (wire.Frame, error)
	// write sends a burst of frames encoded by AppendFrame (length
	// prefixes included), in order.
	write(b []byte) error
	// closeWrite tells the client that no frame follows the last one
	// written.
	closeWrite()
	// close closes the connection. final is the error frame the client
	// was sent last, if the connection closes on one.
	close(final *wire.ProtocolError)
	// remoteAddr names the client in logs.
	remoteAddr() string
	// buffered is how many bytes of the client's next frames the
	// transport has read already (0 if it cannot tell): while there are
	// some, the reader may put off an ACK.
	buffered() int

	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

var (
	_ transport = (*tcpTransport)(nil)
	_ transport = (*wsTransport)(nil)
)

// badMessage is a whole message that is not a frame (a WebSocket message,
// or a TCP frame of length 0), after which the next message is a frame
// again: it is answered with ERROR malformed, and the connection goes on.
type badMessage struct{ reason string }

func (e *badMessage) Error() string { return "malformed message: " + e.reason }

// Unwrap makes a bad message an [ErrMalformed].
func (e *badMessage) Unwrap() error { return wire.ErrMalformed }

// tcpTransport is the protocol over a byte stream: frames with their length
// prefix, a burst written with one write(2).
type tcpTransport struct {
	nc net.Conn
	r  *bufio.Reader
}

// readBuffer is the size of a TCP connection's read buffer: most client
// frames are a few dozen bytes, and a larger frame is read straight into
// its own slice.
const readBuffer = 256

func newTCPTransport(nc net.Conn) *tcpTransport {
	return &tcpTransport{nc: nc, r: bufio.NewReaderSize(nc, readBuffer)}
}

func (t *tcpTransport) readFrame(max int) (wire.Frame, error) {
	f, err := wire.ReadFrame(t.r, max)
	if errors.Is(err, wire.ErrMalformed) {
		// A length of 0: the next four bytes are a length again.
		return wire.Frame{}, &badMessage{reason: "a frame of length 0; a frame holds at least its opcode"}
	}
	return f, err
}

func (t *tcpTransport) write(b []byte) error {
	_, err := t.nc.Write(b)
	return err
}

// closeWrite half-closes the stream, so the client reads the last frames
// and then the end.
func (t *tcpTransport) closeWrite() {
	if cw, ok := t.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

func (t *tcpTransport) close(*wire.ProtocolError) { _ = t.nc.Close() }

func (t *tcpTransport) remoteAddr() string { return t.nc.RemoteAddr().String() }

func (t *tcpTransport) buffered() int { return t.r.Buffered() }

func (t *tcpTransport) SetReadDeadline(d time.Time) error  { return t.nc.SetReadDeadline(d) }
func (t *tcpTransport) SetWriteDeadline(d time.Time) error { return t.nc.SetWriteDeadline(d) }
