package edge

import (
	"sync/atomic"
	"time"
)

// Stats counts what an edge has done since it started, and what it holds
// now.
type Stats struct {
	Connections   int    // client connections open now
	Sessions      int    // sessions held now, connected or in their reconnect grace
	FramesWritten uint64 // frames written to clients (messages, replies, errors)
	Writes        uint64 // writes to clients' connections, each of one or more frames
	SlowConsumers uint64 // clients disconnected for falling behind their outbound queue
	RateLimited   uint64 // client messages dropped over the rate limit
	Logins        uint64 // LOGINs that opened a session
	LoginFailures uint64 // LOGINs refused or failed
	BadLogins     uint64 // LOGINs refused for a wrong name or password
	Throttled     uint64 // LOGINs refused unchecked, for earlier failures (see wire.CodeThrottled)
}

// Observer receives measurements of an edge (for metrics). Its method is
// called from connection goroutines: it must be safe for concurrent use,
// fast, and never block.
type Observer interface {
	// ObserveReplay reports a RECONNECT's replay that completed: the
	// stored messages it queued for the client.
	ObserveReplay(messages int)
	// ObserveDeliveryWait reports how long a stored message for clients
	// (a session's message, such as a reply, a channel's message, an
	// area's event) took from its store (the stream's clock) to this
	// edge's dispatcher (the edge's clock; on one machine, the tail's
	// wait), before the writes to its clients.
	ObserveDeliveryWait(d time.Duration)
}

type serverStats struct {
	frames, writes, slow, rateLimited, logins, loginFailures, badLogins, throttled atomic.Uint64
}

// Stats returns a snapshot of the edge's counters.
func (s *Server) Stats() Stats {
	s.init()
	s.mu.Lock()
	conns, sessions := len(s.conns), len(s.sessions)
	s.mu.Unlock()
	return Stats{
		Connections:   conns,
		Sessions:      sessions,
		FramesWritten: s.stats.frames.Load(),
		Writes:        s.stats.writes.Load(),
		SlowConsumers: s.stats.slow.Load(),
		RateLimited:   s.stats.rateLimited.Load(),
		Logins:        s.stats.logins.Load(),
		LoginFailures: s.stats.loginFailures.Load(),
		BadLogins:     s.stats.badLogins.Load(),
		Throttled:     s.stats.throttled.Load(),
	}
}

// countLogin counts a LOGIN's outcome.
func (st *serverStats) countLogin(ok bool) {
	if ok {
		st.logins.Add(1)
	} else {
		st.loginFailures.Add(1)
	}
}
