package edge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"golang.org/x/time/rate"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/kv"
)

// session is a logged-in player, outliving any one connection by the
// reconnect grace, and an edge restart by its record in the world's state.
type session struct {
	id, player, secret string

	// limiter bounds the session's SENDs; it outlives connections, so a
	// reconnect does not refill it.
	limiter *rate.Limiter

	// version is the protocol version the session runs at, fixed by its
	// LOGIN: at version 2 the client numbers its sends.
	version byte

	// pub serialises the session's event publishes, so that the stream
	// holds them in the order of their sequence numbers even while a
	// reader whose connection was taken over finishes a publish.
	pub     sync.Mutex
	nextSeq uint64 // the next event's sequence number (version 1; the platform's events' dedup ids); guarded by pub
	sent    uint64 // version 2: the number of the client's last send stored; guarded by pub
	region  string // where its events go; guarded by pub
	epoch   uint64 // the record's epoch this edge holds it under; fixed

	mu   sync.Mutex
	conn *conn // nil while disconnected
	// holding: conn is set, but the session's live messages wait in
	// pending, because LOGIN_OK is not queued yet or a replay is under way.
	holding bool
	pending []outItem
	// delivered is the stream sequence of the last message of the session
	// handled for conn; a message at or below it is a duplicate.
	delivered uint64
	// chans are the channels the session is in, by name, with their
	// delivery, as of delivered (while holding, as of the replay's end).
	chans map[string]string
	// areas are the session's interests, by area, as of delivered (while
	// holding, as of the replay's end); cells are the cells of the edge's
	// index it is in (see area.go), guarded by Server.chmu too.
	areas map[string]bus.Interest
	cells map[cellKey]struct{}
	grace *time.Timer
	ended bool
}

// token is what a client presents to resume its session: the session's id
// and a secret, of which the state keeps only a hash.
func (ss *session) token() string { return ss.id + "." + ss.secret }

func parseToken(token string) (id, secret string, ok bool) {
	id, secret, ok = strings.Cut(token, ".")
	return id, secret, ok && bus.ValidName(id) == nil && secret != ""
}

func newSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// sessionRecord is a session as stored in the world's state (see
// bus.SessionKey): enough for any edge to resume it.
type sessionRecord struct {
	Player     string    `json:"player"`
	Region     string    `json:"region"`
	SecretHash string    `json:"secret_hash"`
	Epoch      uint64    `json:"epoch"`       // bumped by every edge that takes the session up
	NextSeq    uint64    `json:"next_seq"`    // the next event's sequence, as of the last suspension
	GraceUntil time.Time `json:"grace_until"` // set while suspended: no edge holds it
	// Version is the session's protocol version (0: version 1).
	Version byte `json:"version,omitempty"`
	// Sent is, at version 2, the number of the client's last send stored,
	// as of the last suspension: a lower bound (see [Server.lastSent]).
	Sent uint64 `json:"sent,omitempty"`
}

// sessionVersion is the protocol version of a session recorded with v.
func sessionVersion(v byte) byte { return max(v, wire.Version1) }

// loginOK is the frame that opens a session on a connection; at version 2
// it tells the number of the client's last send stored.
func (s *Server) loginOK(ss *session) wire.Frame {
	ss.pub.Lock()
	sent := ss.sent
	ss.pub.Unlock()
	return wire.Encode(wire.LoginOK{Version: ss.version, Session: ss.id, Token: ss.token(),
		MaxFrame: uint32(s.MaxFrame), RatePerSecond: uint32(s.RatePerSecond), LastSend: sent})
}

// badVersion is the error of a LOGIN or RECONNECT at a version this edge
// does not speak.
var badVersion = &wire.ProtocolError{Code: wire.CodeBadVersion, Reason: "this edge speaks versions 1 and 2"}

// spoken reports whether the edge speaks protocol version v.
func spoken(v byte) bool { return v == wire.Version1 || v == wire.Version2 }

