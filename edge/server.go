package edge

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"golang.org/x/time/rate"

	"github.com/starbus/starbus/bus"
)

// ErrServerClosed is returned by [Server.Serve] after [Server.Shutdown].
var ErrServerClosed = errors.New("edge: server closed")

// errSessionEnded reports a reconnect that lost the race with its
// session's end.
var errSessionEnded = errors.New("edge: session ended")

// Server is an edge: it holds client connections, logs players in, turns
// what they send into events, and delivers their sessions' messages. Set
// the exported fields, then call Serve; they must not change afterwards.
type Server struct {
	// JS publishes events and reads session messages. Required.
	JS jetstream.JetStream
	// World is the world this edge serves. Required.
	World bus.World
	// Auth authenticates logins. Required.
	Auth Authenticator
	// Region returns the region a player's events go to (default: "r0").
	Region func(player string) string
	// Logger receives the edge's logs (default: discard).
	Logger *slog.Logger

	// MaxFrame bounds a frame's length, opcode included (default 64 KiB).
	MaxFrame int
	// LoginTimeout bounds the time from connect to login (default 10s).
	LoginTimeout time.Duration
	// RatePerSecond and Burst bound the messages a session may send
	// (default 50 per second, burst 100). Over the limit, a message is
	// dropped and answered with an error frame.
	RatePerSecond int
	Burst         int
	// OutboundQueue bounds the frames waiting to be written to one client
	// (default 256). A client that falls further behind (after the
	// kernel's socket buffers have filled too) is disconnected.
	OutboundQueue int
	// WriteTimeout bounds one write to a client (default 10s).
	WriteTimeout time.Duration
	// ReconnectGrace is how long a session outlives its connection,
	// waiting for a reconnect with its token (default 30s). The game's
	// disconnect handler runs when it ends.
	ReconnectGrace time.Duration

	initOnce sync.Once
	stream   jetstream.Stream // set by the first Serve, before any connection
	log      *slog.Logger
	ctx      context.Context // the server's lifetime, for work it owns
	cancel   context.CancelFunc

	// mu guards the maps and closed. Lock order: session.mu before
	// Server.mu; never the reverse.
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	sessions  map[string]*session // by session id
	tokens    map[string]*session // by reconnect token
	closed    bool
	wg        sync.WaitGroup // connection goroutines and grace timers
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		s.log = s.Logger
		if s.Region == nil {
			s.Region = func(string) string { return "r0" }
		}
		if s.MaxFrame <= 0 {
			s.MaxFrame = 64 << 10
		}
		if s.LoginTimeout <= 0 {
			s.LoginTimeout = 10 * time.Second
		}
		if s.RatePerSecond <= 0 {
			s.RatePerSecond = 50
		}
		if s.Burst <= 0 {
			s.Burst = 2 * s.RatePerSecond
		}
		if s.OutboundQueue <= 0 {
			s.OutboundQueue = 256
		}
		if s.WriteTimeout <= 0 {
			s.WriteTimeout = 10 * time.Second
		}
		if s.ReconnectGrace <= 0 {
			s.ReconnectGrace = 30 * time.Second
		}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.sessions = make(map[string]*session)
		s.tokens = make(map[string]*session)
	})
}

// Log attribute keys.
const (
	logSession = "session"
	logPlayer  = "player"
	logRemote  = "remote"
	logErr     = "err"
	logCode    = "code"
)

// Serve accepts connections on l until Shutdown. It always returns a
// non-nil error; after Shutdown, [ErrServerClosed].
func (s *Server) Serve(l net.Listener) error {
	s.init()
	if s.JS == nil || s.Auth == nil || s.World.Name() == "" {
		return errors.New("edge: Server.JS, Server.World and Server.Auth are required")
	}
	st, err := s.JS.Stream(s.ctx, s.World.Stream())
	if err != nil {
		return fmt.Errorf("edge: world stream: %w", err)
	}
	s.mu.Lock()
	if s.stream == nil {
		s.stream = st
	}
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// Shutdown stops accepting, tells every client the edge is going away,
// closes their connections, ends every session (the game's disconnect
// handler runs for each), and waits for the edge's goroutines or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.fail(&ProtocolError{Code: CodeShuttingDown})
	}
	for _, ss := range sessions {
		s.endSession(ctx, ss)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		return ctx.Err()
	}
}

