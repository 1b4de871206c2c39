package edge

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"golang.org/x/time/rate"

	"github.com/starbus/starbus/bus"
)

// session is a logged-in player, outliving any one connection by the
// reconnect grace.
type session struct {
	id, player, token, region string

	// limiter bounds the session's SENDs; it outlives connections, so a
	// reconnect does not refill it.
	limiter *rate.Limiter

	// pub serialises the session's event publishes, so that the stream
	// holds them in the order of their sequence numbers even while a
	// reader whose connection was taken over finishes a publish.
	pub     sync.Mutex
	nextSeq uint64 // the next event's sequence number; guarded by pub

	mu   sync.Mutex
	conn *conn // nil while disconnected
	// holding: conn is set, but the session's live messages wait in
	// pending, because LOGIN_OK is not queued yet or a replay is under way.
	holding bool
	pending []Message
	// delivered is the stream sequence of the last message queued to
	// conn; a message at or below it is a duplicate.
	delivered uint64
	grace     *time.Timer
	ended     bool
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loginOK is the frame that opens a session on a connection.
func (s *Server) loginOK(ss *session) Frame {
	return Encode(LoginOK{Version: ProtocolVersion, Session: ss.id, Token: ss.token,
		MaxFrame: uint32(s.MaxFrame), RatePerSecond: uint32(s.RatePerSecond)})
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
	ss := &session{
		id: nuid.Next(), player: player, token: newToken(), region: s.Region(player), nextSeq: 1,
		limiter: rate.NewLimiter(rate.Limit(s.RatePerSecond), s.Burst),
		conn:    c, holding: true,
	}
	// The session is known to the delivery before the game hears of it, so
	// that an answer to the login is held, not missed; the live consumer
	// predates every session, so it sees every message to this one.
	s.mu.Lock()
	s.sessions[ss.id] = ss
	s.tokens[ss.token] = ss
	s.mu.Unlock()
	if err := s.publish(ss, bus.EventLogin, []byte(player)); err != nil {
		s.log.Error("login event not published", logSession, ss.id, logErr, err)
		s.dropSession(ss) // the game never saw it begin: no disconnect either
		c.send(Encode(LoginFailed{Code: CodeInternal, Reason: "login event not published"}))
		return
	}
	// From here the session ends through detach (the connection's end)
	// and its grace, or a logout.
	c.sess = ss
	c.send(s.loginOK(ss))
	s.release(ss, c)
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
	badToken := Encode(LoginFailed{Code: CodeBadToken, Reason: "unknown or expired token; log in again"})
	if ss == nil {
		c.send(badToken)
		return
	}
	old, ok := s.attach(ss, c, m.LastSeq)
	if !ok {
		c.send(badToken)
		return
	}
	if old != nil {
		// What the old connection had received comes first.
		<-old.readDone
		ss.mu.Lock()
		ended := ss.ended
		ss.mu.Unlock()
		if ended { // it held a LOGOUT
			c.send(badToken)
			return
		}
	}
	c.sess = ss
	c.send(s.loginOK(ss))
	if err := s.replay(ss, c, m.LastSeq); err != nil {
		if !errors.Is(err, errConnGone) {
			s.log.Error("replay failed", logSession, ss.id, logErr, err)
			c.fail(&ProtocolError{Code: CodeInternal, Reason: "missed messages unavailable; reconnect"})
		}
		return
	}
	s.release(ss, c)
	s.log.Info("reconnect", logSession, ss.id, logPlayer, ss.player)
}

// attach makes c the holding connection of ss, whose client has received
// the messages up to stream sequence last. A connection the session had
// is taken over and returned: the client reconnected before the edge
// noticed the old connection die. It reports false for a session that has
// ended.
func (s *Server) attach(ss *session, c *conn, last uint64) (old *conn, ok bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return nil, false
	}
	if ss.grace != nil {
		if ss.grace.Stop() {
			s.wg.Done() // the timer's func will not run
		}
		ss.grace = nil
	}
	if old = ss.conn; old != nil {
		old.takeOver()
	}
	// What the client says it received is the truth: frames queued to a
	// connection that was already dead never reached it.
	ss.conn, ss.holding, ss.pending, ss.delivered = c, true, nil, last
	return old, true
}

// replayBatch is how many stored messages one replay fetch asks for.
const replayBatch = 256

