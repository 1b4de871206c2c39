package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge/internal/link"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/kv"
)

// ErrServerClosed is returned by [Server.Serve] after [Server.Shutdown].
var ErrServerClosed = errors.New("edge: server closed")

// errConnGone reports a connection that closed during a replay.
var errConnGone = errors.New("edge: connection closed")

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
	// Store is the world's state, where sessions are recorded so that any
	// edge can resume them (default: the edge opens its own over JS).
	Store *kv.Store
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
	// WriteTimeout bounds one write to a client (default 10s): a client
	// that takes nothing is disconnected once a write to it has waited
	// for between half of it and all of it (the deadline is renewed
	// only when less than half is left; see conn.armWrite).
	WriteTimeout time.Duration
	// FanoutDelay is how long a channel's message (reliable or
	// best-effort), a frame fanned out to many clients, may wait before
	// its client's writer starts, so that such frames share one write,
	// and the client's read (default 20ms; negative: none, written at the
	// end of the burst that queued it, as every other frame is). Only a
	// connection written to within the delay waits: a quiet one's frame
	// goes at once. A frame for the client alone (a session message, such
	// as the reply to its action, or an answer to its frame) starts the
	// writer at once, and the waiting frames go with it; order is kept
	// either way.
	FanoutDelay time.Duration
	// AreaDelay is FanoutDelay for an area's events: how long the news of
	// what happens near a player (the moves around it) may wait to share a
	// write (default 50ms, the period of a 20 Hz game tick, the rate at
	// which game servers commonly send the state around a player;
	// negative: none). A channel's message that waits less takes the
	// area's frames along.
	AreaDelay time.Duration
	// ReconnectGrace is how long a session outlives its connection,
	// waiting for a reconnect with its token (default 30s), on this edge
	// or, after this edge shuts down, on any; it keeps its channels
	// meanwhile. Negative: none, a lost connection ends the session. The
	// game's disconnect handler runs when it ends, and the session leaves
	// its channels. A reconnect replays the messages it missed only as long
	// as the stream keeps them: the workers' handlers.Config.OutboxTTL
	// (default 2m) must exceed the grace.
	ReconnectGrace time.Duration
	// Observer, if set, is told the size of each reconnect's replay (for
	// metrics); [Server.Stats] has the counters.
	Observer Observer

	// SimpleSgs (see [Server.ServeSGS]).

	// SGSAddress is the host:port other edges send SimpleSgs clients to
	// (LOGIN_REDIRECT, RELOCATE_NOTIFICATION) to reach this edge's
	// SimpleSgs listener (default: the listener's address, with this
	// machine's host name for an unspecified IP).
	SGSAddress string
	// SGSMaxSessions bounds the SimpleSgs sessions of this edge: a login
	// that would exceed it is redirected (LOGIN_REDIRECT) to the least
	// loaded other edge, if one has fewer (default 0: never redirect).
	SGSMaxSessions int
	// SuspendTimeout bounds the wait for a SimpleSgs client's
	// SUSPEND_MESSAGES_COMPLETE when [Server.Drain] relocates it
	// (default 5s).
	SuspendTimeout time.Duration
	// PeerInterval is how often an edge with a SimpleSgs listener
	// announces itself to the world's other edges (default 1s); one not
	// heard of for three intervals is forgotten.
	PeerInterval time.Duration

	initOnce sync.Once
	// startMu serialises the first Serve's setup.
	startMu  sync.Mutex
	stream   jetstream.Stream         // set by the first Serve, before any connection
	delivery jetstream.ConsumeContext // the live consumer, started by the first Serve
	store    *kv.Store                // Store, or the edge's own (ownStore)
	ownStore bool
	reaper   sync.WaitGroup
	log      *slog.Logger
	epoch    time.Time       // the zero of the server's clock (now)
	ctx      context.Context // the server's lifetime, for work it owns
	cancel   context.CancelFunc

	// mu guards the maps and closed. Lock order: session.mu before
	// Server.mu; never the reverse.
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	sessions  map[string]*session      // by session id
	takeUps   map[string]chan struct{} // sessions being taken up, closed when done
	closed    bool
	wg        sync.WaitGroup // connection goroutines and grace timers

	// chmu guards chans and cells: the channels this edge's sessions are
	// in and the area cells they look at (with each session's cells).
	// Lock order: session.mu before chmu.
	chmu  sync.Mutex
	chans localIndex[string]
	cells localIndex[cellKey]

	// in is the queue of the dispatcher, which delivers what the live
	// consumer and the best-effort subscriptions receive.
	in         inbox
	dispatcher sync.WaitGroup

	bufs sync.Pool // connections' write buffers (*[]byte), lent while writing

	throttle throttle // failed logins, by address and by name
	stats    serverStats

	// SimpleSgs: this edge's id and announced address, its sessions, and
	// the other edges it knows of (peers.go).
	id          string
	sgsAddr     string // set once by startPeers
	sgsSessions atomic.Int64
	draining    bool // guarded by mu: Drain has begun
	peers       *peerTable
	peerOnce    sync.Once
	peering     sync.WaitGroup // the announcer
	announceNow chan struct{}  // capacity 1: announce at once (Drain)
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
		if s.FanoutDelay == 0 {
			s.FanoutDelay = DefaultFanoutDelay
		}
		if s.AreaDelay == 0 {
			s.AreaDelay = DefaultAreaDelay
		}
		if s.ReconnectGrace == 0 {
			s.ReconnectGrace = 30 * time.Second
		}
		if s.SuspendTimeout <= 0 {
			s.SuspendTimeout = 5 * time.Second
		}
		if s.PeerInterval <= 0 {
			s.PeerInterval = time.Second
		}
		s.id = nuid.Next()
		s.epoch = time.Now()
		s.peers = newPeerTable(s.id, s.PeerInterval)
		s.announceNow = make(chan struct{}, 1)
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.sessions = make(map[string]*session)
		s.takeUps = make(map[string]chan struct{})
		s.chans = make(localIndex[string])
		s.cells = make(localIndex[cellKey])
		s.in.ready = make(chan struct{}, 1)
	})
}