// Sessions returns the number of sessions the edge holds, connected or in
// their reconnect grace.
func (s *Server) Sessions() int {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// session is a logged-in player, outliving any one connection by the
// reconnect grace.
type session struct {
	id, player, token, region string

	mu        sync.Mutex
	nextSeq   uint64 // the next client event's sequence number
	conn      *conn  // nil while disconnected
	delivered uint64 // stream sequence of the last message sent to the client
	delivery  jetstream.ConsumeContext
	grace     *time.Timer
	ended     bool
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// login authenticates and creates a session attached to c.
func (s *Server) login(c *conn, m Login) {
	if m.Version != ProtocolVersion {
		c.fail(&ProtocolError{Code: CodeBadVersion, Reason: fmt.Sprintf("this edge speaks version %d", ProtocolVersion)})
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.LoginTimeout)
	defer cancel()
	player, err := s.Auth.Authenticate(ctx, m.Name, m.Password)
	if err != nil {
		code := CodeInternal
		switch {
		case errors.Is(err, ErrBadCredentials):
			code = CodeBadCredentials
		case errors.Is(err, ErrBadName):
			code = CodeBadName
		case errors.Is(err, ErrRegistrationClosed):
			code = CodeNoRegistration
		default:
			s.log.Error("authentication failed", logPlayer, m.Name, logErr, err)
		}
		c.send(Encode(LoginFailed{Code: code, Reason: code.String()}))
		return
	}
	ss := &session{id: nuid.Next(), player: player, token: newToken(), region: s.Region(player), nextSeq: 1}
	s.mu.Lock()
	s.sessions[ss.id] = ss
	s.tokens[ss.token] = ss
	s.mu.Unlock()
	if err := s.attach(ss, c, 0, true); err != nil {
		s.log.Error("session delivery failed", logSession, ss.id, logErr, err)
		s.dropSession(ss)
		c.send(Encode(LoginFailed{Code: CodeInternal, Reason: "session delivery unavailable"}))
		return
	}
	if err := s.publish(ss, bus.EventLogin, []byte(player)); err != nil {
		s.log.Error("login event not published", logSession, ss.id, logErr, err)
		ss.mu.Lock()
		ss.ended = true // the game never saw it begin: no disconnect either
		ss.mu.Unlock()
		s.detach(ss, c)
		s.dropSession(ss)
		c.send(Encode(LoginFailed{Code: CodeInternal, Reason: "login event not published"}))
		return
	}
	c.sess = ss
	c.send(Encode(LoginOK{Version: ProtocolVersion, Session: ss.id, Token: ss.token,
		MaxFrame: uint32(s.MaxFrame), RatePerSecond: uint32(s.RatePerSecond)}))
	s.log.Info("login", logSession, ss.id, logPlayer, player, logRemote, c.nc.RemoteAddr().String())
}

// reconnect re-attaches a session in its grace period to c, replaying what
// the client missed.
func (s *Server) reconnect(c *conn, m Reconnect) {
	if m.Version != ProtocolVersion {
		c.fail(&ProtocolError{Code: CodeBadVersion, Reason: fmt.Sprintf("this edge speaks version %d", ProtocolVersion)})
		return
	}
	s.mu.Lock()
	ss := s.tokens[m.Token]
	s.mu.Unlock()
	if ss == nil {
		c.send(Encode(LoginFailed{Code: CodeBadToken, Reason: CodeBadToken.String()}))
		return
	}
	ss.mu.Lock()
	old := ss.conn
	ss.mu.Unlock()
	if old != nil {
		// The client reconnected before we noticed the old connection die.
		old.fail(&ProtocolError{Code: CodeAlreadyLoggedIn, Reason: "session resumed elsewhere"})
		s.detach(ss, old)
	}
	if err := s.attach(ss, c, m.LastSeq, false); err != nil {
		if errors.Is(err, errSessionEnded) {
			c.send(Encode(LoginFailed{Code: CodeBadToken, Reason: "the session has ended; log in again"}))
			return
		}
		s.log.Error("session delivery failed", logSession, ss.id, logErr, err)
		c.send(Encode(LoginFailed{Code: CodeInternal, Reason: "session delivery unavailable"}))
		return
	}
	c.sess = ss
	c.send(Encode(LoginOK{Version: ProtocolVersion, Session: ss.id, Token: ss.token,
		MaxFrame: uint32(s.MaxFrame), RatePerSecond: uint32(s.RatePerSecond)}))
	s.log.Info("reconnect", logSession, ss.id, logPlayer, ss.player)
}

// attach makes c the session's connection and starts delivering the
// session's messages after stream sequence last (all new ones if fresh).
func (s *Server) attach(ss *session, c *conn, last uint64, fresh bool) error {
	subj, err := s.World.Session(ss.id)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}}
	switch {
	case fresh:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	case last > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = last + 1
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := s.stream.OrderedConsumer(s.ctx, cfg)
	if err != nil {
		return err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return errSessionEnded
	}
	if ss.grace != nil {
		if ss.grace.Stop() {
			s.wg.Done() // the timer's func will not run
		}
		ss.grace = nil
	}
	ss.conn = c
	// What the client says it received is the truth: frames queued to a
	// connection that was already dead never reached it.
	ss.delivered = last
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		seq := meta.Sequence.Stream
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if ss.conn != c || seq <= ss.delivered {
			return
		}
		if c.send(Encode(Message{Seq: seq, Payload: m.Data()})) {
			ss.delivered = seq
		}
	})
	if err != nil {
		ss.conn = nil
		return err
	}
	ss.delivery = cc
	return nil
}

