// Package edge is the client gateway of Starbus: it holds client TCP
// connections speaking the protocol of PROTOCOL.md, logs players in through
// an [Authenticator], turns what they send into events, and delivers their
// sessions' messages back to their sockets.
//
// # Events and messages
//
// Each SEND from a client is published to sb.<world>.ev.<region>.<session>
// with the headers bus.HeaderType (bus.EventMessage), bus.HeaderSession and
// bus.HeaderSeq (the per-session sequence, from 1, continuing across
// reconnects), and Nats-Msg-Id "<session>-<seq>", so that a retried publish
// is not a second event. Logins and session ends are published the same way
// as bus.EventLogin and bus.EventDisconnect. Events of one session share one
// subject, so the handler runtime runs them one at a time, in order.
//
// Tasks send to a session by committing messages to sb.<world>.out.s.<id>.
// Those are stored in the world's stream: the edge delivers them with one
// ordered consumer per connected session, starting after the last stream
// sequence the client has received. That is what makes a reconnect lose
// nothing: the client says what it got last (RECONNECT's last-seq), and the
// edge replays from the stream. A session's messages are purged when it
// ends. One consumer per session costs the server memory (see
// BenchmarkIdleSessions); an edge-wide consumer with per-session replay is
// the way to more sessions per edge.
//
// # Sessions
//
// A session outlives its connection by [Server.ReconnectGrace]; the game's
// disconnect event is published when the grace runs out, on LOGOUT, or
// when the edge shuts down. Sessions live in the edge's memory: a client
// reconnects to the same edge, and an edge that restarts ends its sessions.
//
// # Limits and bad input
//
// Frame size, login time, messages per second per session and the
// outbound queue per connection are bounded ([Server] fields); each
// violation is answered with an error frame whose code comes from one
// table ([Code]). Nothing a client sends can crash the edge or affect other
// clients (see TestBadInput and FuzzDecode).
//
// # Goroutines
//
// [Server.Serve] runs the accept loop in the caller's goroutine. Each
// connection has one reader and one writer goroutine; the reader owns and
// joins the writer. Reconnect-grace timers are counted too.
// [Server.Shutdown] closes everything and waits for all of them.
package edge