// login authenticates and creates a session attached to c.
func (s *Server) login(c *conn, m wire.Login) {
	if !spoken(m.Version) {
		c.fail(badVersion)
		return
	}
	addr := addrKey(c.t.RemoteAddr())
	if wait := s.throttle.wait(m.Name, addr, time.Now()); wait > 0 {
		s.stats.throttled.Add(1)
		reason := fmt.Sprintf("too many failed logins; retry in %v", wait.Round(time.Second/10))
		c.send(wire.Encode(wire.LoginFailed{Code: wire.CodeThrottled, Reason: reason}))
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.LoginTimeout)
	defer cancel()
	player, err := s.Auth.Authenticate(ctx, m.Name, m.Password)
	if err != nil {
		code := wire.CodeInternal
		switch {
		case errors.Is(err, ErrBadCredentials):
			code = wire.CodeBadCredentials
			s.stats.badLogins.Add(1)
			byAddr, byName := s.throttle.failed(m.Name, addr, time.Now())
			if byAddr || byName {
				// The line to alert on: someone is guessing passwords.
				s.log.Warn("failed logins throttled", logPlayer, m.Name, logRemote, addr, "by_address", byAddr, "by_name", byName)
			}
		case errors.Is(err, ErrBadName):
			code = wire.CodeBadName
		case errors.Is(err, ErrRegistrationClosed):
			code = wire.CodeNoRegistration
		default:
			s.log.Error("authentication failed", logPlayer, m.Name, logErr, err)
		}
		c.send(wire.Encode(wire.LoginFailed{Code: code, Reason: code.String()}))
		return
	}
	s.throttle.succeeded(m.Name, addr)
	ss := &session{
		id: nuid.Next(), player: player, secret: newSecret(), region: s.Region(player), nextSeq: 1, epoch: 1,
		version: m.Version,
		limiter: rate.NewLimiter(rate.Limit(s.RatePerSecond), s.Burst),
		conn:    c, holding: true, chans: map[string]string{},
		areas: map[string]bus.Interest{}, cells: map[cellKey]struct{}{},
	}
	rec := sessionRecord{Player: player, Region: ss.region, SecretHash: hashSecret(ss.secret), Epoch: ss.epoch, NextSeq: 1}
	if ss.version > wire.Version1 {
		rec.Version = ss.version
	}
	if err := s.store.Update(ctx, func(tx *kv.Tx) error { return tx.Put(bus.SessionKey(ss.id), rec) }); err != nil {
		s.log.Error("session not recorded", logPlayer, player, logErr, err)
		c.send(wire.Encode(wire.LoginFailed{Code: wire.CodeInternal, Reason: "session not recorded"}))
		return
	}
	// The session is known to the delivery before the game hears of it, so
	// that an answer to the login is held, not missed; the live consumer
	// predates every session, so it sees every message to this one.
	s.mu.Lock()
	s.sessions[ss.id] = ss
	s.mu.Unlock()
	if err := s.publish(ss, bus.EventLogin, "", []byte(player)); err != nil {
		s.log.Error("login event not published", logSession, ss.id, logErr, err)
		s.dropSession(ss)
		s.forget(ss) // the game never saw it begin: no disconnect either
		c.send(wire.Encode(wire.LoginFailed{Code: wire.CodeInternal, Reason: "login event not published"}))
		return
	}
	// From here the session ends through detach (the connection's end)
	// and its grace, or a logout.
	c.sess = ss
	c.send(s.loginOK(ss))
	s.release(ss, c)
	s.log.Info("login", logSession, ss.id, logPlayer, player, logRemote, c.t.RemoteAddr())
}

// forget deletes the record of a session the game never heard of.
func (s *Server) forget(ss *session) {
	err := s.store.Update(context.WithoutCancel(s.ctx), func(tx *kv.Tx) error { return tx.Delete(bus.SessionKey(ss.id)) })
	if err != nil {
		s.log.Warn("session record not deleted", logSession, ss.id, logErr, err)
	}
}

