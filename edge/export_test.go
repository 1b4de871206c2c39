package edge

import "github.com/starbus/starbus/edge/internal/linktest"

// What the tests of package edge_test need of the package's insides.

// Conns returns the number of connections s holds, TCP and WebSocket.
func (s *Server) Conns() int {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Raw WebSocket frames, for the bad input the Go client never sends.
var (
	ClientWSFrame     = linktest.ClientFrame
	ReadServerWSFrame = linktest.ReadServerFrame
)

// WebSocket opcodes (RFC 6455, 5.2).
const (
	WSContinuation = linktest.WSContinuation
	WSText         = linktest.WSText
	WSBinary       = linktest.WSBinary
	WSClose        = linktest.WSClose
	WSPing         = linktest.WSPing
	WSPong         = linktest.WSPong
)

// Peers returns the number of other edges s knows of.
func (s *Server) Peers() int {
	s.init()
	s.peers.mu.Lock()
	defer s.peers.mu.Unlock()
	return len(s.peers.peers)
}
