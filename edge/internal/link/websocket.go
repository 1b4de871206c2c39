package link

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/starbus/starbus/edge/wire"
)

// WebSocketConfig is what a WebSocket transport is given by the edge.
type WebSocketConfig struct {
	// MaxFrame is the largest frame (message) the edge reads.
	MaxFrame int
	// CloseWait bounds the close handshake.
	CloseWait time.Duration
	// Buffers lends the buffers a burst is gathered in.
	Buffers Buffers
}

// AcceptWebSocket upgrades a request to a WebSocket transport. On error
// the library has answered the request.
func AcceptWebSocket(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions, cfg WebSocketConfig) (*WebSocket, error) {
	h := &hijacker{ResponseWriter: w, pool: cfg.Buffers}
	ws, err := websocket.Accept(h, r, opts)
	if err != nil {
		return nil, err
	}
	if h.nc == nil { // a library that no longer hijacks through its ResponseWriter
		_ = ws.CloseNow()
		return nil, errors.New("edge: websocket: connection not hijacked")
	}
	// The library's own limit is a backstop one byte past the edge's:
	// ReadFrame stops at MaxFrame+1 bytes and answers frame-too-large
	// before closing, where the library, at its limit, would close with
	// 1009 at once, and no error frame could follow.
	ws.SetReadLimit(int64(cfg.MaxFrame) + 1)
	return &WebSocket{ws: ws, nc: h.nc, out: h.out, remote: r.RemoteAddr, closeWait: cfg.CloseWait}, nil
}

// WebSocket is the protocol over WebSocket: each frame is one binary
// message holding its opcode and body, without the length prefix
// (PROTOCOL.md, WebSocket).
//
// The library (github.com/coder/websocket) frames and unframes messages,
// reassembles fragments, and answers pings and close frames. Its reads and
// writes are given a context that never ends: the hijacked connection's
// deadlines bound them instead, as they bound a TCP connection's, so that
// the conn's deadlines (login timeout, write timeout, the reader's linger
// while closing) mean the same on both transports. (An ended context would
// make the library close the whole connection, and a closing connection's
// last frames could not be written.)
type WebSocket struct {
	ws        *websocket.Conn
	nc        *wsNetConn  // the hijacked connection, under the library
	out       *corkWriter // under the library's writes
	remote    string
	closeWait time.Duration
	// violation is set by the reader when the library ended the reading
	// on a breach of RFC 6455 it has not answered itself.
	violation bool
}

// ReadFrame reads the client's next message, of at most max bytes, as the
// frame it holds.
func (t *WebSocket) ReadFrame(max int) (wire.Frame, error) {
	typ, r, err := t.ws.Reader(context.Background())
	if err != nil {
		t.violation = violation(err)
		return wire.Frame{}, err
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		t.violation = violation(err)
		return wire.Frame{}, err
	}
	if t.nc.failed.Load() {
		// The library reports a connection that ends between two frames
		// of a message as the message's end; it was cut short.
		return wire.Frame{}, io.ErrUnexpectedEOF
	}
	return messageFrame(typ, b, max)
}

// violation reports whether a read error of the library is the client's
// breach of RFC 6455 (an unmasked frame, a continuation that continues
// nothing), rather than the end of the connection or a deadline.
func violation(err error) bool {
	var ne net.Error
	var ce websocket.CloseError
	return !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) &&
		!errors.As(err, &ne) && !errors.As(err, &ce)
}

// messageFrame is the frame a whole WebSocket message of type typ holds.
func messageFrame(typ websocket.MessageType, b []byte, max int) (wire.Frame, error) {
	switch {
	case len(b) > max:
		return wire.Frame{}, fmt.Errorf("%w: a message over %d bytes", wire.ErrFrameTooLarge, max)
	case typ != websocket.MessageBinary:
		return wire.Frame{}, &BadMessage{Reason: "a text message; frames travel in binary messages"}
	case len(b) == 0:
		return wire.Frame{}, &BadMessage{Reason: "an empty message; a frame has an opcode"}
	}
	return wire.Frame{Op: b[0], Body: b[1:]}, nil
}

// Write sends each frame of b as one binary message, the whole burst with
// one write(2): the library's writes are gathered by the cork.
func (t *WebSocket) Write(b []byte) error {
	t.out.cork()
	var err error
	for len(b) > 0 && err == nil {
		if len(b) < wire.HeaderLen {
			err = errors.New("edge: websocket: a burst ends inside a length prefix")
			break
		}
		n := int(binary.BigEndian.Uint32(b))
		if n > len(b)-wire.HeaderLen {
			err = errors.New("edge: websocket: a burst ends inside a frame")
			break
		}
		err = t.ws.Write(context.Background(), websocket.MessageBinary, b[wire.HeaderLen:wire.HeaderLen+n])
		b = b[wire.HeaderLen+n:]
	}
	if uerr := t.out.uncork(); err == nil {
		err = uerr
	}
	return err
}