// replay queues to c the session's stored messages after stream sequence
// last, waiting for room in c's queue rather than failing it. It ends at
// the end of what is stored: anything stored later reaches the live
// consumer while ss is holding, and waits in pending.
func (s *Server) replay(ss *session, c *conn, last uint64) error {
	subj, err := s.World.Session(ss.id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, replayTimeout)
	defer cancel()
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    last + 1,
	})
	if err != nil {
		return err
	}
	for {
		batch, err := cons.FetchNoWait(replayBatch)
		if err != nil {
			return err
		}
		n, caughtUp := 0, false
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			if !c.sendWait(ctx, Encode(Message{Seq: meta.Sequence.Stream, Payload: m.Data()})) {
				return errConnGone
			}
			ss.mu.Lock()
			if ss.conn != c {
				ss.mu.Unlock()
				return errConnGone
			}
			ss.delivered = max(ss.delivered, meta.Sequence.Stream)
			ss.mu.Unlock()
			caughtUp = meta.NumPending == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if n == 0 || caughtUp {
			return nil
		}
	}
}

// replayTimeout bounds one replay.
const replayTimeout = 30 * time.Second

// release ends the hold of c on ss: the messages that arrived meanwhile
// are queued, in order, past what was delivered.
func (s *Server) release(ss *session, c *conn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.conn != c {
		return
	}
	for _, m := range ss.pending {
		if m.Seq <= ss.delivered {
			continue
		}
		if !c.send(Encode(m)) {
			break
		}
		ss.delivered = m.Seq
	}
	ss.holding, ss.pending = false, nil
}

// deliver hands a message of the session, at stream sequence seq, to its
// connection: queued, held, or dropped when there is no connection (a
// reconnect replays it from the stream) or it was delivered already.
func (ss *session) deliver(seq uint64, payload []byte) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c := ss.conn
	if c == nil || seq <= ss.delivered {
		return
	}
	if ss.holding {
		if len(ss.pending) >= cap(c.out) {
			c.slow()
			return
		}
		ss.pending = append(ss.pending, Message{Seq: seq, Payload: payload})
		return
	}
	if c.send(Encode(Message{Seq: seq, Payload: payload})) {
		ss.delivered = seq
	}
}

// detach forgets c as the session's connection and, unless the session
// has ended, starts its reconnect grace.
func (s *Server) detach(ss *session, c *conn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.conn != c {
		return
	}
	ss.conn, ss.holding, ss.pending = nil, false, nil
	if ss.ended {
		return
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closed {
		return // Shutdown ends every session itself
	}
	var grace *time.Timer
	grace = time.AfterFunc(s.ReconnectGrace, func() {
		defer s.wg.Done()
		ss.mu.Lock()
		// Not expired if a reconnect came first, even one that has since
		// lost its connection again and started another grace.
		expired := ss.conn == nil && ss.grace == grace
		ss.mu.Unlock()
		if expired {
			s.endSession(s.ctx, ss)
		}
	})
	ss.grace = grace
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
	ss.mu.Unlock()
	s.dropSession(ss)
	if err := s.publish(ss, bus.EventDisconnect, nil); err != nil {
		s.log.Error("disconnect event not published", logSession, ss.id, logErr, err)
	}
	if subj, err := s.World.Session(ss.id); err == nil {
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
	ss.pub.Lock()
	defer ss.pub.Unlock()
	// A failed publish uses up its number: it may have been stored after
	// all, and a later event under its dedup id would be dropped.
	seq := ss.nextSeq
	ss.nextSeq++
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(bus.HeaderType, typ)
	m.Header.Set(bus.HeaderSession, ss.id)
	m.Header.Set(bus.HeaderSeq, strconv.FormatUint(seq, 10))
	id := ss.id + "-" + strconv.FormatUint(seq, 10)
	// Retries reuse the message id: one that did reach the stream is not
	// stored twice.
	for attempt := range publishAttempts {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		_, err = s.JS.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil || attempt == publishAttempts-1 {
			break
		}
		t := time.NewTimer(time.Duration(attempt+1) * 50 * time.Millisecond)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return err
		}
	}
	return err
}

// publishAttempts bounds the tries of one event publish.
const publishAttempts = 3

// startDelivery starts the edge's live consumer: every message stored on
// a session subject from now on, dispatched to the sessions of this edge.
func (s *Server) startDelivery(ctx context.Context) (jetstream.ConsumeContext, error) {
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.World.SessionFilter()},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, err
	}
	return cons.Consume(s.dispatch, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.Warn("session delivery", logErr, err)
	}))
}

// dispatch is the live consumer's callback.
func (s *Server) dispatch(m jetstream.Msg) {
	id, ok := s.World.ParseSession(m.Subject())
	if !ok {
		return
	}
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil {
		return // another edge's session, or one that has ended
	}
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	ss.deliver(meta.Sequence.Stream, m.Data())
}
