// Package bots plays the reference world (examples/gridworld) with many
// simulated players over real TCP connections (edge/client), to load a
// Starbus deployment and measure it: `starbus bots` is its command.
//
// [Run] logs the players in, at a bounded number of logins at once (the
// edge hashes passwords with argon2id), then has each play for
// Config.Duration: move (towards items it knows of, otherwise wandering),
// look, say and shout, pick up and drop items, offer trades to players it
// has seen and accept the offers it gets. Each player has at most one
// command in flight; an action's round trip is from its SEND to the
// world's reply carrying the command's id. At the end the players stop,
// wait for their last replies, the invariant check runs (Config.Check),
// they log out, and it runs again. The [Summary] has throughput, latency
// percentiles, errors and disconnects, and the checks' reports. Players
// reconnect by themselves (edge/client's AutoReconnect, over every address
// of Config.Addr): a disconnect is counted, and the session goes on, its
// commands handled once each.
//
// # Goroutines
//
// Run starts one goroutine per player, and one that reports progress; it
// stops and waits for all of them before it returns.
package bots
