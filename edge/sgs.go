package edge

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/starbus/starbus/edge/internal/link"
	"github.com/starbus/starbus/edge/sgs"
	"github.com/starbus/starbus/edge/wire"
)

// ServeSGS accepts connections of Darkstar clients on l, speaking
// SimpleSgsProtocol version 5 (package [sgs]; PROTOCOL.md,
// "SimpleSgsProtocol"), until Shutdown. They are served as [Server.Serve]
// serves TCP connections, in the same world, sessions and channels: each
// SimpleSgs message is translated to its Starbus frame and back, on a
// transport under the same conn. It always returns a non-nil error; after
// Shutdown, [ErrServerClosed].
//
// An edge that serves SimpleSgs announces itself to the world's other
// such edges (bus.World.Edges), so that it can redirect logins to them
// (SGSMaxSessions) and relocate its sessions to them ([Server.Drain]).
func (s *Server) ServeSGS(l net.Listener) error {
	return s.serve(l, func(nc net.Conn) transport { return newSGSTransport(s, nc) },
		func() { s.startPeers(l.Addr()) })
}

// Drain moves this edge's SimpleSgs sessions to other edges, then shuts
// the edge down ([Server.Shutdown]). Each logged-in SimpleSgs client is
// sent SUSPEND_MESSAGES; once it answers SUSPEND_MESSAGES_COMPLETE (within
// SuspendTimeout), its session is suspended and it is sent
// RELOCATE_NOTIFICATION, naming the least loaded other edge and a
// relocation key; its RELOCATE_REQUEST there resumes the same session,
// with its channels and the messages it had not received. A client that
// does not answer in time, or that no other edge can take, is treated as
// Shutdown treats every client. Starbus clients are too: they reconnect
// by themselves. New SimpleSgs logins meanwhile are redirected to another
// edge where there is one.
func (s *Server) Drain(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.draining = true
	var moving []*sgsTransport
	for c := range s.conns {
		if t, ok := c.t.(*sgsTransport); ok && t.counted.Load() {
			moving = append(moving, t)
		}
	}
	s.mu.Unlock()
	select {
	case s.announceNow <- struct{}{}:
	default:
	}
	sf, _ := rawFrame(sgs.SuspendMessages{}) // no content: it encodes
	suspend := wire.AppendFrame(nil, sf)
	var waits []*sgsTransport
	for _, t := range moving {
		target, ok := s.peers.pick(time.Now(), -1)
		if !ok {
			s.log.Warn("no edge to relocate SimpleSgs sessions to", "sessions", len(moving)-len(waits))
			break
		}
		t.mu.Lock()
		t.target = target
		t.mu.Unlock()
		if t.c.sendEncodedWait(ctx, suspend) {
			waits = append(waits, t)
		}
	}
	timeout := time.NewTimer(s.SuspendTimeout)
	defer timeout.Stop()
	moved := 0
wait:
	for _, t := range waits {
		select {
		case <-t.moved:
			moved++
		case <-t.c.done:
		case <-timeout.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	if len(waits) > 0 {
		s.log.Info("SimpleSgs sessions relocated", "relocated", moved, "sessions", len(moving))
	}
	return s.Shutdown(ctx)
}

// relocate moves the session of c, whose client has suspended its
// messages, to the edge at target: every message c's client sent is
// stored (this is its reader, and it read SUSPEND_MESSAGES_COMPLETE after
// them), so the session is suspended with what it has delivered, and the
// client is told where to resume it and with what key. Only c's reader
// calls it.
func (s *Server) relocate(c *conn, t *sgsTransport, target string) {
	ss := c.sess
	host, port, ok := hostPort(target)
	if ss == nil || !ok {
		return
	}
	ss.mu.Lock()
	if ss.conn != c {
		ss.mu.Unlock()
		return
	}
	// From here the session's messages are the new edge's to replay, from
	// last: they are not queued to c.
	last := ss.delivered
	ss.conn, ss.holding, ss.pending = nil, false, nil
	ss.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.LoginTimeout)
	defer cancel()
	if err := s.suspend(ctx, ss); err != nil {
		// Its record may not say it is suspended, so no edge would take
		// it up by a key: the client is closed, and the session is left as
		// an edge that dies leaves its sessions (doc.go, Sessions).
		s.log.Error("session not suspended for relocation", logSession, ss.id, logErr, err)
		c.close()
		return
	}
	c.sess = nil
	f, err := rawFrame(sgs.RelocateNotification{Host: host, Port: port, RelocationKey: relocationKey(ss.token(), last)})
	if err != nil {
		s.log.Error("relocation not sent", logSession, ss.id, logErr, err)
		c.close()
		return
	}
	c.send(f)
	c.flushAndClose()
	close(t.moved)
	s.log.Info("session relocated", logSession, ss.id, logPlayer, ss.player, "to", target)
}

// redirect returns where a SimpleSgs login is to go instead of this edge,
// if anywhere: a less loaded edge, when this one is at SGSMaxSessions or
// draining.
func (s *Server) redirect() (string, bool) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	n := int(s.sgsSessions.Load())
	switch {
	case draining:
		return s.peers.pick(time.Now(), -1)
	case s.SGSMaxSessions > 0 && n >= s.SGSMaxSessions:
		return s.peers.pick(time.Now(), n)
	}
	return "", false
}