// detach stops delivering to c and, unless the session has ended, starts
// its reconnect grace.
func (s *Server) detach(ss *session, c *conn) {
	ss.mu.Lock()
	if ss.conn != c {
		ss.mu.Unlock()
		return
	}
	ss.conn = nil
	if ss.delivery != nil {
		ss.delivery.Stop()
		ss.delivery = nil
	}
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closed {
		ss.mu.Unlock()
		return // Shutdown ends every session itself
	}
	ss.grace = time.AfterFunc(s.ReconnectGrace, func() {
		defer s.wg.Done()
		ss.mu.Lock()
		expired := ss.conn == nil && ss.grace != nil
		ss.mu.Unlock()
		if expired {
			s.endSession(s.ctx, ss)
		}
	})
	ss.mu.Unlock()
}

// endSession publishes the session's disconnect event, once, and forgets
// it, purging its undelivered messages.
func (s *Server) endSession(ctx context.Context, ss *session) {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	ss.ended = true
	if ss.grace != nil && ss.grace.Stop() {
		s.wg.Done() // the timer's func will not run
	}
	ss.grace = nil
	if ss.delivery != nil {
		ss.delivery.Stop()
		ss.delivery = nil
	}
	ss.mu.Unlock()
	if err := s.publish(ss, bus.EventDisconnect, nil); err != nil {
		s.log.Error("disconnect event not published", logSession, ss.id, logErr, err)
	}
	s.dropSession(ss)
	if subj, err := s.World.Session(ss.id); err == nil && s.stream != nil {
		_ = s.stream.Purge(context.WithoutCancel(ctx), jetstream.WithPurgeSubject(subj))
	}
	s.log.Info("session ended", logSession, ss.id, logPlayer, ss.player)
}

func (s *Server) dropSession(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss.id)
	delete(s.tokens, ss.token)
	s.mu.Unlock()
}

// publish turns client activity into an event: ordered per session by
// its sequence number, deduplicated by the server on retry.
func (s *Server) publish(ss *session, typ string, data []byte) error {
	subj, err := s.World.Event(ss.region, ss.id)
	if err != nil {
		return err
	}
	ss.mu.Lock()
	seq := ss.nextSeq
	ss.nextSeq++
	ss.mu.Unlock()
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(bus.HeaderType, typ)
	m.Header.Set(bus.HeaderSession, ss.id)
	m.Header.Set(bus.HeaderSeq, strconv.FormatUint(seq, 10))
	id := ss.id + "-" + strconv.FormatUint(seq, 10)
	for attempt := range 3 {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		_, err = s.JS.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if s.ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	return err
}

// conn is one client connection.
type conn struct {
	s       *Server
	nc      net.Conn
	out     chan Frame
	done    chan struct{} // closed when the connection is closing
	once    sync.Once
	sess    *session // set by the reader after login
	limiter *rate.Limiter
}

func (s *Server) newConn(nc net.Conn) *conn {
	return &conn{
		s:       s,
		nc:      nc,
		out:     make(chan Frame, s.OutboundQueue),
		done:    make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(s.RatePerSecond), s.Burst),
	}
}

// send queues f for the client. A client whose queue is full is
// disconnected: it cannot keep up. It reports whether f was queued.
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
		c.fail(&ProtocolError{Code: CodeSlowConsumer, Reason: fmt.Sprintf("more than %d frames waiting", cap(c.out))})
		return false
	}
}

