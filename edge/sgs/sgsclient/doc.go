// Package sgsclient is a Go client of SimpleSgsProtocol version 5, the
// wire protocol of Project Darkstar and RedDwarf Server clients, written
// from the protocol's specification (package [sgs]) for testing an edge's
// SimpleSgs listener the way a shipped Darkstar client would use it:
// log in, follow a LOGIN_REDIRECT, send and receive session and channel
// messages, suspend and relocate to another server when told to, log out.
// It links nothing of the server.
//
// The protocol is a pure state machine, [Machine]: it is fed the
// server's messages and answers with [Action]s (messages to send, a
// connection to open elsewhere, events for the application), doing no
// I/O itself, so that its tables test it in milliseconds. [Client] runs a
// Machine over TCP connections.
//
// # Goroutines
//
// A Client owns one reader goroutine, which also follows redirects and
// relocations to new connections; Close and Logout stop it and wait for
// it.
package sgsclient