// Relocation keys. A RELOCATE_NOTIFICATION's key is the session's token
// (unguessable: see session.token) and the stream sequence of the last
// message the client was sent, after a format byte. It is single use and
// bounded in time: an edge takes a session up by it only while the
// session is suspended (see Server.takeUp), which its first use ends, and
// only within its grace.
const relocationKeyFormat = 1

func relocationKey(token string, last uint64) []byte {
	b := binary.BigEndian.AppendUint64([]byte{relocationKeyFormat}, last)
	return append(b, token...)
}

func parseRelocationKey(key []byte) (token string, last uint64, ok bool) {
	if len(key) < 10 || key[0] != relocationKeyFormat || !utf8.Valid(key[9:]) {
		return "", 0, false
	}
	return string(key[9:]), binary.BigEndian.Uint64(key[1:9]), true
}

// opRaw is an edge-internal opcode: a frame whose body is a whole message
// of the connection's own protocol, which the sgsTransport writes as is
// (SUSPEND_MESSAGES, RELOCATE_NOTIFICATION, LOGIN_REDIRECT have no
// Starbus frame). It is never on a Starbus wire.
const opRaw byte = 0xff

// rawFrame is m, encoded, in an opRaw frame.
func rawFrame(m sgs.Message) (wire.Frame, error) {
	b, err := sgs.Append(nil, m)
	return wire.Frame{Op: opRaw, Body: b}, err
}

// errSGSDone ends a SimpleSgs connection after a frame that ends it: a
// LOGIN_FAILURE or RELOCATE_FAILURE, after which Darkstar's server
// closes the connection.
var errSGSDone = errors.New("edge: SimpleSgs connection done")

// sgsTransport is SimpleSgsProtocol version 5 over TCP: it reads the
// client's messages and hands the conn the Starbus frames they mean, and
// writes the conn's Starbus frames as the SimpleSgs messages they mean
// (PROTOCOL.md, "SimpleSgsProtocol"). What has no Starbus frame is
// handled here: the version checks, LOGIN_REDIRECT, the suspension that
// precedes a relocation, the messages Darkstar drops.
//
// ReadFrame runs in the conn's reader, so it may use the conn's reader
// state (c.sess) and queue answers (c.send).
type sgsTransport struct {
	*link.TCP // the byte stream: CloseWrite, deadlines, RemoteAddr, Buffered
	nc        net.Conn
	r         *bufio.Reader // the stream's, read through
	s         *Server
	c         *conn

	// suspended: the client has sent SUSPEND_MESSAGES_COMPLETE; its
	// messages are dropped from then. The reader's.
	suspended bool
	// relocating: the last login the reader handed the conn was a
	// RELOCATE_REQUEST, so its answer is RELOCATE_SUCCESS or _FAILURE.
	relocating atomic.Bool
	// counted: the connection has a session, counted in s.sgsSessions.
	counted atomic.Bool

	mu     sync.Mutex
	target string // set by Drain: where the session goes

	moved chan struct{} // closed by the reader once the client has been told where
}

var _ transport = (*sgsTransport)(nil)

