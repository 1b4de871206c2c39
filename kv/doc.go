// Package kv is Starbus's transactional state: the transaction a task runs
// in, revision tracking, commit and conflict detection, over one world's
// JetStream stream (see package bus).
//
// # Model
//
// A key's value is the last message on its subject, sb.<world>.kv.<key>;
// its revision is that message's stream sequence. A [Tx] reads keys (each
// read records the revision seen), buffers writes, deletions and outgoing
// messages, and commits them all at once or not at all. Commit asks the
// server to store every write only if each key the transaction read or
// wrote still has the revision it saw. So tasks are serializable with
// respect to the keys they touch, optimistically: nothing is locked, and a
// task that lost a race gets [ErrConflict] and runs again.
//
//	err := store.Update(ctx, func(tx *kv.Tx) error {
//		var gold int
//		if err := tx.Get(ctx, "player.7.gold", &gold); err != nil {
//			return err
//		}
//		return tx.Put("player.7.gold", gold+10)
//	})
//
// [Store.Update] commits when its function returns nil and re-runs it on a
// conflict (buntdb's managed-transaction shape); [Store.View] is read-only.
// The handler runtime (package handlers) drives [Store.Begin] and
// [Store.Commit] itself, adding the event's applied marker to the commit.
//
// # The commit path
//
// A commit that is a single message (one write, or one check) is a plain
// compare-and-set publish. Any other commit is part of an atomic batch
// (Nats-Batch-*), which the server stores whole or rejects whole. An atomic
// batch on a file-backed R1 stream has a fixed cost, however small it is,
// because the server stages each one in a file store of its own (fsynced,
// unless staged on tmpfs: see [github.com/starbus/starbus/bus.Server.StageInMemory]);
// so the store's committer goroutine groups the commits of concurrent transactions
// into one batch, keeping transactions that conflict with each other out of
// the same group (see committer.go for the rules), and opens each batch
// before its group comes, so that the staging store is made while the
// group forms (see open.go: one more stored message per batch). Keys only read are
// checked with Nats-Expected-Last-Subject-Sequence-Subject, so read-only
// keys are validated without being rewritten: each check rides on one of
// the commit's outgoing messages (a reply, a channel's message), which
// asserts nothing of its own, and only the checks left over take a message
// of their own, on the world's check subjects.
//
// Reads are served, in order, from the transaction itself, from a commit of
// this process still in flight (the read waits for it), from a bounded
// cache of the latest values this process has seen, or from the server by
// direct get. A stale read is safe: the commit re-checks every revision on
// the server, and a conflict evicts the keys involved from the cache. To
// keep staleness brief, every store tails the world's state writes and
// replaces the cached entries a newer write has superseded, so a write by
// another process reaches this one's reads within milliseconds.
// Reads are therefore serializable, not linearizable: a read-only View may
// return a value that another process overwrote an instant ago.
//
// [Store.Stats] counts commits, conflicts, groups, batches and reads; an
// [Observer] in [Options] is told each commit's duration and each group's
// size, for histograms (package metrics exports both to Prometheus).
//
// # Several processes: the commit leader
//
// A committer keeps conflicts out of its batches only among the commits it
// sees. Stores of several worker processes would send colliding batches,
// each failing whole, so one store serves as the commit leader
// ([Store.ServeCommits], on the core NATS subject sbe.<world>.commit.<member>)
// and the others forward their batches to it ([Store.CommitVia]); the
// handler runtime picks the leader from its worker group. The leader is an
// optimisation: forwarded messages keep their revision checks, a leader
// that cannot be reached is skipped, and one that does not answer leaves
// the outcome [ErrCommitUnknown]. See forward.go.
//
// # Contention
//
// On a key that many transactions write at once, each round of commits has
// one winner. If every loser re-ran at once, each round would cost as many
// runs as there are contenders, an abort storm. A loser instead waits its
// turn on the key it lost on ([Store.Turn], in a first-come queue per key)
// and the losers re-run one at a time; first attempts never wait. A
// transaction holds at most one turn, so turns cannot deadlock.
// [Store.Update] and the handler runtime do this through a [Retrier].
//
// # Ranges
//
// [Tx.List] reads every key under a prefix and records the range as read:
// the commit checks the last revision of any subject under it (a wildcard
// Nats-Expected-Last-Subject-Sequence-Subject), so a key created, changed
// or deleted under the prefix since the List makes the commit conflict.
// Keeping a set as one key per member rather than one list makes writers
// of different members independent; only whoever lists the set meets them
// (handlers keeps a channel's members this way).
//
// # Deletion
//
// A deletion is a message too (a tombstone, header KV-Operation: DEL, as in
// JetStream KV; Starbus-Op: DEL in worlds written before), so
// that readers and watchers see it. It carries its lifetime
// (Options.TombstoneTTL, 10 minutes by default, in a Starbus-TTL header):
// after it, compaction removes it with the key's older revisions, the key
// has no message at all, which reads the same, and keys that come and go
// leave nothing behind. The server's own TTL is not used on it: the
// server would remove the tombstone alone, and a value it superseded,
// still stored, would be the key's again.
//
// # Settling
//
// A key written once and never again would keep its block of the
// stream's files, and every block after it, for as long as the world
// runs: the server frees a block only when nothing in it, or before it,
// is still needed. [Store.Rewrite] copies such keys forward, values
// unchanged (tombstones with what is left of their time); the worker
// runtime calls it for what lies below the last few minutes of traffic
// (package handlers, Config.CompactInterval). A rewritten key has a new
// revision: a transaction that read it before conflicts once and runs
// again, and a watcher sees the same value again.
//
// A write, a deletion's tombstone too, leaves the revision it supersedes
// in the stream. The server's rollup would remove it at once, but a
// rollup is a purge, made by the goroutine that stores every message of
// the stream (at 1,000 players the rollups took a third of that
// goroutine's time), and one that removes more than one message makes
// every consumer of the stream recount its pending messages. The
// runtime's compaction purges the superseded revisions in bulk instead,
// below the oldest latest revision of any key that is not an expired
// tombstone ([Store.Revisions]), after copying forward the keys left
// unwritten since its round before once superseded revisions outnumber
// keys. Readers never see them: a read is of a key's last message.
//
// # Queries
//
// JetStream answers a read by key; package [github.com/starbus/starbus/kv/index]
// answers what it cannot, from a local buntdb copy of the keys under a
// prefix: areas (area of interest) and orderings by a field (leaderboards,
// secondary keys). Its answers are a moment behind the commits and outside
// any transaction; a task reads what it finds through its transaction.
//
// # Goroutines
//
// [Open] starts the committer, which starts one goroutine per group in
// flight, and the cache watcher (a nats.go ordered consumer).
// [Store.ServeCommits] adds a subscription whose callback starts one
// goroutine per forwarded request, until its outcomes are sent.
// [Store.Close] stops them all and waits for them.
package kv
