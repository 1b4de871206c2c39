// Package partition decides how the workers of a world share its event
// partitions: which partitions a worker should consume, when it takes one,
// hands one back or stops consuming one, which worker is the group's commit
// leader, and what a partition's ownership record and its epochs mean.
//
// It is the pure core of the worker-group protocol, in the manner of
// etcd-io/raft: it does no I/O, starts no goroutines and reads no clock
// (time is passed in). Package handlers (group.go) does the I/O around it:
// it publishes heartbeats, watches the group's subjects and feeds what it
// sees to a [Board], builds a [View] from the board and from its own
// subscriptions, calls [Plan], and carries out the [Action]s it returns
// (compare-and-set of records, creation and deletion of consumers, reading
// events). The tests here run the protocol's decisions as tables in
// milliseconds; the process-level tests of package handlers and
// internal/scaletest confirm them against real servers.
//
// # Partitioned consumption
//
// The world's events are split into bus.Partitions partitions by their
// ordering key (bus.Partition), and the workers of a world form a group
// (named by handlers.Config.Consumer) that shares the partitions out: each
// partition is consumed by one worker at a time, through a durable consumer
// of its own, so all events of one session or entity are handled by one
// worker, in stream order, whichever region they happen in.
//
// # Membership, records and epochs
//
// Membership is kept in the world's stream, next to what it protects:
//
//   - every worker publishes a heartbeat on sb.<w>.grp.<g>.m.<member> every
//     [Beat] (a sixth of the lease), rolled up per member, with a TTL
//     ([HeartbeatTTL]) so that a dead worker's heartbeat disappears; a
//     member not heard from for a lease is dead; a member that leaves
//     publishes a delete heartbeat and is gone at once ([Board.Leave]);
//   - the owner of partition p is recorded on sb.<w>.grp.<g>.p.<p> as a
//     [Record] with an epoch, written only by compare-and-set on the
//     record's last stream sequence ([Record.Seq]), so one worker wins each
//     change of ownership; a watcher keeps the record of highest sequence
//     it has seen ([Board.Learn]), so records seen out of order (a watch
//     and a read after a failed compare-and-set) never move it back;
//   - epoch e of partition p is consumed through the consumer
//     <g>-p<p>-e<e>, created by the worker that won epoch e.
//
// # The plan
//
// Every worker watches the group's subjects and computes the same
// assignment from the members it sees alive: partition p goes to the
// (p mod n)-th of the n live members, sorted by name; a worker always
// counts itself live. [Plan] compares that assignment with what the worker
// consumes and returns, per partition, at most one action:
//
//   - [Drop] a partition whose record has been superseded (a record of
//     higher sequence names another owner or another epoch): it was taken
//     over, and its consumer is gone or going;
//   - [Release] a partition consumed here that is no longer this worker's
//     (stop taking its events, let the ones started finish, then clear the
//     record's owner by compare-and-set, so that the next owner need not
//     wait for a lease), and a record that names this worker without a
//     subscription behind it (left by a failed acquisition) when the
//     partition is another's;
//   - [Acquire] a partition that is this worker's and is free, or recorded
//     as this worker's, or recorded as owned by a member this worker thinks
//     dead.
//
// A worker never stops consuming a partition on its own suspicion that the
// others think it dead: what keeps two owners apart is the epoch's
// consumer, deleted by whoever takes the partition over. It takes over
// from an owner it thinks dead only while its own view is fresh (it has
// seen its own heartbeat come back within half a lease), so that a worker
// whose watcher lags behind does not mistake live owners for dead ones. It
// plans nothing until its watch has caught up with what was stored when it
// started, or, so that a partial view is acted on rather than never, until
// [View.SyncBy] (a lease after it joined) has passed. A partition with an
// acquisition or release in flight is left alone, and so is one whose last
// acquisition or release failed, until its backoff ([Local.NotUntil])
// ends. A watch that has not shown this worker its own heartbeat for a
// lease is replaced ([Rewatch]).
//
// The first live member by name is the group's commit leader ([Lead]):
// the others forward their atomic batches to it, so that one committer
// forms them all and keeps their conflicts apart (package kv, forward.go).
// Views that disagree for a while cost conflicts, not correctness.
//
// # Taking a partition
//
// Taking a partition creates the next epoch's consumer starting at the
// lowest ack floor of the earlier epochs' consumers ([Next]), and only then
// deletes them. So the new owner sees every event that was not
// acknowledged, in stream order, before any later event of the same part,
// whatever the old owner left in flight; and the old owner, alive or not,
// can receive nothing more from a deleted consumer. An event the old owner
// had committed but not acknowledged is delivered again and recognised by
// its applied marker: the record carries the highest sequence an earlier
// epoch delivered (its replay bound), and events up to it are checked
// before they run ([MayBeApplied]). With no earlier consumer left (lost
// with a server's restart), every event stored so far is checked.
//
// An old owner that has not yet noticed the change may finish the events
// it had already received while the new owner replays them: each worker
// handles one part's events one at a time in stream order, and an event's
// commit fails if its marker exists, so every event's effects still apply
// once, in order (see docs/scale.md).
//
// A delivery lost on its way to the worker (its consumer sequence skipped,
// [Deliveries]) ends the partition's subscription: the server would
// redeliver it only after the ack wait, and meanwhile deliver the
// partition's later events, which would then run before it. The
// partition's next epoch starts at its ack floor and delivers the lost
// event first.
package partition
