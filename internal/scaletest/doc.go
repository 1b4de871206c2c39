// Package scaletest runs Starbus as it is deployed, with real processes on
// loopback: the starbus binary, built once per test run with go build,
// started as `starbus nats` nodes, `starbus worker -game bank` workers and
// `starbus edge` edges;
// the test process publishes the load (internal/bank: transfers on many
// sessions, each session's events numbered) and checks the world's state
// afterwards: no money made or lost, every accepted event applied exactly
// once, every session's events applied in order.
//
// It holds only tests:
//
//   - TestScale: the same load with 1, 2 (and, from scripts/scale, 4)
//     worker processes; throughput and where the time goes (CPU of the
//     workers and of the server against the wall clock).
//   - TestKillWorker: kill -9 one of three workers under load; the time
//     until its partitions make progress again.
//   - TestKillLeader: a three-node cluster, the world replicated on all;
//     kill -9 the node that leads the world's stream under load; the pause.
//   - TestRegionHandoff: players walking across region borders while
//     chatting, through real edges; each one's events stay in order.
//   - TestKillEdge: 100 players on a `starbus edge` process killed with
//     SIGKILL while they send; a new edge starts 2 s later, on the same
//     address or on another one of the clients' list; every player resumes
//     by itself, each send handled once in order (internal/ordertest),
//     each answer received once in order.
//
// Every load is bounded in count and time and sent only to loopback. The
// suite runs small versions; scripts/scale runs the full ones
// (-scale.events, -scale.workers).
//
// Goroutines: each test starts and waits for its own; processes it starts
// are stopped (SIGTERM, then SIGKILL) by t.Cleanup.
package scaletest