// reconnect re-attaches a session in its grace period to c, replaying what
// the client missed. A session this edge does not hold (it was held by an
// edge that has shut down or restarted) is taken up from its record.
func (s *Server) reconnect(c *conn, m wire.Reconnect) {
	if !spoken(m.Version) {
		c.fail(badVersion)
		return
	}
	badToken := wire.Encode(wire.LoginFailed{Code: wire.CodeBadToken, Reason: "unknown or expired token; log in again"})
	id, secret, ok := parseToken(m.Token)
	if !ok {
		c.send(badToken)
		return
	}
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ok, err := s.sentUpTo(ss, m.LastSeq); err != nil {
		s.log.Error("reconnect not checked", logSession, id, logErr, err)
		c.send(wire.Encode(wire.LoginFailed{Code: wire.CodeInternal, Reason: "last-seq not checked; try again"}))
		return
	} else if !ok {
		// Beyond anything the world sent: resumed, the session would drop
		// every message up to it, silently.
		c.send(wire.Encode(wire.LoginFailed{Code: wire.CodeBadLastSeq,
			Reason: fmt.Sprintf("last-seq %d is beyond anything this world has sent; reconnect with the last seq you received", m.LastSeq)}))
		return
	}
	takenUp := func() {}
	if ss == nil {
		// One take-up of a session at a time: a client whose first attempt
		// it gave up on may try again while the edge is still taking the
		// session up for the first.
		var done func()
		if ss, done = s.takingUp(id); done != nil {
			takenUp = done
		}
	}
	var old *conn
	switch {
	case ss != nil && c.relocation():
		// A relocation takes up a session that no edge holds: its key is
		// spent once it has (see relocationKey).
		c.send(badToken)
		return
	case ss != nil:
		if subtle.ConstantTimeCompare([]byte(ss.secret), []byte(secret)) != 1 {
			c.send(badToken)
			return
		}
		if ss.version != m.Version {
			c.fail(sessionVersionError(ss.version))
			return
		}
		if old, ok = s.attach(ss, c, m.LastSeq); !ok {
			c.send(badToken)
			return
		}
	default:
		var err error
		ss, err = s.takeUp(id, secret, c, m, c.relocation())
		takenUp()
		if err != nil {
			var pe *wire.ProtocolError
			switch {
			case errors.As(err, &pe):
				c.fail(pe)
				return
			case !errors.Is(err, errBadToken):
				s.log.Error("session not taken up", logSession, id, logErr, err)
			}
			c.send(badToken)
			return
		}
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
	if ss.version >= wire.Version2 {
		// The client will not send again what it was acknowledged, which
		// only an edge can have done: stored, whatever this edge knows.
		ss.pub.Lock()
		ss.sent = max(ss.sent, m.Acked)
		ss.pub.Unlock()
	}
	c.sess = ss
	c.send(s.loginOK(ss))
	if err := s.replay(ss, c, m.LastSeq); err != nil {
		if !errors.Is(err, errConnGone) {
			s.log.Error("replay failed", logSession, ss.id, logErr, err)
			c.fail(&wire.ProtocolError{Code: wire.CodeInternal, Reason: "missed messages unavailable; reconnect"})
		}
		return
	}
	s.release(ss, c)
	s.log.Info("reconnect", logSession, ss.id, logPlayer, ss.player)
}

// takingUp returns the session id that this edge holds, or, if it holds
// none and takes none up, marks id as being taken up by the caller, until
// done. It waits for another caller's take-up of id to be done.
func (s *Server) takingUp(id string) (ss *session, done func()) {
	for {
		s.mu.Lock()
		ss, wait := s.sessions[id], s.takeUps[id]
		if ss != nil || wait == nil {
			if ss == nil {
				ch := make(chan struct{})
				s.takeUps[id] = ch
				done = func() {
					s.mu.Lock()
					delete(s.takeUps, id)
					s.mu.Unlock()
					close(ch)
				}
			}
			s.mu.Unlock()
			return ss, done
		}
		s.mu.Unlock()
		select {
		case <-wait:
		case <-s.ctx.Done():
			return nil, nil
		}
	}
}

// sentUpTo reports whether last, a RECONNECT's last-seq, can be the
// sequence of a message the world sent: at most the last sequence of the
// world's stream (or of what ss, if set, has queued to its client).
func (s *Server) sentUpTo(ss *session, last uint64) (bool, error) {
	if last == 0 {
		return true, nil
	}
	if ss != nil {
		ss.mu.Lock()
		delivered := ss.delivered
		ss.mu.Unlock()
		if last <= delivered {
			return true, nil
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.LoginTimeout)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return false, err
	}
	return last <= info.State.LastSeq, nil
}

// errBadToken reports a token that matches no live session.
var errBadToken = errors.New("edge: bad token")

// sessionVersionError is the error of a RECONNECT at another version than
// the session's.
func sessionVersionError(v byte) *wire.ProtocolError {
	return &wire.ProtocolError{Code: wire.CodeBadVersion, Reason: fmt.Sprintf("the session runs version %d", v)}
}

// takeUp resumes on this edge a session that no edge holds, from its
// record: the record's epoch moves on, so that the edge that held it
// before cannot end it any more. A relocation takes up only a suspended
// session within its grace.
func (s *Server) takeUp(id, secret string, c *conn, m wire.Reconnect, relocation bool) (*session, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.LoginTimeout)
	defer cancel()
	var rec sessionRecord
	region := ""
	err := s.store.Update(ctx, func(tx *kv.Tx) error {
		if err := tx.Get(ctx, bus.SessionKey(id), &rec); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				return errBadToken
			}
			return err
		}
		if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(rec.SecretHash)) != 1 {
			return errBadToken
		}
		if v := sessionVersion(rec.Version); v != m.Version {
			return sessionVersionError(v)
		}
		if relocation && (rec.GraceUntil.IsZero() || time.Now().After(rec.GraceUntil)) {
			return errBadToken
		}
		if err := tx.Get(ctx, bus.SessionRegionKey(id), &region); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		rec.Epoch++
		rec.GraceUntil = time.Time{}
		return tx.Put(bus.SessionKey(id), rec)
	})
	if err != nil {
		return nil, err
	}
	if region == "" {
		region = rec.Region
	}
	ss := &session{
		id: id, player: rec.Player, secret: secret, region: region, nextSeq: max(rec.NextSeq, 1), epoch: rec.Epoch,
		version: sessionVersion(rec.Version),
		limiter: rate.NewLimiter(rate.Limit(s.RatePerSecond), s.Burst),
		conn:    c, holding: true, delivered: m.LastSeq, chans: map[string]string{},
		areas: map[string]bus.Interest{}, cells: map[cellKey]struct{}{},
	}
	if ss.version >= wire.Version2 {
		if ss.sent, err = s.lastSent(ctx, id, rec.Sent); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	if s.sessions[id] != nil { // taken up by a concurrent reconnect
		s.mu.Unlock()
		return nil, errBadToken
	}
	s.sessions[id] = ss
	s.mu.Unlock()
	return ss, nil
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
// last: its own, and those of the reliable channels it was in when they
// were sent. It waits for room in c's queue rather than failing it. It ends
// at the end of what is stored: anything stored later reaches the live
// dispatch while ss is holding, and waits in pending.
//
// Which channels the session was in at last is not stored anywhere; it is
// derived. The channels it is in now are read from the state first; then
// the notices on its subject after last are scanned: a channel whose
// first notice is a leave was a member at last, one whose first notice is
// a join was not, one with no notice is as it is now. Then the session's
// subject and those channels are read in stream order, membership
// following the notices.
func (s *Server) replay(ss *session, c *conn, last uint64) error {
	ctx, cancel := context.WithTimeout(s.ctx, replayTimeout)
	defer cancel()
	subj, err := s.World.Session(ss.id)
	if err != nil {
		return err
	}
	now := map[string]string{}
	nowAreas := map[string]bus.Interest{}
	err = s.store.View(ctx, func(tx *kv.Tx) error {
		if err := tx.Get(ctx, bus.SessionChannelsKey(ss.id), &now); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return s.readInterests(ctx, tx, ss.id, nowAreas)
	})
	if err != nil {
		return err
	}
	first := map[string]outItem{}     // a channel's first notice after last
	firstArea := map[string]outItem{} // an area's first interest notice after last
	err = s.scan(ctx, []string{subj}, last, func(m jetstream.Msg, seq uint64) (bool, error) {
		it := s.item(m, seq)
		firsts := first
		switch it.kind {
		case itemJoin, itemLeave:
		case itemInterest:
			firsts = firstArea
		default:
			return true, nil
		}
		if _, seen := firsts[it.channel]; !seen {
			firsts[it.channel] = it
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	member := map[string]string{}  // membership as the replay goes
	watched := map[string]string{} // channels the replay reads
	for name, d := range now {
		watched[name] = d
		if _, noticed := first[name]; !noticed {
			member[name] = d
		}
	}
	for name, it := range first {
		watched[name] = it.delivery
		if it.kind == itemLeave {
			member[name] = it.delivery
		}
	}
	// Areas likewise: where the session looked at last, and the areas the
	// replay reads.
	look := map[string]bus.Interest{}
	areas := map[string]string{}
	for name, in := range nowAreas {
		areas[name] = in.Delivery
		if _, noticed := firstArea[name]; !noticed {
			look[name] = in
		}
	}
	for name, it := range firstArea {
		areas[name] = it.interest.Delivery
		if it.interest.Prev != nil {
			look[name] = *it.interest.Prev
		}
	}
	// From here the live dispatch holds back the messages of every channel
	// the replay reads, and the events of the squares the session looks at
	// now, so that none falls between the replay's end and the release.
	ss.mu.Lock()
	for name, d := range watched {
		s.indexAdd(ss, name, d)
	}
	for _, in := range nowAreas {
		s.areaAdd(ss, in)
	}
	ss.mu.Unlock()
	pos, sent := last, 0
	for {
		filter := []string{subj}
		for name, d := range watched {
			if d == bus.DeliveryReliable {
				cs, _ := s.World.Channel(name)
				filter = append(filter, cs)
			}
		}
		for name, d := range areas {
			if d == bus.DeliveryReliable {
				filter = append(filter, s.World.AreaFilter(name))
			}
		}
		restart := false
		err := s.scan(ctx, filter, pos, func(m jetstream.Msg, seq uint64) (bool, error) {
			pos = seq
			it := s.item(m, seq)
			switch it.kind {
			case itemInterest:
				n := it.interest
				if _, ok := areas[n.Area]; !ok {
					areas[n.Area] = n.Delivery
					restart = n.Delivery == bus.DeliveryReliable
				}
				var tell bool
				if it, tell = lookAt(look, it); !tell {
					return !restart, nil
				}
			case itemArea:
				if in, ok := look[it.channel]; !ok || !in.Covers(it.x, it.y) {
					return true, nil
				}
			case itemJoin:
				member[it.channel] = it.delivery
				if _, ok := watched[it.channel]; !ok {
					watched[it.channel] = it.delivery
					ss.mu.Lock()
					s.indexAdd(ss, it.channel, it.delivery)
					ss.mu.Unlock()
					restart = it.delivery == bus.DeliveryReliable
				}
			case itemLeave:
				delete(member, it.channel)
			case itemChannel:
				if _, ok := member[it.channel]; !ok {
					return true, nil
				}
			case itemRegion, itemNone:
				return true, nil
			}
			if !c.sendEncodedWait(ctx, it.encoded()) {
				return false, errConnGone
			}
			sent++
			ss.mu.Lock()
			defer ss.mu.Unlock()
			if ss.conn != c {
				return false, errConnGone
			}
			ss.delivered = max(ss.delivered, seq)
			return !restart, nil
		})
		if err != nil {
			return err
		}
		if !restart {
			break
		}
	}
	ss.mu.Lock()
	ss.chans = member
	ss.areas = look
	ss.delivered = max(ss.delivered, pos)
	ss.mu.Unlock()
	if s.Observer != nil {
		s.Observer.ObserveReplay(sent)
	}
	return nil
}

// scan reads the stored messages on filter after stream sequence after, in
// order, until the end of what is stored or until f says stop.
func (s *Server) scan(ctx context.Context, filter []string, after uint64, f func(m jetstream.Msg, seq uint64) (bool, error)) error {
	return s.scanWith(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filter,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    after + 1,
	}, f)
}

// scanWith reads what an ordered consumer of cfg delivers, in order, until
// the end of what is stored or until f says stop.
func (s *Server) scanWith(ctx context.Context, cfg jetstream.OrderedConsumerConfig, f func(m jetstream.Msg, seq uint64) (bool, error)) error {
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
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
			more, err := f(m, meta.Sequence.Stream)
			if err != nil || !more {
				return err
			}
			caughtUp = meta.NumPending == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if caughtUp {
			return nil
		}
		if n == 0 {
			// No message is not the end: a fetch that waits past a second
			// for its first message (a server under load) ends empty,
			// without an error. The consumer of each fetch, created for it,
			// says what was pending then.
			if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
}

// replayTimeout bounds one replay.
const replayTimeout = 30 * time.Second

// release ends the hold of c on ss: the messages that arrived meanwhile
// are handled, in order, past what was delivered, waiting for room in c's
// queue (but not holding ss.mu meanwhile: the edge's delivery goes on).
func (s *Server) release(ss *session, c *conn) {
	ctx, cancel := context.WithTimeout(s.ctx, replayTimeout)
	defer cancel()
	for {
		ss.mu.Lock()
		if ss.conn != c {
			ss.mu.Unlock()
			return
		}
		if len(ss.pending) == 0 {
			ss.holding = false
			s.indexSync(ss)
			ss.mu.Unlock()
			return
		}
		pending := ss.pending
		ss.pending = nil
		frames := make([][]byte, 0, len(pending))
		for _, it := range pending {
			if f, ok := s.apply(ss, it); ok {
				frames = append(frames, f)
			}
		}
		ss.mu.Unlock()
		for _, f := range frames {
			if !c.sendEncodedWait(ctx, f) {
				c.slow()
				return
			}
		}
	}
}

// apply applies it to ss and returns the frame its client is to receive,
// encoded, if any. ss.mu is held.
func (s *Server) apply(ss *session, it outItem) ([]byte, bool) {
	if it.seq != 0 && it.seq <= ss.delivered {
		return nil, false
	}
	switch it.kind {
	case itemInterest:
		var tell bool
		if it, tell = s.applyInterest(ss, it); !tell {
			return nil, false
		}
	case itemArea:
		if !ss.sees(it) {
			return nil, false
		}
	case itemJoin:
		ss.chans[it.channel] = it.delivery
		s.indexAdd(ss, it.channel, it.delivery)
	case itemLeave:
		delete(ss.chans, it.channel)
		s.indexRemove(ss, it.channel)
	case itemChannel:
		if _, ok := ss.chans[it.channel]; !ok {
			return nil, false
		}
	case itemRegion, itemNone:
		return nil, false
	}
	ss.delivered = max(ss.delivered, it.seq)
	return it.encoded(), true
}

// deliver hands a stored message of the session to it: applied and
// queued, held, or, without a connection, applied and dropped (a
// reconnect replays it from the stream). The writer is woken when fl
// flushes.
func (s *Server) deliver(ss *session, it outItem, fl *flusher) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return
	}
	if ss.holding {
		switch it.kind {
		case itemJoin:
			// Its messages must be held too, from now.
			s.indexAdd(ss, it.channel, it.delivery)
		case itemInterest:
			s.areaAdd(ss, it.interest.Interest)
		}
		if len(ss.pending) >= maxPending*s.OutboundQueue {
			ss.conn.slow()
			return
		}
		ss.pending = append(ss.pending, it)
		return
	}
	f, ok := s.apply(ss, it)
	switch {
	case !ok || ss.conn == nil:
	case it.kind == itemChannel:
		ss.conn.sendLate(f, holdChannel, fl)
	case it.kind == itemArea:
		ss.conn.sendLate(f, holdArea, fl)
	default:
		ss.conn.sendEncoded(f, fl)
	}
}

// maxPending bounds the messages held for a connection while it resumes,
// in multiples of its outbound queue.
const maxPending = 4

// deliverLive hands a best-effort channel message (encoded) to a connected
// session in the channel; otherwise it is dropped.
func (ss *session) deliverLive(wire []byte, fl *flusher) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.conn == nil || ss.holding || ss.ended {
		return
	}
	ss.conn.sendLate(wire, holdChannel, fl)
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
		return // Shutdown suspends every session itself
	}
	var grace *time.Timer
	grace = time.AfterFunc(max(s.ReconnectGrace, 0), func() {
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

// stop marks ss ended and stops its grace, once. It reports false if it
// had ended already.
func (s *Server) stop(ss *session) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return false
	}
	ss.ended = true
	if ss.grace != nil && ss.grace.Stop() {
		s.wg.Done() // the timer's func will not run
	}
	ss.grace = nil
	return true
}

// endSession ends the session, once: its record is deleted and its
// disconnect event published in one transaction, so that however many
// edges try, the game hears of the end once. An edge that no longer holds
// the record's epoch (another took the session up) only forgets it.
func (s *Server) endSession(ctx context.Context, ss *session) {
	if !s.stop(ss) {
		return
	}
	s.dropSession(ss)
	ss.pub.Lock()
	seq := ss.nextSeq
	ss.nextSeq++
	region := ss.region
	ss.pub.Unlock()
	ended, err := s.end(context.WithoutCancel(ctx), ss.id, ss.epoch, region, seq)
	if err != nil {
		s.log.Error("session not ended", logSession, ss.id, logErr, err)
		return
	}
	if ended {
		s.log.Info("session ended", logSession, ss.id, logPlayer, ss.player)
	}
}

// end deletes the record of session id, if it is at epoch (0: any epoch,
// provided no edge holds it), publishes its disconnect event with the same
// commit, and purges the messages no one will read. It reports whether it
// ended the session.
func (s *Server) end(ctx context.Context, id string, epoch uint64, region string, seq uint64) (bool, error) {
	evSubj, err := s.World.Event(region, id)
	if err != nil {
		return false, err
	}
	ended := false
	err = s.store.Update(ctx, func(tx *kv.Tx) error {
		ended = false
		var rec sessionRecord
		if err := tx.Get(ctx, bus.SessionKey(id), &rec); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				return nil
			}
			return err
		}
		if epoch != 0 && rec.Epoch != epoch || epoch == 0 && rec.GraceUntil.IsZero() {
			return nil
		}
		m := nats.NewMsg(evSubj)
		m.Header.Set(bus.HeaderType, bus.EventDisconnect)
		m.Header.Set(bus.HeaderSession, id)
		if sessionVersion(rec.Version) == wire.Version1 {
			// At version 2 the sequence numbers the client's sends alone.
			m.Header.Set(bus.HeaderSeq, strconv.FormatUint(max(seq, rec.NextSeq), 10))
		}
		if err := tx.Publish(m); err != nil {
			return err
		}
		ended = true
		return tx.Delete(bus.SessionKey(id))
	})
	// The worker that handles the disconnect purges the session's
	// messages (an edge may not purge: see bus.RoleEdge).
	return ended, err
}

