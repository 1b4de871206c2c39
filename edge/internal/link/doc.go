// Package link holds the two transports a client's connection to the edge
// runs over: [TCP], PROTOCOL.md's byte stream of length-prefixed frames,
// and [WebSocket], one frame per binary WebSocket message (accepted by
// [AcceptWebSocket]). Package edge runs a connection over either (its
// conn and its transport interface) and owns everything else: the
// connection's goroutines, its queue and limits, its session. A message
// that is not a frame but leaves the connection usable is a [BadMessage].
//
// It links the standard library, the WebSocket library and edge/wire, and
// not the NATS server that package edge links: Go's fuzzing instruments
// every package a test binary links, so the fuzz targets of the WebSocket
// reading (FuzzWebSocketMessage, FuzzWebSocketWire) live here and run an
// order of magnitude faster (see scripts/fuzz).
//
// # Goroutines
//
// It starts none. A transport's reads and writes run in the caller's
// goroutines (the edge's reader and writer); the WebSocket library answers
// pings and close frames from within those calls.
//
// # Locks
//
// A WebSocket's cork mutex (corkWriter.mu) is taken under the library's
// own write lock, and nothing is taken while it is held.
package link
