package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/starbus/starbus/bus"
)

// conn is one client connection. Its reader goroutine (serve) starts and
// joins its writer goroutine (writeLoop). Only the writer writes to the
// socket; the reader closes it, after the writer has ended.
//
// Closing (shut) is a signal, never a wait: it closes done, bounds the
// writer's remaining writes by closeWait, and sets the reader's deadline,
// so that both goroutines end on their own.
type conn struct {
	s        *Server
	nc       net.Conn
	out      chan Frame    // frames for the writer, bounded
	done     chan struct{} // closed when the connection is closing
	readDone chan struct{} // closed when the reader has handled its last frame

	once   sync.Once
	final  *Frame        // written last by the writer; set before done is closed
	drain  bool          // the writer writes what is queued before final
	linger time.Duration // how long the reader goes on reading once closing

	dl sync.Mutex // orders deadlines set by the goroutines and by shut

	sess *session // the reader's: set at login
}

func (s *Server) newConn(nc net.Conn) *conn {
	return &conn{
		s:        s,
		nc:       nc,
		out:      make(chan Frame, s.OutboundQueue),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
}

// closeWait bounds the writing of the last frames of a closing connection.
const closeWait = time.Second

// takeoverLinger is how long the reader of a connection taken over by a
// RECONNECT goes on reading: what the client sent on it before it
// reconnected is handled, in order, before anything sent on the new one.
// A client that closed the old connection ends it sooner: its reader
// reads to the end of what was sent. The new connection waits for the old
// reader, so this is also the longest a RECONNECT waits for a connection
// that is still open (or whose end the edge has not seen).
const takeoverLinger = time.Second

// send queues f for the client. A client whose queue is full is
// disconnected: it cannot keep up. It reports whether f was queued. It
// never blocks.
func (c *conn) send(f Frame) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.out <- f:
		return true
	default:
		c.slow()
		return false
	}
}

// slow disconnects a client that cannot keep up with its messages.
func (c *conn) slow() {
	f := errorFrame(&ProtocolError{Code: CodeSlowConsumer, Reason: fmt.Sprintf("more than %d frames waiting", cap(c.out))})
	if c.shut(f, false, 0) {
		c.s.log.Info("client disconnected", logRemote, c.nc.RemoteAddr().String(), logCode, CodeSlowConsumer.String())
	}
}

// sendWait queues f for the client, waiting for room. It reports false if
// the connection closes or ctx ends first.
func (c *conn) sendWait(ctx context.Context, f Frame) bool {
	select {
	case c.out <- f:
		return true
	case <-c.done:
		return false
	case <-ctx.Done():
		return false
	}
}

func errorFrame(e *ProtocolError) *Frame {
	f := Encode(ErrorInfo{Code: e.Code, Reason: e.Error()})
	return &f
}

// fail closes the connection with an error frame, written after what is
// already queued. It never blocks.
func (c *conn) fail(e *ProtocolError) {
	if c.shut(errorFrame(e), true, 0) && e.Code != CodeShuttingDown {
		c.s.log.Info("client disconnected", logRemote, c.nc.RemoteAddr().String(), logCode, e.Code.String(), logErr, e.Reason)
	}
}

// takeOver closes a connection whose session a RECONNECT has resumed: it
// is told why, and what it already received is still handled (see
// takeoverLinger).
func (c *conn) takeOver() {
	c.shut(errorFrame(&ProtocolError{Code: CodeAlreadyLoggedIn, Reason: "session resumed elsewhere"}), true, takeoverLinger)
}

// close closes the connection without another frame.
func (c *conn) close() { c.shut(nil, false, 0) }

// shut starts closing the connection, once: the writer writes final (and,
// if drain, what is queued before it) within closeWait, and the reader
// stops reading after linger. It reports whether this call closed it.
func (c *conn) shut(final *Frame, drain bool, linger time.Duration) bool {
	closed := false
	c.once.Do(func() {
		c.final, c.drain, c.linger = final, drain, linger
		close(c.done)
		c.dl.Lock()
		now := time.Now()
		_ = c.nc.SetWriteDeadline(now.Add(closeWait))
		_ = c.nc.SetReadDeadline(now.Add(linger))
		c.dl.Unlock()
		closed = true
	})
	return closed
}

// closing reports whether shut was called.
func (c *conn) closing() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// armWrite sets the deadline of the writer's next write: WriteTimeout, or
// what is left of closeWait once the connection is closing.
func (c *conn) armWrite() {
	c.dl.Lock()
	defer c.dl.Unlock()
	if !c.closing() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.WriteTimeout))
	}
}

// setReadDeadline sets the reader's deadline, unless the connection is
// closing (shut has set it then).
func (c *conn) setReadDeadline(t time.Time) {
	c.dl.Lock()
	defer c.dl.Unlock()
	if !c.closing() {
		_ = c.nc.SetReadDeadline(t)
	}
}