// suspend leaves a session for another edge (or this one, restarted) to
// take up: its record says until when it may be, and where its event
// numbers stand. The edge that finds it past that time ends it.
func (s *Server) suspend(ctx context.Context, ss *session) error {
	if !s.stop(ss) {
		return nil
	}
	s.dropSession(ss)
	ss.pub.Lock()
	next, sent := ss.nextSeq, ss.sent
	ss.pub.Unlock()
	return s.store.Update(ctx, func(tx *kv.Tx) error {
		var rec sessionRecord
		if err := tx.Get(ctx, bus.SessionKey(ss.id), &rec); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				return nil
			}
			return err
		}
		if rec.Epoch != ss.epoch {
			return nil // taken up elsewhere
		}
		rec.NextSeq, rec.GraceUntil = next, time.Now().Add(max(s.ReconnectGrace, time.Nanosecond))
		rec.Sent = max(rec.Sent, sent)
		return tx.Put(bus.SessionKey(ss.id), rec)
	})
}

// reap ends the suspended sessions whose grace has run out, until ctx
// ends: whichever edge finds one first.
func (s *Server) reap(ctx context.Context) {
	every := min(max(s.ReconnectGrace/2, 50*time.Millisecond), 10*time.Second)
	if s.ReconnectGrace < 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.reapOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) reapOnce(ctx context.Context) {
	type due struct {
		id  string
		rec sessionRecord
	}
	var ended []due
	now := time.Now()
	err := s.sessionRecords(ctx, func(subject string, h nats.Header, data []byte) {
		if bus.IsDelete(h) {
			return
		}
		var rec sessionRecord
		if json.Unmarshal(data, &rec) != nil || rec.GraceUntil.IsZero() || now.Before(rec.GraceUntil) {
			return
		}
		key, _ := s.World.ParseKey(subject)
		ended = append(ended, due{strings.TrimPrefix(key, bus.SessionKey("")), rec})
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("session records not read", logErr, err)
		}
		return
	}
	for _, d := range ended {
		if ok, err := s.end(ctx, d.id, 0, d.rec.Region, d.rec.NextSeq); err != nil {
			s.log.Warn("suspended session not ended", logSession, d.id, logErr, err)
		} else if ok {
			s.log.Info("suspended session ended", logSession, d.id, logPlayer, d.rec.Player)
		}
	}
}

