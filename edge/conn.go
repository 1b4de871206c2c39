package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge/internal/link"
	"github.com/starbus/starbus/edge/wire"
)

// conn is one client connection, over a [transport] (TCP or WebSocket).
// Its reader goroutine (serve) joins its writer goroutine (writeLoop).
// Only the writer writes to the transport; the reader closes it, after the
// writer has ended.
//
// Frames for the client are encoded straight into one byte buffer, out,
// the way nats-server queues a client's outbound data: the writer takes
// the whole buffer and writes it with one write(2), however many frames it
// holds (a WebSocket transport turns it into one message per frame, still
// written with one write(2)), while senders fill the next one. A sender starts the writer only
// if none is running, and a dispatcher that queues frames to many
// connections starts them once at the end of its burst (see flusher), so a
// burst costs each connection one write, not one per frame.
//
// An idle connection holds no write buffer and no writer: out comes from
// the server's pool and goes back once written, and the writer ends when
// it has nothing left to write (a parked goroutine would keep its stack;
// with tens of thousands of idle sessions that is most of their cost).
// Starting a goroutine per burst costs about what waking a parked one
// does.
//
// Closing (shut) is a signal, never a wait: it closes done, bounds the
// writer's remaining writes by closeWait, and sets the reader's deadline,
// so that both goroutines end on their own.
type conn struct {
	s        *Server
	t        transport
	done     chan struct{} // closed when the connection is closing
	readDone chan struct{} // closed when the reader has handled its last frame

	// mu guards the outbound queue and the writer's start. It is taken
	// after session.mu, and no lock is taken while it is held.
	mu      sync.Mutex
	out     *[]byte           // encoded frames waiting for the writer; nil when none
	queued  int               // the world's frames in out, bounded by Server.OutboundQueue
	answers int               // answers to the client's frames in out, bounded by Server.OutboundQueue
	running bool              // a writer goroutine runs (or has ended for good, once shutting)
	due     bool              // out is not empty and a flusher (or the sender) will start the writer
	late    [holdClasses]bool // a flusher's late list of each class holds c: it will start the writer after the class's delay
	taken   time.Duration     // when the writer last took out, on the server's clock (Server.now)
	closer  bool              // nothing more is queued: the writer closes once out is written (LOGOUT)
	room    chan struct{}     // closed when the writer takes out; made by a waiting sender
	// shutting is set by shut: no writer is started after it, so that the
	// reader's wait for the writer is final.
	shutting bool
	writer   sync.WaitGroup

	once   sync.Once
	final  *wire.ProtocolError // its error frame is written last by the writer; set before done is closed
	drain  bool                // the writer writes what is queued before final
	linger time.Duration       // how long the reader goes on reading once closing

	dl       sync.Mutex // orders deadlines set by the goroutines and by shut
	writeDue time.Time  // the write deadline armWrite last set; under dl

	sess    *session // the reader's: set at login
	unacked int      // the reader's: numbered sends stored since the last ACK
}

