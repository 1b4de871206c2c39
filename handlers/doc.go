// Package handlers is Starbus's worker runtime: it consumes a world's events
// from JetStream and runs each one as a task, a call to the game's
// [Handler] inside a transaction (package kv).
//
// # What a task gets
//
// A [Task] carries the event (type, region, ordering key, session, payload)
// and the task's transaction, behind the task's methods: state
// ([Task.Get], [Task.Lookup], [Task.Put], [Task.Delete], [Task.Exists],
// [Task.Prefetch], [Task.List]), messages to sessions ([Task.Send]),
// channels ([Task.Channel]), new events ([Task.Emit]) and timers
// ([Task.After], [Task.Every]). Nothing else: the handler never sees the
// store, the NATS connection or a raw subject, so it cannot forge what the
// platform trusts (a channel notice, an alarm, a login), and the
// platform's records (keys and event types under "starbus.") are refused
// with [ErrReserved].
//
//	mux := handlers.NewMux()
//	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
//		return t.Send(t.Session, append([]byte("echo: "), t.Data...))
//	})
//	rt, err := handlers.New(handlers.Config{Store: store, JS: js, Handler: mux})
//	...
//	err = rt.Run(ctx)
//
// # What the runtime guarantees
//
//   - Atomicity: a task's writes, messages and emitted events take effect
//     together, when it returns nil, or not at all.
//   - Retry: on a conflict, or past its deadline (Config.TaskTimeout), a
//     task is discarded and run again from scratch with jittered backoff,
//     after waiting its turn on the key it lost on (kv.Store.Turn);
//     after Config.MaxAttempts it is dead-lettered with a log line naming
//     the keys it touched. Errors are retried Config.MaxErrors times;
//     errors wrapped with [Permanent], and panics, are dead-lettered at
//     once, unless the task had read stale state (then it is a conflict).
//   - Exactly-once effects: the commit carries an applied marker for the
//     event (sb.<world>.done.<seq>) that can exist only once. An event
//     redelivered after its commit (a worker died before its ack) is
//     recognised and acknowledged without running again.
//   - Order: events with the same ordering key (for client events, the
//     session) run one at a time, in stream order, whichever region they
//     were published in, and however many workers share the world.
//
// # Scheduled tasks and world initialisation
//
// A task may schedule others: [Task.After] runs a task of a given type once
// after a delay, [Task.Every] runs one periodically, [Task.Cancel] stops
// either. Scheduling is part of the task's transaction: a task that aborts
// schedules nothing. Schedules are durable (a state record plus an alarm
// message in the world's stream), fire after a restart of every worker and
// of the server (late rather than never), run exactly once per due time,
// and a periodic task never overlaps itself. See schedule.go for why the
// due time is kept by the workers rather than by JetStream's own message
// scheduler. Config.Init runs once per world, whichever worker gets there
// first.
//
// # Channels
//
// A channel groups sessions under a name (Darkstar's ChannelManager):
// [Task.CreateChannel], [Task.Channel], then [Channel.Join], [Channel.Leave],
// [Channel.Send], [Channel.Members], [Channel.Close]. Membership is state in
// the task's transaction (bus.ChannelKey; one key per member under
// bus.ChannelMembersPrefix, so that joins and leaves of different sessions
// never conflict, while [Channel.Members] reads the whole range and
// conflicts with any of them; and each session's list,
// bus.SessionChannelsKey); a join or leave also commits a notice to the
// session's subject, which its edge applies in stream order.
// A [Reliable] channel's messages are committed with the task to
// sb.<world>.out.c.<name>: every member gets each one once, in one order,
// across reconnects and edge restarts. A [BestEffort] channel's messages go
// over core NATS after the commit. A session leaves every channel when it
// ends (the runtime does it in the disconnect event's task, after the
// game's handler); across a reconnect within the edge's grace it keeps
// them. Clients' CHANNEL_SEND frames arrive as bus.EventChannel events:
// [ForwardChannel] forwards those of members, with an optional filter.
// [Task.MoveSession] sends a session's later events to another region.
//
// # Areas of interest
//
// An [Area] cuts the world's plane into cells, each a subject. A task
// publishes an event at a position ([Task.PublishAt]); a session looks at
// the area from a position ([Task.SetInterest]), moved atomically with the
// task's other writes, and its client receives the events within the
// area's Radius of it, on the channel named after the area. The edges
// deliver: each indexes its sessions by the cells their squares touch and
// subscribes to those cells, so an event costs the sessions that see it,
// not the sessions in the world. [Area] says exactly what a session sees,
// and when; [Task.Peek] reads the snapshot a move owes its player without
// adding to the transaction.
//
// # Several workers
//
// The workers of a world form a group (Config.Consumer) and share the
// world's bus.Partitions event partitions: an event's partition is a
// function of its ordering key alone, and each partition is consumed by
// one worker at a time. Add a worker and the partitions are spread again;
// stop one and it hands its partitions over before it exits; kill one and
// the others take its partitions over once its heartbeats have been
// missing for Config.Lease (3 s by default). A new owner starts from the
// oldest event of the partition not yet acknowledged, so nothing is lost
// and nothing of a part runs ahead of an earlier event; events the old
// owner had committed are recognised by their applied markers. The first
// live member by name is the group's commit leader: the others' stores
// forward their atomic batches to its store (kv.Store.CommitVia), which
// groups every worker's commits and keeps their conflicts apart. The
// protocol's decisions are made by package handlers/internal/partition,
// whose documentation describes it and whose tables test it; group.go does
// its I/O. See docs/scale.md for what holds while an old owner is still
// finishing its last events, and for measurements.
//
// Alarms are not partitioned: every worker takes alarms from one shared
// consumer, and each firing is a revision-checked transaction, so an
// alarm fires once whichever worker holds it. The alarms held by a worker
// that dies fire late, after Config.AckWait.
//
// [Runtime.Stats] counts the runs and their outcomes and the partitions
// taken and lost; a Config.Observer is told each committed event's latency
// from its delivery to its ack, its wait on the stream, and how long each
// purge of compaction held the stream, for histograms (package metrics
// exports both to Prometheus).
//
// # Subjects and lifetime
//
// The runtime consumes its partitions' events (sb.<world>.ev.<p>.>)
// through the consumers <Consumer>-p<p>-e<epoch>, alarms
// (sb.<world>.sched.*) through <Consumer>-sched, keeps its membership on
// sb.<world>.grp.<Consumer>.>, takes the others' commits on
// sbe.<world>.commit.<Member> while it leads, and parks failed events on
// sb.<world>.dlq.<seq>. It periodically purges events, alarms and markers
// at or below the consumers' ack floors.
//
// [Runtime.Run] owns every goroutine the runtime starts: Config.Concurrency
// task goroutines, the alarm loop and its reader, the compaction loop, the
// group's loop, its heartbeats, one reader per partition owned, and the
// acquisitions and releases in flight. It returns after they end.
package handlers
