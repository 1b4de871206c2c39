// Package worldtest runs the reference world (examples/gridworld) for
// tests: an embedded JetStream server, the world's store, a handler
// runtime and an edge on a loopback port, all stopped by t.Cleanup; and a
// test player that sends commands and waits for their replies.
package worldtest