func newSGSTransport(s *Server, nc net.Conn) *sgsTransport {
	tcp := link.NewTCP(nc)
	t := &sgsTransport{TCP: tcp, s: s, moved: make(chan struct{})}
	t.nc, t.r = tcp.Stream()
	return t
}

// bind ties the transport to its conn, before the conn's reader starts.
func (t *sgsTransport) bind(c *conn) { t.c = c }

// ReadFrame reads SimpleSgs messages until one means a Starbus frame. A
// malformed message, an unknown opcode, a server-to-client opcode, a
// RECONNECT_REQUEST, a version other than 5 or a LOGOUT_REQUEST before
// login end the connection, as they do on Darkstar's server; a session or
// channel message before login, or after SUSPEND_MESSAGES_COMPLETE, and a
// channel message to a channel the session is not in, are dropped.
func (t *sgsTransport) ReadFrame(max int) (wire.Frame, error) {
	for {
		f, err := sgs.ReadFrame(t.r)
		if err != nil {
			if errors.Is(err, sgs.ErrTooLong) || errors.Is(err, sgs.ErrMalformed) {
				return wire.Frame{}, t.violation(err)
			}
			return wire.Frame{}, err
		}
		if 1+len(f.Content) > max {
			return wire.Frame{}, fmt.Errorf("%w: %d bytes, limit %d", wire.ErrFrameTooLarge, 1+len(f.Content), max)
		}
		m, err := sgs.Decode(f)
		if err != nil {
			return wire.Frame{}, t.violation(err)
		}
		ss := t.c.sess
		switch m := m.(type) {
		case sgs.LoginRequest:
			if err := checkVersion(m.Version); err != nil {
				return wire.Frame{}, t.violation(err)
			}
			if ss != nil {
				continue // undefined by the protocol: ignored
			}
			if to, ok := t.s.redirect(); ok {
				host, port, _ := hostPort(to) // the peer table holds valid addresses only
				if f, err := rawFrame(sgs.LoginRedirect{Host: host, Port: port}); err == nil {
					t.c.send(f)
					t.c.flushAndClose()
					t.s.log.Info("login redirected", logRemote, t.RemoteAddr(), "to", to)
					continue
				}
			}
			t.relocating.Store(false)
			return wire.Encode(wire.Login{Version: wire.Version1, Name: m.Name, Password: m.Password}), nil
		case sgs.RelocateRequest:
			if err := checkVersion(m.Version); err != nil {
				return wire.Frame{}, t.violation(err)
			}
			if ss != nil {
				continue
			}
			token, last, ok := parseRelocationKey(m.RelocationKey)
			if !ok {
				token, last = "", 0 // a bad key is a bad token: RELOCATE_FAILURE
			}
			t.relocating.Store(true)
			return wire.Encode(wire.Reconnect{Version: wire.Version1, Token: token, LastSeq: last}), nil
		case sgs.SessionMessage:
			if ss == nil || t.suspended {
				continue
			}
			return wire.Encode(wire.Send{Payload: m.Message}), nil
		case sgs.ChannelMessage:
			if ss == nil || t.suspended {
				continue
			}
			name := string(m.ID)
			if !ss.member(name) {
				t.s.log.Debug("channel message dropped: not a member", logSession, ss.id, "channel", name)
				continue
			}
			return wire.Encode(wire.ChannelSend{Channel: name, Payload: m.Message}), nil
		case sgs.LogoutRequest:
			if ss == nil {
				return wire.Frame{}, io.EOF // Darkstar closes: there is nothing to log out of
			}
			return wire.Encode(wire.Logout{}), nil
		case sgs.SuspendMessagesComplete:
			t.mu.Lock()
			target := t.target
			t.mu.Unlock()
			if ss != nil && target != "" && !t.suspended {
				t.suspended = true
				t.s.relocate(t.c, t, target)
			}
			continue
		default: // the server's own opcodes, and RECONNECT_REQUEST
			return wire.Frame{}, t.violation(fmt.Errorf("%w: opcode 0x%02x is not a client's", sgs.ErrUnknownOpcode, f.Op))
		}
	}
}

// checkVersion refuses a LOGIN_REQUEST's or RELOCATE_REQUEST's version
// other than 5: Darkstar pins it.
func checkVersion(v byte) error {
	if v != sgs.Version {
		return fmt.Errorf("protocol version %d; this edge speaks %d", v, sgs.Version)
	}
	return nil
}