// DefaultFanoutDelay is Server.FanoutDelay's default: a channel's
// message, a player's words, waits at most a fiftieth of a second.
const DefaultFanoutDelay = 20 * time.Millisecond

// DefaultAreaDelay is Server.AreaDelay's default: the period of a 20 Hz
// game tick, the rate at which game servers commonly send the state
// around a player.
const DefaultAreaDelay = 50 * time.Millisecond

// holdFor returns the delay of frames of class k (FanoutDelay,
// AreaDelay); not positive: none.
func (s *Server) holdFor(k holdClass) time.Duration {
	if k == holdArea {
		return s.AreaDelay
	}
	return s.FanoutDelay
}

// holds reports whether any fanned-out frame may wait.
func (s *Server) holds() bool {
	return s.FanoutDelay > 0 || s.AreaDelay > 0
}

// now reads the server's monotonic clock: the time since it started, never
// zero.
func (s *Server) now() time.Duration { return time.Since(s.epoch) + 1 }

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
	return s.serve(l, func(nc net.Conn) transport { return link.NewTCP(nc) }, nil)
}

// serve accepts connections on l until Shutdown, each over the transport
// newTransport makes of it. started, if set, runs once the server is
// ready, before the first accept.
func (s *Server) serve(l net.Listener, newTransport func(net.Conn) transport, started func()) error {
	s.init()
	if err := s.ready(); err != nil {
		return err
	}
	s.mu.Lock()
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
	if started != nil {
		started()
	}
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
		c := s.newConn(newTransport(nc))
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

// ready checks the required fields and starts the server, once.
func (s *Server) ready() error {
	if s.JS == nil || s.Auth == nil || s.World.Name() == "" {
		return errors.New("edge: Server.JS, Server.World and Server.Auth are required")
	}
	return s.start()
}

// start finds the world's stream and starts the live consumer, once.
func (s *Server) start() error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.delivery != nil {
		return nil
	}
	st, err := s.JS.Stream(s.ctx, s.World.Stream())
	if err != nil {
		return fmt.Errorf("edge: world stream: %w", err)
	}
	s.stream = st
	if dup, need := st.CachedInfo().Config.Duplicates, s.resendWindow(); dup < need {
		s.log.Warn("the world stream's duplicate window is shorter than a resent numbered send may come: a send may be handled twice",
			"duplicates", dup, "need", need)
	}
	if s.store = s.Store; s.store == nil {
		if s.store, err = kv.Open(s.ctx, s.JS, s.World, kv.Options{}); err != nil {
			return fmt.Errorf("edge: state: %w", err)
		}
		s.ownStore = true
	}
	if s.delivery, err = s.startDelivery(s.ctx); err != nil {
		return fmt.Errorf("edge: session delivery: %w", err)
	}
	s.reaper.Go(func() { s.reap(s.ctx) })
	s.dispatcher.Go(func() { s.dispatchLoop(s.ctx) })
	return nil
}

// Shutdown stops accepting, tells every client the edge is going away,
// closes their connections, and suspends every session: its client may
// resume it on another edge (or this one, restarted) within the
// ReconnectGrace, after which whichever edge finds it ends it. Shutdown
// waits for the edge's goroutines or ctx.
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
		c.fail(&wire.ProtocolError{Code: wire.CodeShuttingDown})
	}
	// Each is a commit: a few at a time, so that an edge with thousands of
	// sessions shuts down in seconds.
	ends := make(chan *session)
	var enders sync.WaitGroup
	for range min(len(sessions), shutdownEnders) {
		enders.Go(func() {
			for ss := range ends {
				if err := s.suspend(ctx, ss); err != nil {
					s.log.Error("session not suspended", logSession, ss.id, logErr, err)
				}
			}
		})
	}
	for _, ss := range sessions {
		ends <- ss
	}
	close(ends)
	enders.Wait()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	defer s.cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.startMu.Lock()
	delivery := s.delivery
	s.startMu.Unlock()
	if delivery == nil {
		return nil
	}
	s.cancel()
	s.peering.Wait()
	s.reaper.Wait()
	s.dispatcher.Wait()
	delivery.Stop()
	select {
	case <-delivery.Closed():
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.ownStore {
		return s.store.Close()
	}
	return nil
}

// resendWindow is how long after a numbered send (protocol version 2)
// was stored its client may send it again without having been told it was
// (see doc.go, Numbered sends): the write timeout, within which a client
// whose acknowledgements stopped coming loses its connection (or the
// time its publish takes, a few tries of 5 s, if that is longer), then
// the reconnect grace, within which it resends.
func (s *Server) resendWindow() time.Duration {
	return max(s.WriteTimeout, publishAttempts*5*time.Second) + max(s.ReconnectGrace, 0)
}

// shutdownEnders is how many sessions Shutdown suspends at once.
const shutdownEnders = 32

// Sessions returns the number of sessions the edge holds, connected or in
// their reconnect grace.
func (s *Server) Sessions() int {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
