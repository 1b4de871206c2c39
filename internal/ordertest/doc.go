// Package ordertest is a game for tests of delivery: it checks, in each
// event's own transaction, that every session's numbered sends
// (handlers.Task.Seq, protocol version 2) are handled once each, in order,
// and answers each one with a message naming its number, so that the
// client can check the other direction: every answer received once, in
// order. Tests read what it recorded with [Read].
//
// It starts no goroutines.
package ordertest
