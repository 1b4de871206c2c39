// Package edge is the client gateway of Starbus: it holds client
// connections speaking the protocol of PROTOCOL.md, over TCP or WebSocket,
// logs players in through an [Authenticator], turns what they send into
// events, and delivers their sessions' messages back to their sockets.
//
// # Transports
//
// [Server.Serve] accepts TCP connections on a net.Listener: PROTOCOL.md's
// length-prefixed frames on a byte stream. For TLS, pass it a listener
// from tls.NewListener; the handshake runs in the connection's reader,
// within the login timeout. [Server.WebSocketHandler] is an http.Handler
// that upgrades requests to WebSocket connections (github.com/coder/websocket)
// carrying one frame per binary message, opcode and body without the
// length prefix (subprotocol [wire.WebSocketSubprotocol]); mount it on any
// http.Server, over TLS for wss. Origins other than the page's own are
// refused unless [WebSocketOptions] allows them.
//
// Both kinds of connection are the same conn, over a small transport
// interface (read a frame, write a burst of encoded frames, close): the
// same login timeout, rate limit, MaxFrame (on WebSocket, the largest
// message read), outbound queue and slow-consumer rule, write timeout,
// sessions, reconnects and channels, and a session may reconnect over
// either. On WebSocket a burst of frames becomes one message per frame,
// still written with one write(2); a connection closes with a close frame
// whose code is 4000 plus the error code it closes on (PROTOCOL.md,
// WebSocket). A text, empty or otherwise malformed message is answered
// with ERROR malformed and the connection goes on, since messages, unlike
// a byte stream, stay in step after a bad one.
//
// [Server.ServeSGS] serves Project Darkstar's clients on a listener of
// their own, speaking SimpleSgsProtocol version 5 (codec: package
// edge/sgs; the authoritative text is RedDwarf's SimpleSgsProtocol.java,
// sgs-shared com/sun/sgs/protocol/simple, read with the server's
// impl/protocol/simple/SimpleSgsProtocolImpl.java). It is a third
// transport under the same conn (sgs.go): each SimpleSgs message is
// translated to the Starbus frame it means and each Starbus frame for the
// client to its SimpleSgs message, so a Darkstar client gets the same
// limits, sessions (at version 1), replay and channels, in the same world
// as Starbus clients; what SimpleSgs has and Starbus lacks (version
// pinning, LOGIN_REDIRECT, SUSPEND_MESSAGES, RELOCATE_NOTIFICATION) is the
// transport's, which writes such messages from edge-internal opRaw
// frames. PROTOCOL.md, SimpleSgsProtocol, is the contract.
//
// Edges with a SimpleSgs listener announce themselves (peerInfo: id,
// address, SimpleSgs sessions, draining) every PeerInterval on the core
// NATS subject bus.World.Edges, never in the stream, and keep a table of
// the others (peerTable, pure; a peer silent for three intervals is
// forgotten). A login past SGSMaxSessions is redirected to the least
// loaded peer. [Server.Drain] relocates each SimpleSgs session to one:
// SUSPEND_MESSAGES; on SUSPEND_MESSAGES_COMPLETE, read after every earlier
// message of the client (so each is stored), the reader suspends the
// session and sends RELOCATE_NOTIFICATION with a key holding the token and
// the last stream sequence sent; RELOCATE_REQUEST on the peer is a
// RECONNECT that may only take up a suspended session within its grace,
// so the key is good once.
//
// Failed logins are counted per remote address, per name and address, and
// per name, and slow the next attempts down (throttle.go, PROTOCOL.md):
// the edge logs "failed logins throttled" at WARN when a count starts
// throttling, and [Server.Stats] counts bad and throttled logins.
//
// # Events and messages
//
// Each SEND from a client is published to sb.<world>.ev.<region>.<session>
// with the headers bus.HeaderType (bus.EventMessage), bus.HeaderSession and
// bus.HeaderSeq (the per-session sequence, from 1, continuing across
// reconnects), and Nats-Msg-Id "<session>-<epoch>-<seq>", so that a retried
// publish is not a second event (the epoch counts the edges that took the
// session up). A CHANNEL_SEND is published as bus.EventChannel with
// bus.HeaderChannel. Logins and session ends are published the same way
// as bus.EventLogin and bus.EventDisconnect. Events of one session share one
// subject, so the handler runtime runs them one at a time, in order.
//
// # Numbered sends (protocol version 2)
//
// A session that logs in at version 2 numbers its sends: SEQ_SEND and
// SEQ_CHANNEL_SEND carry the client's number, from 1, one more per send,
// across reconnects. The edge publishes send n with bus.HeaderSeq n (its
// login and disconnect events carry none) and Nats-Msg-Id "<session>-s<n>",
// the same on every edge at every epoch. The session keeps the number of
// its last send stored (session.sent); a send at or below it is a
// duplicate and dropped, one above the next closes the connection
// (out-of-order), and a send that cannot be stored closes it too (internal),
// so that nothing overtakes it: the stream holds a session's sends in the
// client's order, each at most once. The edge acknowledges what is stored
// with ACK frames, one per burst read (or per ackEvery sends). Over the
// rate limit the reader waits rather than dropping a numbered send.
//
// LOGIN_OK tells the client the last send stored (last-send), and the
// client sends the rest again. An edge that holds the session knows it
// exactly, once the reader of the session's previous connection has ended.
// An edge that takes the session up (after a Shutdown, or a kill -9 of the
// edge that held it) takes the largest of: the record's Sent (written at
// suspension), the number on the session's last event still in the stream
// (bus.World.PartEventFilter), and the RECONNECT's acked (what the client
// was acknowledged, by some edge). That is exact unless the workers have
// handled and purged the session's last events (compaction) since they
// were stored without the client being acknowledged: then it is lower
// than the truth, and the client resends sends that are stored.
//
// Those resends, and a resend racing a publish still under way on an edge
// the client left, are what the stream's duplicate window (the bus
// provisions 2 minutes) must cover: a send is resent only if its client
// was not acknowledged, which happens within moments of its storing on a
// working connection; so a resend of a stored send comes at most the
// write timeout (after which an edge drops a connection whose client does
// not take its frames), or the time a publish may take, after its
// storing, plus the reconnect grace: 15 s + 30 s by default
// ([Server.resendWindow]; the edge logs a warning at start if the stream's
// window is shorter). The window is kept in the stream's memory even for
// purged messages, but a NATS server that restarts rebuilds it from the
// messages it still stores: a client that resends a purged send across a
// NATS restart within that window has it handled twice. Dedupe at the
// level of the session record, a commit per acknowledgement, would close
// that gap; it is not worth its cost while the window covers the grace.
//
// Tasks send to a session by committing messages to sb.<world>.out.s.<id>,
// and to a reliable channel on sb.<world>.out.c.<name>. A session's
// channel joins and leaves are notices on its own subject (headers
// bus.HeaderNotice, bus.HeaderChannel), committed with the membership
// change, as is a move to another region (bus.NoticeRegion: the session's
// later events go there). All are stored in the world's stream, and the
// edge delivers them with their stream sequence:
//
//   - Live: one ordered consumer per edge on sb.<world>.out.>, started by
//     the first Serve with DeliverNew, dispatches each message, in stream
//     order, to the session it names or to this edge's members of the
//     channel it names. The edge keeps an index of the channels its
//     sessions are in, built from the notices, so a member receives exactly
//     the channel messages committed between its join and its leave, in
//     the one order of the stream, like every other member.
//   - Best effort: a best-effort channel's messages go over core NATS on
//     sbe.<world>.c.<name>, outside the stream; the edge subscribes while
//     it has members of the channel and delivers them with sequence 0.
//   - Areas of interest (handlers.Area): a session's interest is a notice
//     on its subject (bus.InterestNotice, applied in order like a join),
//     and the edge keeps an index from each cell of an area to the
//     sessions whose square touches it (area.go). A reliable area event,
//     stored on sb.<world>.out.a.<area>.<cx>.<cy>, reaches the sessions
//     indexed at its cell whose square, as of the same point in the
//     stream, holds its position (bus.HeaderAt); a best-effort one comes
//     over core NATS on sbe.<world>.a.<area>.<cx>.<cy>, to which the edge
//     subscribes while some session's square touches the cell, and is
//     judged against the squares as they are when it arrives. The first
//     interest in an area is a CHANNEL_JOIN of its name, its end a
//     CHANNEL_LEAVE; a move of the square sends the client nothing.
//   - Replay: a RECONNECT says the last sequence the client received. The
//     channels the session was in at that point are derived (its channels
//     now, from the state, corrected by the notices since: see replay), and
//     a short-lived ordered consumer on the session's subject and those
//     channels reads the stream from there to its end, membership
//     following the notices. Areas likewise: where the session looked at
//     that point is its interest now, or the previous interest carried by
//     the first interest notice since, and the reliable areas' events are
//     judged against the square as the notices move it.
//   - Handoff: while a session is being logged in or replayed, live
//     messages for it wait in a bounded buffer; they are queued after the
//     replay. Every session keeps the sequence of the last message it
//     queued and drops anything at or below it, so nothing arrives twice
//     and, as every stored message is either before the replay's end or
//     seen live, nothing is lost.
//
// LOGIN_OK is always the first frame of a session on a connection. A
// session's messages go by their TTL once it ends (the workers purge
// them when it ends if they have none; see handlers.Config.OutboxTTL).
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
// A session outlives its connection by [Server.ReconnectGrace]. It is
// recorded in the world's state (bus.SessionKey: player, region, a hash of
// its token's secret, an epoch), so that any edge can take it up: a
// RECONNECT for a session this edge does not hold reads the record, checks
// the token, and bumps the epoch in one transaction. [Server.Shutdown]
// suspends its sessions (the record says until when they may be resumed);
// every edge reads all session records every half grace (at most every
// 10 s: one batched get up to 1,024 records, a consumer beyond) and ends
// the suspended sessions past their time.
// A session ends in one transaction that deletes its record and publishes
// its disconnect event, so however many edges race to end it, the game
// hears of it once, and an edge that lost the session to another (an
// older epoch) cannot end it. The runtime then takes it out of its
// channels. Not covered: an edge that dies without Shutdown (kill -9)
// leaves its sessions recorded but unsuspended; their clients can resume
// them on another edge, but a session nobody resumes is not ended.
//
// # Limits and bad input
//
// Frame size, login time, messages per second per session and the
// outbound queue per connection are bounded ([Server] fields); each
// violation is answered with an error frame whose code comes from one
// table ([Code]). The outbound queue counts the world's frames and the
// answers to the client's own frames (PONG, ERROR, ACK, ...) apart: a
// client whose world frames fill it is a slow consumer and is cut off,
// while a reader that has answers to queue and no room waits, reading
// nothing meanwhile, so that a client that pipelines requests is slowed
// down by TCP's flow control instead (TestTransportContract, "pipelined"). Nothing a client sends can crash the edge or affect other
// clients (see TestBadInput, TestWebSocketBadInput,
// TestWebSocketBadConnections, TestSGSBadInput, edge/wire's FuzzDecode,
// edge/internal/link's FuzzWebSocketWire and edge/sgs's FuzzDecode).
//
// # Counters
//
// [Server.Stats] counts logins, frames written, rate-limited messages and
// slow consumers, and holds the connections and sessions open now; a
// [Server.Observer] is told the size of each replay (package metrics
// exports both to Prometheus).
//
// # Goroutines
//
// [Server.Serve] runs the accept loop in the caller's goroutine. Each
// connection has one reader goroutine and, while it has frames to write,
// one writer goroutine; the reader joins the writer, and only the writer
// writes to the socket, everything queued with one write. A WebSocket
// connection's reader is the goroutine the http.Server runs the handler
// in: the handler returns when the connection ends. [Server.Shutdown]
// waits for the readers of both kinds. Reconnect-grace
// timers are counted too. The live consumer's and the best-effort
// subscriptions' callbacks, on the NATS client's goroutines, only queue
// what they receive for one dispatcher goroutine, which delivers it burst
// by burst and starts each connection's writer once per burst. Channel
// messages to a connection written to within [Server.FanoutDelay], and
// area events to one written to within [Server.AreaDelay], wait for the
// dispatcher's timer of their delay instead, up to that delay, so that a
// busy connection is written to about once per delay: a game tick, the
// way game servers send state (a frame for the session alone takes them
// along at once, and so does a shorter delay's timer).
// With a SimpleSgs listener, one announcer goroutine publishes this edge's
// announcements, and the NATS client's goroutine feeds the peer table.
// [Server.Shutdown] closes everything, stops the live consumer, the
// dispatcher and the announcer, and waits for all of them.
//
// # Locks
//
// A session's mutex may be held while taking the server's (session.mu,
// then Server.mu or Server.chmu), never the reverse; a connection's queue
// mutex (conn.mu) is taken after session.mu, and nothing is taken while it
// is held; a connection's deadline mutex is taken last. A WebSocket's
// cork mutex (corkWriter.mu, in edge/internal/link) is taken under the
// library's own write lock, and nothing is taken while it is held. A
// SimpleSgs transport's mutex (sgsTransport.mu) and the peer table's
// (peerTable.mu) are taken alone.
package edge