// fail tells the client why, as well as a closing connection allows, and
// closes it.
func (c *conn) fail(e *ProtocolError) {
	c.once.Do(func() {
		close(c.done)
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.nc.Write(AppendFrame(nil, Encode(ErrorInfo{Code: e.Code, Reason: e.Error()})))
		c.nc.Close()
		if e.Code != CodeShuttingDown {
			c.s.log.Info("client disconnected", logRemote, c.nc.RemoteAddr().String(), logCode, e.Code.String(), logErr, e.Reason)
		}
	})
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// serve runs the connection: this goroutine reads, a second one writes;
// serve returns after both have ended.
func (c *conn) serve() {
	s := c.s
	defer s.wg.Done()
	var writer sync.WaitGroup
	writer.Go(c.writeLoop)
	defer func() {
		c.close()
		writer.Wait()
		if c.sess != nil {
			s.detach(c.sess, c)
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	_ = c.nc.SetReadDeadline(time.Now().Add(s.LoginTimeout))
	r := bufio.NewReaderSize(c.nc, 4096)
	for {
		f, err := ReadFrame(r, s.MaxFrame)
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, ErrFrameTooLarge):
				c.fail(&ProtocolError{Code: CodeFrameTooLarge, Reason: err.Error()})
			case errors.Is(err, ErrMalformed):
				c.fail(&ProtocolError{Code: CodeMalformed, Reason: err.Error()})
			case c.sess == nil && errors.As(err, &ne) && ne.Timeout():
				c.fail(&ProtocolError{Code: CodeLoginTimeout, Reason: fmt.Sprintf("no login within %v", s.LoginTimeout)})
			case errors.Is(err, io.ErrUnexpectedEOF):
				c.s.log.Info("truncated frame", logRemote, c.nc.RemoteAddr().String())
			default:
				c.s.log.Debug("connection read ended", logRemote, c.nc.RemoteAddr().String(), logErr, err)
			}
			return
		}
		if !c.handle(f) {
			return
		}
	}
}

// handle acts on one frame; false ends the connection.
func (c *conn) handle(f Frame) bool {
	s := c.s
	v, err := Decode(f)
	if err != nil {
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			pe = &ProtocolError{Code: CodeMalformed, Reason: err.Error()}
		}
		c.send(Encode(ErrorInfo{Code: pe.Code, Reason: pe.Error()}))
		return true
	}
	if c.sess == nil {
		switch m := v.(type) {
		case Login:
			s.login(c, m)
		case Reconnect:
			s.reconnect(c, m)
		case Ping:
			c.send(Encode(Pong(m)))
			return true
		default:
			c.send(Encode(ErrorInfo{Code: CodeNotLoggedIn, Reason: "log in first"}))
			return true
		}
		if c.sess != nil {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		select {
		case <-c.done:
			return false
		default:
			return true
		}
	}
	switch m := v.(type) {
	case Send:
		if !c.limiter.Allow() {
			c.send(Encode(ErrorInfo{Code: CodeRateLimited, Reason: fmt.Sprintf("over %d messages per second; message dropped", s.RatePerSecond)}))
			return true
		}
		if err := s.publish(c.sess, bus.EventMessage, m.Payload); err != nil {
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
		c.closeAfterFlush()
	case Login, Reconnect:
		c.send(Encode(ErrorInfo{Code: CodeAlreadyLoggedIn, Reason: CodeAlreadyLoggedIn.String()}))
	case ChannelSend:
		c.send(Encode(ErrorInfo{Code: CodeUnsupported, Reason: "channel messages from clients are not served by this edge"}))
	default:
		c.send(Encode(ErrorInfo{Code: CodeUnsupported, Reason: fmt.Sprintf("opcode 0x%02x is server-to-client", f.Op)}))
	}
	return true
}

// closeAfterFlush lets the writer send what is queued, then closes.
func (c *conn) closeAfterFlush() {
	c.send(Frame{Op: opFlushAndClose})
}

// opFlushAndClose is an internal marker in the outbound queue, never sent.
const opFlushAndClose byte = 0x00

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 4096)
	var buf []byte
	for {
		var f Frame
		select {
		case f = <-c.out:
		case <-c.done:
			return
		}
		for {
			if f.Op == opFlushAndClose {
				_ = w.Flush()
				c.close()
				return
			}
			buf = AppendFrame(buf[:0], f)
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.WriteTimeout))
			if _, err := w.Write(buf); err != nil {
				c.close()
				return
			}
			select {
			case f = <-c.out:
				continue
			default:
			}
			break
		}
		if err := w.Flush(); err != nil {
			c.close()
			return
		}
	}
}