// serve runs the connection: this goroutine reads, a second one writes;
// serve returns after both have ended.
func (c *conn) serve() {
	s := c.s
	defer s.wg.Done()
	var writer sync.WaitGroup
	writer.Go(c.writeLoop)
	defer func() {
		close(c.readDone)
		c.close()
		writer.Wait()
		c.nc.Close()
		if c.sess != nil {
			s.detach(c.sess, c)
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.setReadDeadline(time.Now().Add(s.LoginTimeout))
	r := bufio.NewReaderSize(c.nc, 1024)
	for {
		f, err := ReadFrame(r, s.MaxFrame)
		if err != nil {
			var ne net.Error
			switch {
			case c.closing():
			case errors.Is(err, ErrFrameTooLarge):
				c.fail(&ProtocolError{Code: CodeFrameTooLarge, Reason: err.Error()})
			case errors.Is(err, ErrMalformed):
				c.fail(&ProtocolError{Code: CodeMalformed, Reason: err.Error()})
			case c.sess == nil && errors.As(err, &ne) && ne.Timeout():
				c.fail(&ProtocolError{Code: CodeLoginTimeout, Reason: fmt.Sprintf("no login within %v", s.LoginTimeout)})
			case errors.Is(err, io.ErrUnexpectedEOF):
				s.log.Info("truncated frame", logRemote, c.nc.RemoteAddr().String())
			default:
				s.log.Debug("connection read ended", logRemote, c.nc.RemoteAddr().String(), logErr, err)
			}
			return
		}
		if c.closing() && c.linger == 0 {
			return // c.linger was set before done was closed
		}
		c.handle(f)
	}
}

// handle acts on one frame.
func (c *conn) handle(f Frame) {
	s := c.s
	v, err := Decode(f)
	if err != nil {
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			pe = &ProtocolError{Code: CodeMalformed, Reason: err.Error()}
		}
		c.send(Encode(ErrorInfo{Code: pe.Code, Reason: pe.Error()}))
		return
	}
	if c.sess == nil {
		switch m := v.(type) {
		case Login:
			s.login(c, m)
		case Reconnect:
			s.reconnect(c, m)
		case Ping:
			c.send(Encode(Pong(m)))
			return
		default:
			c.send(Encode(ErrorInfo{Code: CodeNotLoggedIn, Reason: "log in first"}))
			return
		}
		if c.sess != nil {
			c.setReadDeadline(time.Time{})
		}
		return
	}
	switch m := v.(type) {
	case Send:
		if !c.sess.limiter.Allow() {
			c.send(Encode(ErrorInfo{Code: CodeRateLimited, Reason: fmt.Sprintf("over %d messages per second; message dropped", s.RatePerSecond)}))
			return
		}
		if err := s.publish(c.sess, bus.EventMessage, "", m.Payload); err != nil {
			s.log.Error("event not published", logSession, c.sess.id, logErr, err)
			c.send(Encode(ErrorInfo{Code: CodeInternal, Reason: "message not accepted; send it again"}))
		}
	case Ping:
		c.send(Encode(Pong(m)))
	case Logout:
		ss := c.sess
		s.detach(ss, c)
		s.endSession(s.ctx, ss)
		c.sess = nil
		c.send(Encode(LogoutOK{}))
		// The writer closes the connection once LogoutOK is out; this
		// reader then ends on the closed connection.
		c.send(Frame{Op: opFlushAndClose})
	case Login, Reconnect:
		c.send(Encode(ErrorInfo{Code: CodeAlreadyLoggedIn, Reason: CodeAlreadyLoggedIn.String()}))
	case ChannelSend:
		if err := bus.ValidName(m.Channel); err != nil {
			c.send(Encode(ErrorInfo{Code: CodeMalformed, Reason: fmt.Sprintf("channel %q: not a channel name", m.Channel)}))
			return
		}
		if !c.sess.limiter.Allow() {
			c.send(Encode(ErrorInfo{Code: CodeRateLimited, Reason: fmt.Sprintf("over %d messages per second; message dropped", s.RatePerSecond)}))
			return
		}
		if err := s.publish(c.sess, bus.EventChannel, m.Channel, m.Payload); err != nil {
			s.log.Error("event not published", logSession, c.sess.id, logErr, err)
			c.send(Encode(ErrorInfo{Code: CodeInternal, Reason: "message not accepted; send it again"}))
		}
	default:
		c.send(Encode(ErrorInfo{Code: CodeUnsupported, Reason: fmt.Sprintf("opcode 0x%02x is server-to-client", f.Op)}))
	}
}

// opFlushAndClose is an internal marker in the outbound queue, never sent:
// the writer closes the connection once what precedes it is written.
const opFlushAndClose byte = 0x00

// writeLoop writes queued frames, flushing when the queue is empty, until
// the connection closes; then it writes the last frames and half-closes
// the socket, so the client reads them and then the end.
func (c *conn) writeLoop() {
	defer func() {
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	w := bufio.NewWriterSize(c.nc, 4096)
	var buf []byte
	put := func(f Frame) error {
		buf = AppendFrame(buf[:0], f)
		_, err := w.Write(buf)
		return err
	}
	for {
		select {
		case f := <-c.out:
			c.armWrite()
			var err error
			for err == nil {
				if f.Op == opFlushAndClose {
					_ = w.Flush()
					c.close()
					return
				}
				if err = put(f); err != nil {
					break
				}
				select {
				case f = <-c.out:
					continue
				default:
				}
				err = w.Flush()
				break
			}
			if err != nil { // the stream may end mid-frame: nothing more
				c.close()
				return
			}
		case <-c.done:
			// c.final and c.drain were set before done was closed.
			if c.drain {
				for len(c.out) > 0 {
					if f := <-c.out; f.Op == opFlushAndClose || put(f) != nil {
						break
					}
				}
			}
			if c.final != nil {
				_ = put(*c.final)
			}
			_ = w.Flush()
			return
		}
	}
}