// sessionRecords calls fn with the latest message of every session record:
// from one batched direct get while the server can answer it whole (at most
// 1,024 subjects), otherwise from a consumer delivering each record's last
// message, as many as there are.
func (s *Server) sessionRecords(ctx context.Context, fn func(subject string, h nats.Header, data []byte)) error {
	filter := s.World.SessionRecordsFilter()
	if msgs, err := jetstreamext.GetLastMsgsFor(ctx, s.JS, s.World.Stream(), []string{filter}); err == nil {
		n := 0
		for m, merr := range msgs {
			if err = merr; err != nil {
				break
			}
			fn(m.Subject, m.Header, m.Data)
			n++
		}
		switch {
		case err == nil, errors.Is(err, jetstreamext.ErrNoMessages):
			return nil
		case n > 0:
			return err
		}
		// Refused whole: more records than the server answers at once.
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return s.scanWith(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	}, func(m jetstream.Msg, _ uint64) (bool, error) {
		fn(m.Subject(), m.Headers(), m.Data())
		return true, nil
	})
}

func (s *Server) dropSession(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	s.mu.Unlock()
	ss.mu.Lock()
	s.indexDrop(ss)
	ss.mu.Unlock()
}

// publish turns client activity into an event: ordered per session by
// its sequence number, deduplicated by the server on retry. channel names
// the channel of an EventChannel. At version 2 it publishes the session's
// own events (its login) only: their sequence is not the client's, and
// they carry none.
func (s *Server) publish(ss *session, typ, channel string, data []byte) error {
	ss.pub.Lock()
	defer ss.pub.Unlock()
	subj, err := s.World.Event(ss.region, ss.id)
	if err != nil {
		return err
	}
	// A failed publish uses up its number: it may have been stored after
	// all, and a later event under its dedup id would be dropped.
	seq := ss.nextSeq
	ss.nextSeq++
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(bus.HeaderType, typ)
	m.Header.Set(bus.HeaderSession, ss.id)
	if ss.version == wire.Version1 {
		m.Header.Set(bus.HeaderSeq, strconv.FormatUint(seq, 10))
	}
	if channel != "" {
		m.Header.Set(bus.HeaderChannel, channel)
	}
	// The epoch keeps the ids of an edge that took the session up apart
	// from those of the edge before it.
	id := ss.id + "-" + strconv.FormatUint(ss.epoch, 10) + "-" + strconv.FormatUint(seq, 10)
	_, err = s.publishMsg(m, id)
	return err
}

