// Package worldtest runs the reference world (examples/gridworld) for
// tests on the public test kit (package starbustest): the world with an
// edge, stopped by t.Cleanup, and a test player that sends the world's
// JSON commands and waits for their replies.
package worldtest