func (s *Server) newConn(t transport) *conn {
	c := &conn{
		s:        s,
		t:        t,
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
	if b, ok := t.(interface{ bind(*conn) }); ok {
		b.bind(c)
	}
	return c
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

// send queues f, an answer to the client's own frame (a PONG, an error,
// a LOGIN_OK, an ACK), and starts the writer. Only the reader calls it.
// Answers are counted apart from the world's frames: while
// Server.OutboundQueue answers wait, send waits for the writer to take
// them, and the reader reads nothing meanwhile, so a client that pipelines
// requests is slowed down by TCP's flow control (or WebSocket's), never
// disconnected for what it asked; a client that does not read at all is
// disconnected by the write timeout, or as a slow consumer once the
// world's frames fill the queue. It reports whether f was queued: false
// once the connection is closing.
func (c *conn) send(f wire.Frame) bool {
	return c.queueWait(nil, wire.AppendFrame(nil, f), true)
}

// sendEncoded queues a frame of the world (a MESSAGE, a channel notice or
// message), already encoded (length prefix included), such as one encoded
// once for all the members of a channel. It is copied. With fl set, the
// writer is woken when fl flushes, at the end of the caller's burst;
// otherwise now. A client whose queue of world frames is full is
// disconnected: it cannot keep up. It reports whether the frame was
// queued. It never blocks.
func (c *conn) sendEncoded(wire []byte, fl *flusher) bool {
	return c.sendWorld(wire, fl, 0, holdChannel)
}

// sendLate queues a frame fanned out to many clients, of class k, as
// sendEncoded does, except that if the connection was written to within
// the class's delay, the writer may start as late as that delay after
// fl's burst (see flusher): what else comes for the connection meanwhile
// shares its write. A frame queued by any other means starts the writer
// at once, and whatever is queued goes with it.
func (c *conn) sendLate(wire []byte, k holdClass, fl *flusher) bool {
	if fl == nil {
		return c.sendWorld(wire, nil, 0, k)
	}
	return c.sendWorld(wire, fl, fl.now, k)
}

// sendWorld queues a frame of the world for sendEncoded (late 0) and
// sendLate (late: the burst's start, see offer).
func (c *conn) sendWorld(wire []byte, fl *flusher, late time.Duration, k holdClass) bool {
	queued, wake, room := c.offer(wire, false, late, k)
	if room != nil {
		c.slow()
	}
	switch wake {
	case startNow:
		fl.wake(c)
	case startLate:
		fl.wakeLate(c, k)
	}
	return queued
}

// start is what the caller of offer is to do for the writer.
type start uint8

const (
	startNone start = iota // nothing: a writer runs, or one is due to start
	startNow               // start it (at the end of the caller's burst)
	startLate              // put c on a flusher's late list
)

// offer appends an encoded frame to out, if the connection takes frames
// and its queue has room: room for answers to the client's frames if
// answer, otherwise room for the world's frames. wake: what the caller is
// to do for the writer; startLate only for a frame that may wait (late,
// the server's clock now, not zero) to a connection written to within the
// delay of its class k, which no late list of a delay as short holds yet.
// room, when the queue is full: closed once the writer has taken what is
// queued.
func (c *conn) offer(wire []byte, answer bool, late time.Duration, k holdClass) (queued bool, wake start, room chan struct{}) {
	if c.closing() {
		return false, startNone, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closer {
		return false, startNone, nil
	}
	n := &c.queued
	if answer {
		n = &c.answers
	}
	if *n >= c.s.OutboundQueue {
		if c.room == nil {
			c.room = make(chan struct{})
		}
		return false, startNone, c.room
	}
	if c.out == nil {
		c.out = c.s.getBuf()
	}
	*c.out = append(*c.out, wire...)
	*n++
	if c.running || c.due {
		return true, startNone, nil
	}
	if d := c.s.holdFor(k); late != 0 && late-c.taken < d {
		for j, held := range c.late {
			if held && c.s.holdFor(holdClass(j)) <= d {
				return true, startNone, nil // a list as soon as this one holds c
			}
		}
		c.late[k] = true
		return true, startLate, nil
	}
	c.due = true
	return true, startNow, nil
}

// signal starts the writer, unless it runs or the connection is shutting
// (shut started the last one).
func (c *conn) signal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.due = false
	c.startWriter()
}

// signalLate starts the writer for what the late list of class k held c
// for, unless it runs, another start is due, or the frames have been
// written already.
func (c *conn) signalLate(k holdClass) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.late[k] = false
	if c.due || c.out == nil {
		return
	}
	c.startWriter()
}

// startWriter starts the writer if none runs. c.mu is held.
func (c *conn) startWriter() {
	if c.running || c.shutting {
		return
	}
	c.running = true
	c.writer.Go(c.writeLoop)
}

// slow disconnects a client that cannot keep up with its messages.
func (c *conn) slow() {
	e := &wire.ProtocolError{Code: wire.CodeSlowConsumer, Reason: fmt.Sprintf("more than %d frames waiting", c.s.OutboundQueue)}
	if c.shut(e, false, 0) {
		c.s.stats.slow.Add(1)
		c.s.log.Info("client disconnected", logRemote, c.t.RemoteAddr(), logCode, wire.CodeSlowConsumer.String())
	}
}

// sendEncodedWait queues an encoded frame of the world for the client,
// waiting for room. It reports false if the connection closes or ctx ends
// first.
func (c *conn) sendEncodedWait(ctx context.Context, wire []byte) bool {
	return c.queueWait(ctx.Done(), wire, false)
}

// queueWait queues an encoded frame, an answer or the world's, waiting
// for room. It reports false if the connection closes or stop is closed
// first.
func (c *conn) queueWait(stop <-chan struct{}, wire []byte, answer bool) bool {
	for {
		queued, wake, room := c.offer(wire, answer, 0, holdChannel)
		if wake == startNow {
			c.signal()
		}
		if queued || room == nil {
			return queued
		}
		select {
		case <-room:
		case <-c.done:
			return false
		case <-stop:
			return false
		}
	}
}

// flushAndClose closes the connection once what is queued is written:
// after a LOGOUT_OK. Nothing is queued after it.
func (c *conn) flushAndClose() {
	c.mu.Lock()
	c.closer = true
	c.startWriter()
	c.mu.Unlock()
}

// flusher defers the start of writers to the end of a burst: a
// dispatcher that queues frames to many connections, for several messages
// back to back, starts each writer once, when it has queued them all, so
// that each connection gets one write for the burst. It belongs to one
// goroutine. A nil flusher starts them at once.
//
// Frames fanned out to many clients (sendLate) to a connection written to
// within their class's delay wait longer, on the class's late list, which
// the dispatcher flushes that delay after the burst that began it (see
// Server.FanoutDelay and Server.AreaDelay): a player in a busy spot gets
// the moves and words of its neighbours each in a different burst, and
// without the delay each would be a write(2) of its own, and a read(2)
// for the client. A quiet connection's frame does not wait, so the delay
// costs latency only where it saves writes: a busy connection is written
// to about once per delay. A frame for the client alone starts the writer
// at the end of its burst, taking the late frames along, and so does the
// flush of a shorter delay's list.
type flusher struct {
	conns []*conn
	late  [holdClasses][]*conn
	now   time.Duration // the burst's start on the server's clock, for sendLate; 0: none may wait
}

// holdClass is a class of frames fanned out to many clients, each with
// its own delay (Server.holdFor).
type holdClass uint8

const (
	holdChannel holdClass = iota // a channel's message: Server.FanoutDelay
	holdArea                     // an area's event: Server.AreaDelay
	holdClasses
)

// wake starts c's writer now (fl nil) or at the next flush.
func (fl *flusher) wake(c *conn) {
	if fl == nil {
		c.signal()
		return
	}
	fl.conns = append(fl.conns, c)
}

// wakeLate starts c's writer at the next flushLate of class k. Only a
// flusher's burst queues late frames: fl is not nil.
func (fl *flusher) wakeLate(c *conn, k holdClass) {
	fl.late[k] = append(fl.late[k], c)
}

// flush starts the writers of the burst.
func (fl *flusher) flush() {
	for i, c := range fl.conns {
		c.signal()
		fl.conns[i] = nil
	}
	fl.conns = fl.conns[:0]
}

// flushLate starts the writers of class k's late list.
func (fl *flusher) flushLate(k holdClass) {
	for i, c := range fl.late[k] {
		c.signalLate(k)
		fl.late[k][i] = nil
	}
	fl.late[k] = fl.late[k][:0]
}

func errorFrame(e *wire.ProtocolError) wire.Frame {
	return wire.Encode(wire.ErrorInfo{Code: e.Code, Reason: e.Error()})
}

// fail closes the connection with an error frame, written after what is
// already queued. It never blocks.
func (c *conn) fail(e *wire.ProtocolError) {
	if c.shut(e, true, 0) && e.Code != wire.CodeShuttingDown {
		c.s.log.Info("client disconnected", logRemote, c.t.RemoteAddr(), logCode, e.Code.String(), logErr, e.Reason)
	}
}

// takeOver closes a connection whose session a RECONNECT has resumed: it
// is told why, and what it already received is still handled (see
// takeoverLinger).
func (c *conn) takeOver() {
	c.shut(&wire.ProtocolError{Code: wire.CodeAlreadyLoggedIn, Reason: "session resumed elsewhere"}, true, takeoverLinger)
}

// close closes the connection without another frame.
func (c *conn) close() { c.shut(nil, false, 0) }

// shut starts closing the connection, once: the writer writes final's
// error frame (and, if drain, what is queued before it) within closeWait,
// and the reader stops reading after linger. It reports whether this call
// closed it.
func (c *conn) shut(final *wire.ProtocolError, drain bool, linger time.Duration) bool {
	closed := false
	c.once.Do(func() {
		c.final, c.drain, c.linger = final, drain, linger
		close(c.done)
		c.dl.Lock()
		now := time.Now()
		_ = c.t.SetWriteDeadline(now.Add(closeWait))
		_ = c.t.SetReadDeadline(now.Add(linger))
		c.dl.Unlock()
		// The last writer writes the last frames; one that runs sees done.
		c.mu.Lock()
		c.startWriter()
		c.shutting = true
		c.mu.Unlock()
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

// armWrite sets the deadline of the writer's next write, WriteTimeout
// from now, unless the one already set is at least half of WriteTimeout
// away: a write that blocks is given between half of WriteTimeout and
// all of it. Setting a deadline is a lock and a timer's update in the
// runtime, and a busy connection is written to every few milliseconds:
// once per write it took 2% of the edge's process at 1,000 players. Once
// the connection is closing, shut has set the deadline (closeWait).
func (c *conn) armWrite() {
	c.dl.Lock()
	defer c.dl.Unlock()
	if c.closing() {
		return
	}
	now := time.Now()
	if c.writeDue.Sub(now) >= c.s.WriteTimeout/2 {
		return
	}
	c.writeDue = now.Add(c.s.WriteTimeout)
	_ = c.t.SetWriteDeadline(c.writeDue)
}

// setReadDeadline sets the reader's deadline, unless the connection is
// closing (shut has set it then).
func (c *conn) setReadDeadline(t time.Time) {
	c.dl.Lock()
	defer c.dl.Unlock()
	if !c.closing() {
		_ = c.t.SetReadDeadline(t)
	}
}

// serve runs the connection: this goroutine reads, writers write; serve
// returns after the last writer has ended.
//
// An idle connection's cost is mostly this goroutine's stack, blocked in
// a read: the garbage collector halves a stack only while less than a
// quarter of it is in use, so serve's own frame is kept small (the rest
// is in end, readFailed and handle) to let it shrink back to 4 KiB after
// the deep calls of a login. For the same reason the transports' read
// buffers are small (see readBuffer).
func (c *conn) serve() {
	defer c.end()
	c.setReadDeadline(time.Now().Add(c.s.LoginTimeout))
	for {
		f, err := c.t.ReadFrame(c.s.MaxFrame)
		if c.closing() && c.linger == 0 {
			return // c.linger was set before done was closed
		}
		if err != nil {
			if c.readFailed(err) {
				continue
			}
			return
		}
		c.handle(f)
	}
}

// end ends the connection once its reader has.
func (c *conn) end() {
	s := c.s
	defer s.wg.Done()
	close(c.readDone)
	c.close()
	c.writer.Wait() // no writer starts after close has returned
	c.t.Close(c.final)
	if c.sess != nil {
		s.detach(c.sess, c)
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// readFailed answers, or logs, a read's error. It reports whether the
// reading goes on: after a bad message, the next message is a frame
// again.
func (c *conn) readFailed(err error) bool {
	s := c.s
	var ne net.Error
	var bad *link.BadMessage
	switch {
	case c.closing():
	case errors.As(err, &bad):
		c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeMalformed, Reason: bad.Error()}))
		return true
	case errors.Is(err, wire.ErrFrameTooLarge):
		c.fail(&wire.ProtocolError{Code: wire.CodeFrameTooLarge, Reason: err.Error()})
	case c.sess == nil && errors.As(err, &ne) && ne.Timeout():
		c.fail(&wire.ProtocolError{Code: wire.CodeLoginTimeout, Reason: fmt.Sprintf("no login within %v", s.LoginTimeout)})
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.log.Info("truncated frame", logRemote, c.t.RemoteAddr())
	default:
		s.log.Debug("connection read ended", logRemote, c.t.RemoteAddr(), logErr, err)
	}
	return false
}

// handle acts on one frame.
func (c *conn) handle(f wire.Frame) {
	s := c.s
	v, err := wire.Decode(f)
	if err != nil {
		var pe *wire.ProtocolError
		if !errors.As(err, &pe) {
			pe = &wire.ProtocolError{Code: wire.CodeMalformed, Reason: err.Error()}
		}
		c.send(wire.Encode(wire.ErrorInfo{Code: pe.Code, Reason: pe.Error()}))
		return
	}
	if c.sess == nil {
		switch m := v.(type) {
		case wire.Login:
			s.login(c, m)
			s.stats.countLogin(c.sess != nil)
		case wire.Reconnect:
			s.reconnect(c, m)
		case wire.Ping:
			c.send(wire.Encode(wire.Pong(m)))
			return
		default:
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeNotLoggedIn, Reason: "log in first"}))
			return
		}
		if c.sess != nil {
			c.setReadDeadline(time.Time{})
		}
		return
	}
	numbered := c.sess.version >= wire.Version2
	switch m := v.(type) {
	case wire.Send:
		if numbered {
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeUnsupported, Reason: "a version 2 session numbers its sends: SEQ_SEND"}))
			return
		}
		if !c.sess.limiter.Allow() {
			s.stats.rateLimited.Add(1)
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeRateLimited, Reason: fmt.Sprintf("over %d messages per second; message dropped", s.RatePerSecond)}))
			return
		}
		if err := s.publish(c.sess, bus.EventMessage, "", m.Payload); err != nil {
			s.log.Error("event not published", logSession, c.sess.id, logErr, err)
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeInternal, Reason: "message not accepted; send it again"}))
		}
	case wire.SeqSend:
		if !numbered {
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeUnsupported, Reason: "SEQ_SEND is version 2; this session runs version 1"}))
			return
		}
		c.sendNumbered(m.Seq, bus.EventMessage, "", m.Payload)
	case wire.Ping:
		c.send(wire.Encode(wire.Pong(m)))
	case wire.Logout:
		ss := c.sess
		s.detach(ss, c)
		s.endSession(s.ctx, ss)
		c.sess = nil
		c.send(wire.Encode(wire.LogoutOK{}))
		// The writer closes the connection once LogoutOK is out; this
		// reader then ends on the closed connection.
		c.flushAndClose()
	case wire.Login, wire.Reconnect:
		c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeAlreadyLoggedIn, Reason: wire.CodeAlreadyLoggedIn.String()}))
	case wire.ChannelSend:
		if numbered {
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeUnsupported, Reason: "a version 2 session numbers its sends: SEQ_CHANNEL_SEND"}))
			return
		}
		if err := bus.ValidName(m.Channel); err != nil {
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeMalformed, Reason: fmt.Sprintf("channel %q: not a channel name", m.Channel)}))
			return
		}
		if !c.sess.limiter.Allow() {
			s.stats.rateLimited.Add(1)
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeRateLimited, Reason: fmt.Sprintf("over %d messages per second; message dropped", s.RatePerSecond)}))
			return
		}
		if err := s.publish(c.sess, bus.EventChannel, m.Channel, m.Payload); err != nil {
			s.log.Error("event not published", logSession, c.sess.id, logErr, err)
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeInternal, Reason: "message not accepted; send it again"}))
		}
	case wire.SeqChannelSend:
		if !numbered {
			c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeUnsupported, Reason: "SEQ_CHANNEL_SEND is version 2; this session runs version 1"}))
			return
		}
		c.sendNumbered(m.Seq, bus.EventChannel, m.Channel, m.Payload)
	default:
		c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeUnsupported, Reason: fmt.Sprintf("opcode 0x%02x is server-to-client", f.Op)}))
	}
}

