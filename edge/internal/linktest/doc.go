// Package linktest is test support for the edge's transports (package
// edge/internal/link) and the tests of package edge: raw WebSocket frames
// (RFC 6455) as a client writes them and as the edge's are read, for the
// bad input no WebSocket library sends, and a net.Conn that counts its
// writes, for the tests that a burst leaves with one write(2).
//
// It starts no goroutine.
package linktest