// CloseWrite does nothing: the close frame, sent by Close, is what tells a
// WebSocket client that nothing follows.
func (t *WebSocket) CloseWrite() {}

// Close sends the close frame, unless the library has, and waits, within
// the CloseWait of its config, for the client's (reading and discarding what comes before
// it, such as the rest of a message too large to read), then closes the
// connection. The close code says why: 4000 plus the code of the error
// frame the connection closes on, 1002 after a breach of RFC 6455, 1000
// otherwise (after LOGOUT_OK, or the client's own close).
func (t *WebSocket) Close(final *wire.ProtocolError) {
	code, reason := websocket.StatusNormalClosure, ""
	switch {
	case final != nil:
		code, reason = closeCode(final.Code), final.Code.String()
	case t.violation:
		code, reason = websocket.StatusProtocolError, "not a WebSocket"
	}
	// The reader's deadline has passed (it is what ended the reading):
	// the close handshake gets its own.
	_ = t.nc.SetDeadline(time.Now().Add(t.closeWait))
	_ = t.ws.Close(code, reason)
}

// closeCode is the WebSocket close code of a connection closed with an
// error frame of code c (PROTOCOL.md, WebSocket).
func closeCode(c wire.Code) websocket.StatusCode { return websocket.StatusCode(4000 + int(c)) }

// CloseNow closes the connection without a close handshake.
func (t *WebSocket) CloseNow() error { return t.ws.CloseNow() }

// RemoteAddr names the client in logs.
func (t *WebSocket) RemoteAddr() string { return t.remote }

// Buffered is 0: a message is read whole, and what follows it is the
// library's.
func (t *WebSocket) Buffered() int { return 0 }

// SetReadDeadline bounds the reads of the connection.
func (t *WebSocket) SetReadDeadline(d time.Time) error { return t.nc.SetReadDeadline(d) }

// SetWriteDeadline bounds the writes of the connection.
func (t *WebSocket) SetWriteDeadline(d time.Time) error { return t.nc.SetWriteDeadline(d) }

// wsNetConn is the hijacked connection as the library sees it. It notes a
// read that failed with nothing read, so that ReadFrame can tell a message
// cut short by the connection's end from a whole one.
type wsNetConn struct {
	net.Conn
	failed atomic.Bool
}

func (c *wsNetConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n == 0 && err != nil {
		c.failed.Store(true)
	}
	return n, err
}

// Buffer sizes of a WebSocket connection. Client frames are small, and the
// library reads a larger message straight into its slice; a burst written
// goes through the cork, whatever its size.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 512
)

// hijacker is the ResponseWriter the library hijacks the connection
// through. It keeps the connection, whose deadlines bound the library's
// reads and writes, and hands the library small buffers (net/http's are
// 4 KiB each, for the connection's lifetime), the writer over a cork.
type hijacker struct {
	http.ResponseWriter
	pool Buffers // of write buffers
	nc   *wsNetConn
	out  *corkWriter
}

// Hijack hijacks the connection from net/http, whose deadlines it clears.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// What the client sent after its request is in net/http's buffer: it
	// is moved to the new one, whole.
	pending, _ := brw.Reader.Peek(brw.Reader.Buffered())
	pending = bytes.Clone(pending)
	h.nc = &wsNetConn{Conn: nc}
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pending), h.nc), max(wsReadBuffer, len(pending)))
	if len(pending) > 0 {
		if _, err := r.Peek(len(pending)); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	h.out = &corkWriter{nc: nc, pool: h.pool}
	return h.nc, bufio.NewReadWriter(r, bufio.NewWriterSize(h.out, wsWriteBuffer)), nil
}

// Unwrap lets http.ResponseController reach the ResponseWriter underneath.
func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// corkWriter is the writer under the library's. While corked, it gathers
// what the library writes (the writer's messages, and any control frame the
// reader's library calls answer meanwhile) in a buffer from the server's
// pool, and uncork writes it with one write(2); uncorked, it writes at
// once. Writes leave in the order they were made: the library writes each
// frame whole under its own lock, and mu orders the rest.
type corkWriter struct {
	nc   net.Conn
	pool Buffers
	mu   sync.Mutex
	buf  *[]byte // non-nil while corked
}

func (w *corkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf != nil {
		*w.buf = append(*w.buf, p...)
		return len(p), nil
	}
	return w.nc.Write(p)
}

func (w *corkWriter) cork() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf == nil {
		w.buf = w.pool.Get()
	}
}

// uncork writes what was gathered, holding mu meanwhile so that nothing
// written after it overtakes it.
func (w *corkWriter) uncork() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.buf
	if b == nil {
		return nil
	}
	w.buf = nil
	var err error
	if len(*b) > 0 {
		_, err = w.nc.Write(*b)
	}
	w.pool.Put(b)
	return err
}