// ackEvery bounds the numbered sends a connection stores between two
// ACKs.
const ackEvery = 64

// sendNumbered handles a version 2 send numbered seq: one at or below the
// last stored is a duplicate, dropped; one beyond the next is out of
// order, and closes the connection; the next waits for the rate limit
// (the reader reads nothing meanwhile: the client is slowed down, its
// sends are not dropped), then is published. A send that cannot be stored
// closes the connection with ERROR internal: the client reconnects and
// sends it again, so that no later send overtakes it. A CHANNEL_SEND to a
// name that is not a channel's uses up its number, stores nothing, and is
// answered ERROR malformed. The client is acknowledged (ACK) once the
// reader has nothing more buffered, or every ackEvery sends.
func (c *conn) sendNumbered(seq uint64, typ, channel string, payload []byte) {
	s, ss := c.s, c.sess
	// next reports whether seq is the next send; ss.pub is held.
	next := func() (bool, *wire.ProtocolError) {
		switch {
		case seq <= ss.sent:
			return false, nil // stored already: the client did not know yet
		case seq > ss.sent+1:
			return false, &wire.ProtocolError{Code: wire.CodeOutOfOrder,
				Reason: fmt.Sprintf("send %d after %d; reconnect and send from %d", seq, ss.sent, ss.sent+1)}
		}
		return true, nil
	}
	ss.pub.Lock()
	ok, bad := next()
	if ok && typ == bus.EventChannel && bus.ValidName(channel) != nil {
		ss.sent = seq // used up: nothing to store
		ss.pub.Unlock()
		c.send(wire.Encode(wire.ErrorInfo{Code: wire.CodeMalformed, Reason: fmt.Sprintf("channel %q: not a channel name; send %d dropped", channel, seq)}))
		c.ackSoon()
		return
	}
	ss.pub.Unlock()
	if !ok {
		if bad != nil {
			c.fail(bad)
		}
		return
	}
	if !c.waitRate(ss.limiter) {
		return
	}
	ss.pub.Lock()
	if ok, bad = next(); !ok {
		ss.pub.Unlock()
		if bad != nil {
			c.fail(bad)
		}
		return
	}
	err := s.publishNumbered(ss, seq, typ, channel, payload)
	ss.pub.Unlock()
	if err != nil {
		s.log.Error("event not published", logSession, ss.id, logErr, err)
		c.fail(&wire.ProtocolError{Code: wire.CodeInternal, Reason: fmt.Sprintf("send %d not stored; reconnect and send it again", seq)})
		return
	}
	c.ackSoon()
}

