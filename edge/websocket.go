package edge

import (
	"net/http"
	"path"
	"slices"

	"github.com/coder/websocket"
	"github.com/starbus/starbus/edge/internal/link"
	"github.com/starbus/starbus/edge/wire"
)

// WebSocketOptions configures [Server.WebSocketHandler].
type WebSocketOptions struct {
	// OriginPatterns lists the origins, besides the handler's own host,
	// whose pages may open a WebSocket to the edge: host patterns matched
	// with path.Match ("example.com", "*.example.com"), or, with a scheme,
	// "https://example.com". Empty: same origin only. A request without an
	// Origin header (not from a browser) is always accepted. Any other
	// origin is refused with 403 Forbidden before the upgrade; a pattern
	// that is not a valid path.Match pattern is left out, and logged.
	OriginPatterns []string
}

// WebSocketHandler returns a handler that upgrades requests to WebSocket
// connections speaking PROTOCOL.md, one frame per binary message, and
// serves them as [Server.Serve] serves TCP connections: the same limits
// (MaxFrame is the largest message read), sessions, reconnects and
// channels; [Server.Shutdown] closes them too and waits for them. Mount it
// on any http.Server or mux (`starbus` serves it at /ws); serve that over
// TLS for wss. Set the Server's fields before calling it.
//
// Each connection runs in the goroutine of the http.Server that called
// the handler (it is the connection's reader), until the connection ends.
// The server is started (stream, live consumer) by the first upgrade if
// Serve has not started it; a request it cannot serve, before the upgrade,
// is answered 503 Service Unavailable.
func (s *Server) WebSocketHandler(opts WebSocketOptions) http.Handler {
	s.init()
	accept := &websocket.AcceptOptions{Subprotocols: []string{wire.WebSocketSubprotocol}}
	for _, p := range opts.OriginPatterns {
		if _, err := path.Match(p, ""); err != nil {
			s.log.Error("websocket origin pattern left out", "pattern", p, logErr, err)
			continue
		}
		accept.OriginPatterns = append(accept.OriginPatterns, p)
	}
	accept.OriginPatterns = slices.Clip(accept.OriginPatterns)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveWebSocket(w, r, accept) })
}

// serveWebSocket upgrades one request and runs its connection.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		http.Error(w, "edge shutting down", http.StatusServiceUnavailable)
		return
	}
	if err := s.ready(); err != nil {
		s.log.Error("websocket refused", logErr, err)
		http.Error(w, "edge unavailable", http.StatusServiceUnavailable)
		return
	}
	t, err := link.AcceptWebSocket(w, r, opts, s.webSocketConfig())
	if err != nil {
		s.log.Debug("websocket upgrade refused", logRemote, r.RemoteAddr, logErr, err)
		return // answered by the library
	}
	c := s.newConn(t)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = t.CloseNow()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	c.serve()
}

// webSocketConfig is what the server's WebSocket transports are given.
func (s *Server) webSocketConfig() link.WebSocketConfig {
	return link.WebSocketConfig{MaxFrame: s.MaxFrame, CloseWait: closeWait, Buffers: bufPool{s}}
}
