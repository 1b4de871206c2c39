package edge

import (
	"time"

	"github.com/starbus/starbus/edge/internal/link"
	"github.com/starbus/starbus/edge/wire"
)

// transport is a client's connection as a [conn] uses it: frames in,
// bursts of encoded frames out. The conn owns everything else (its
// goroutines, the outbound queue, the limits, the session), so that both
// transports behave alike: link.TCP, PROTOCOL.md's byte stream over
// TCP (or TLS over TCP), and link.WebSocket, one frame per binary
// WebSocket message (package edge/internal/link, which does not link
// the NATS server, so that the fuzz targets of the WebSocket reading run
// fast: see scripts/fuzz).
//
// Only the conn's reader calls ReadFrame and, once the writer has ended,
// Close; only a writer calls Write and CloseWrite. The deadlines, set by
// either goroutine (under conn.dl), bound those calls as they bound a
// net.Conn's reads and writes: a call in progress fails once its deadline
// passes.
type transport interface {
	// ReadFrame reads the client's next frame, of at most max bytes
	// (opcode included). Its errors: ErrFrameTooLarge, a *link.BadMessage
	// (answered with ERROR malformed, and the connection goes on), a
	// net.Error timeout once the
	// read deadline passes, io.ErrUnexpectedEOF for a connection that
	// ended inside a frame, and any other end of the connection.
	ReadFrame(max int) (wire.Frame, error)
	// Write sends a burst of frames encoded by AppendFrame (length
	// prefixes included), in order.
	Write(b []byte) error
	// CloseWrite tells the client that no frame follows the last one
	// written.
	CloseWrite()
	// Close closes the connection. final is the error frame the client
	// was sent last, if the connection closes on one.
	Close(final *wire.ProtocolError)
	// RemoteAddr names the client in logs.
	RemoteAddr() string
	// Buffered is how many bytes of the client's next frames the
	// transport has read already (0 if it cannot tell): while there are
	// some, the reader may put off an ACK.
	Buffered() int

	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

var (
	_ transport = (*link.TCP)(nil)
	_ transport = (*link.WebSocket)(nil)
)