// ackSoon counts a stored send and acknowledges what is stored if the
// client has sent nothing more yet, or if ackEvery sends wait for it.
func (c *conn) ackSoon() {
	c.unacked++
	if c.unacked < ackEvery && c.t.Buffered() > 0 {
		return
	}
	c.unacked = 0
	ss := c.sess
	ss.pub.Lock()
	sent := ss.sent
	ss.pub.Unlock()
	c.send(wire.Encode(wire.Ack{Seq: sent}))
}

// waitRate waits until l allows one more send, or the connection closes
// (false).
func (c *conn) waitRate(l *rate.Limiter) bool {
	r := l.Reserve()
	d := r.Delay()
	if d == 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		r.Cancel()
		return false
	}
}

// maxPooledBuf bounds the write buffers kept for reuse: a buffer grown by
// a large burst is left to the garbage collector rather than kept.
const maxPooledBuf = 64 << 10

// getBuf returns an empty write buffer from the server's pool.
func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}

// bufPool lends the server's write buffers to its WebSocket transports.
type bufPool struct{ s *Server }

func (p bufPool) Get() *[]byte  { return p.s.getBuf() }
func (p bufPool) Put(b *[]byte) { p.s.putBuf(b) }

// putBuf returns a write buffer to the pool.
func (s *Server) putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	s.bufs.Put(b)
}