// violation logs a client's breach of the protocol, which ends its
// connection, and returns err.
func (t *sgsTransport) violation(err error) error {
	t.s.log.Info("SimpleSgs client disconnected", logRemote, t.RemoteAddr(), logErr, err)
	return err
}

// Write translates a burst of Starbus frames and writes it with one
// write(2). A message the SimpleSgs protocol cannot carry (over its
// 65,535-byte limit) is dropped and logged. After a LOGIN_FAILURE or
// RELOCATE_FAILURE it returns errSGSDone, which closes the connection.
func (t *sgsTransport) Write(b []byte) error {
	buf := t.s.getBuf() // lent for the burst, as the conn's own buffers are
	defer t.s.putBuf(buf)
	out := *buf
	defer func() { *buf = out[:0] }()
	var done error
	for len(b) >= wire.HeaderLen && done == nil {
		n := int(binary.BigEndian.Uint32(b))
		if n < 1 || n > len(b)-wire.HeaderLen {
			return errors.New("edge: SimpleSgs: a burst ends inside a frame")
		}
		f := wire.Frame{Op: b[wire.HeaderLen], Body: b[wire.HeaderLen+1 : wire.HeaderLen+n]}
		b = b[wire.HeaderLen+n:]
		if f.Op == opRaw {
			out = append(out, f.Body...)
			continue
		}
		m, end := t.translate(f)
		if m == nil {
			continue
		}
		var err error
		if out, err = sgs.Append(out, m); err != nil {
			t.s.log.Warn("message not sent to a SimpleSgs client", logRemote, t.RemoteAddr(), logErr, err)
		}
		if end {
			done = errSGSDone
		}
	}
	if len(out) == 0 {
		return done
	}
	if _, err := t.nc.Write(out); err != nil {
		return err
	}
	return done
}

// translate returns the SimpleSgs message of a Starbus frame for the
// client, if it has one, and whether the connection ends after it.
func (t *sgsTransport) translate(f wire.Frame) (sgs.Message, bool) {
	v, err := wire.Decode(f)
	if err != nil {
		return nil, false
	}
	switch v := v.(type) {
	case wire.LoginOK:
		// The key names the session and grants nothing: RECONNECT_REQUEST
		// is not served, as on Darkstar.
		if t.counted.CompareAndSwap(false, true) {
			t.s.sgsSessions.Add(1)
		}
		if t.relocating.Load() {
			return sgs.RelocateSuccess{ReconnectionKey: []byte(v.Session)}, false
		}
		return sgs.LoginSuccess{ReconnectionKey: []byte(v.Session)}, false
	case wire.LoginFailed:
		if t.relocating.Load() {
			return sgs.RelocateFailure{Reason: v.Code.Name()}, true
		}
		return sgs.LoginFailure{Reason: v.Code.Name()}, true
	case wire.Message:
		return sgs.SessionMessage{Message: v.Payload}, false
	case wire.ChannelJoin:
		return sgs.ChannelJoin{Name: v.Channel, ID: []byte(v.Channel)}, false
	case wire.ChannelLeave:
		return sgs.ChannelLeave{ID: []byte(v.Channel)}, false
	case wire.ChannelMessage:
		return sgs.ChannelMessage{ID: []byte(v.Channel), Message: v.Payload}, false
	case wire.LogoutOK:
		return sgs.LogoutSuccess{}, false
	}
	// ERROR: SimpleSgs has no error message. A closing one is followed by
	// the end of the connection; the others (rate-limited: the message
	// was dropped) are not told.
	return nil, false
}

func (t *sgsTransport) Close(final *wire.ProtocolError) {
	t.TCP.Close(final)
	if t.counted.CompareAndSwap(true, false) {
		t.s.sgsSessions.Add(-1)
	}
}

// relocation reports whether the connection's RECONNECTs are SimpleSgs
// RELOCATE_REQUESTs. Only the reader calls it.
func (c *conn) relocation() bool {
	_, ok := c.t.(*sgsTransport)
	return ok
}

// member reports whether the session is in the channel name, as far as
// its client has been told.
func (ss *session) member(name string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.chans[name]
	return ok
}
