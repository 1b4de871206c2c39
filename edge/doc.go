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
// Those are stored in the world's stream, and the edge delivers them with
// their stream sequence:
//
//   - Live: one ordered consumer per edge on sb.<world>.out.s.*, started by
//     the first Serve with DeliverNew, dispatches each message to the
//     session it names, if this edge holds it and it has a connection.
//     Sessions are created after it starts, so it sees every message of
//     every one of them.
//   - Replay: a RECONNECT says the last sequence the client received; a
//     short-lived ordered consumer on the session's subject reads the
//     stream from there to its end.
//   - Handoff: while a session is being logged in or replayed, live
//     messages for it wait in a bounded buffer; they are queued after the
//     replay. Every session keeps the sequence of the last message it
//     queued and drops anything at or below it, so nothing arrives twice
//     and, as every stored message is either before the replay's end or
//     seen live, nothing is lost.
//
// LOGIN_OK is always the first frame of a session on a connection. A
// session's messages are purged when it ends.
//
// This costs one consumer per edge, not per session (nats-server allows
// 1,000 consumers per stream by default, which per-session consumers would
// have made the world's limit on connected players; see
// BenchmarkIdleSessions for the memory a session costs). The price: each
// edge reads every session message of the world and keeps its own. With
// many edges, a session subject that names the edge would let each read
// only its own.
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
// joins the writer, and only the writer writes to the socket. Reconnect-
// grace timers are counted too. The live consumer's callback runs on the
// NATS client's goroutine. [Server.Shutdown] closes everything, stops the
// live consumer and waits for all of them.
//
// # Locks
//
// A session's mutex may be held while taking the server's (session.mu,
// then Server.mu), never the reverse; a connection's deadline mutex is
// taken last.
package edge