// writeLoop writes the queued frames, everything queued at once, until
// there are none; it ends then, and the next frame starts another. Once
// the connection is closing it writes the last frames and closes the
// transport's writing side, so the client reads them and then the end.
func (c *conn) writeLoop() {
	for {
		if c.closing() {
			c.writeLast()
			return
		}
		c.mu.Lock()
		n := c.queued + c.answers // frames, the world's and answers
		b := c.take()
		if b == nil {
			switch {
			case c.closer: // LOGOUT: what it queued is out
				c.mu.Unlock()
				c.close()
			case c.shutting: // shut saw this writer run: it writes the last frames
				c.mu.Unlock()
			default:
				c.running = false
				c.mu.Unlock()
				return
			}
			c.writeLast()
			return
		}
		c.mu.Unlock()
		c.armWrite()
		err := c.t.Write(*b)
		c.s.putBuf(b)
		if err != nil { // the stream may end mid-frame: nothing more
			c.close()
			c.t.CloseWrite()
			return
		}
		c.s.stats.frames.Add(uint64(n))
		c.s.stats.writes.Add(1)
	}
}

// take hands out to the writer, making room for the senders. c.mu is
// held.
func (c *conn) take() *[]byte {
	b := c.out
	if b != nil && c.s.holds() {
		c.taken = c.s.now()
	}
	c.out, c.queued, c.answers = nil, 0, 0
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
	return b
}

// writeLast writes the connection's last frames: what is queued, if
// c.drain, then c.final. c.final and c.drain were set before done was
// closed; a LOGOUT's close has neither.
func (c *conn) writeLast() {
	c.mu.Lock()
	n := c.queued + c.answers
	b := c.take()
	c.closer = true // nothing more is queued
	c.mu.Unlock()
	if b == nil {
		b = c.s.getBuf()
	}
	if !c.drain {
		*b, n = (*b)[:0], 0
	}
	if c.final != nil {
		*b, n = wire.AppendFrame(*b, errorFrame(c.final)), n+1
	}
	if len(*b) > 0 {
		if err := c.t.Write(*b); err == nil {
			c.s.stats.frames.Add(uint64(n))
		}
	}
	c.s.putBuf(b)
	c.t.CloseWrite()
}