// publishNumbered publishes a version 2 session's send number seq, the
// one after ss.sent (ss.pub is held), and makes it ss.sent once it is
// stored. Its dedup id is "<session>-s<seq>", the same on every edge and
// at every epoch, so that a send published twice (resent after a lost
// connection while the first publish was still under way, here or on
// another edge) is stored once: the stream's duplicate window covers
// that race (see doc.go, Numbered sends).
func (s *Server) publishNumbered(ss *session, seq uint64, typ, channel string, data []byte) error {
	subj, err := s.World.Event(ss.region, ss.id)
	if err != nil {
		return err
	}
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(bus.HeaderType, typ)
	m.Header.Set(bus.HeaderSession, ss.id)
	m.Header.Set(bus.HeaderSeq, strconv.FormatUint(seq, 10))
	if channel != "" {
		m.Header.Set(bus.HeaderChannel, channel)
	}
	if _, err := s.publishMsg(m, ss.id+"-s"+strconv.FormatUint(seq, 10)); err != nil {
		return err
	}
	ss.sent = seq
	return nil
}

// publishMsg publishes an event with the dedup id id, trying again a few
// times: retries reuse the id, so one that did reach the stream is not
// stored twice.
func (s *Server) publishMsg(m *nats.Msg, id string) (*jetstream.PubAck, error) {
	var ack *jetstream.PubAck
	var err error
	for attempt := range publishAttempts {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		ack, err = s.JS.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil || attempt == publishAttempts-1 {
			break
		}
		t := time.NewTimer(time.Duration(attempt+1) * 50 * time.Millisecond)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return nil, err
		}
	}
	return ack, err
}

// publishAttempts bounds the tries of one event publish.
const publishAttempts = 3

// lastSent returns the number of a version 2 session's last send stored:
// the larger of recorded (the session record's, as of its last
// suspension) and the number on the session's last event still in the
// stream. Events the workers have handled are purged (compaction), so the
// result is a lower bound: what the client sends again below the truth is
// dropped as a duplicate by the stream (see doc.go, Numbered sends).
func (s *Server) lastSent(ctx context.Context, id string, recorded uint64) (uint64, error) {
	filter, err := s.World.PartEventFilter(id)
	if err != nil {
		return 0, err
	}
	m, err := s.stream.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return recorded, nil
	}
	if err != nil {
		return 0, err
	}
	n, _ := strconv.ParseUint(m.Header.Get(bus.HeaderSeq), 10, 64)
	return max(recorded, n), nil
}

// setRegion sends the session's later events to region.
func (ss *session) setRegion(region string) {
	ss.pub.Lock()
	ss.region = region
	ss.pub.Unlock()
}
