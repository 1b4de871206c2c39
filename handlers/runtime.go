package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers/internal/partition"
	"github.com/starbus/starbus/kv"
)

// Config configures a [Runtime].
type Config struct {
	// Store is the world's transactional state. Required.
	Store *kv.Store
	// JS is the JetStream context events are consumed from. Required.
	JS jetstream.JetStream
	// Handler handles every task. Required.
	Handler Handler
	// Init, if set, initialises the world: it runs exactly once per world,
	// in a transaction, before the first event is handled, however many
	// workers start at once. A failed Init makes Run return its error.
	Init Handler
	// InitTimeout is Init's deadline (default 10s).
	InitTimeout time.Duration
	// Logger receives the runtime's logs (default: discard).
	Logger *slog.Logger
	// Consumer names the group the workers of a world form to share its
	// events (default "workers"): the partitions' consumers are named
	// <Consumer>-p<partition>-e<epoch>, and alarms are consumed through
	// <Consumer>-sched.
	Consumer string
	// Member names this runtime in its group; it must be unique among the
	// group's running workers (default: a random name).
	Member string
	// Lease is how long a worker that stopped sending heartbeats keeps its
	// partitions before the others take them over: the failover time after
	// a crash (default 3s). Heartbeats go out every Lease/6.
	Lease time.Duration
	// Concurrency is the number of tasks run at once (default 256). Most of
	// a task's life is spent waiting for its commit, and the more tasks wait
	// together, the larger the commit groups: see package kv.
	Concurrency int
	// TaskTimeout is a task's deadline; a task still running past it is
	// aborted and retried (default 100ms).
	TaskTimeout time.Duration
	// MaxAttempts bounds the runs of one event that end in a conflict or a
	// deadline before it is dead-lettered (default 1,000: a hot key shared
	// by many concurrent tasks has one winner per round).
	MaxAttempts int
	// MaxErrors bounds the runs of one event that end in a (non-permanent)
	// error before it is dead-lettered (default 5).
	MaxErrors int
	// AckWait is how long the server waits for a worker's ack before it
	// redelivers an event elsewhere (default 30s). Workers that take
	// longer, retrying, tell the server they are still at it.
	AckWait time.Duration
	// CompactInterval is how often handled events, their applied markers
	// and the keys' superseded revisions are purged from the stream
	// (default 30s; negative disables). Each round lists the partitions'
	// consumers and makes five purges, one per fifth of the interval, each
	// of which holds the stream for a while (see compact); the stream holds
	// about an interval of handled events and one or two of superseded
	// revisions. The same round copies forward the keys left unwritten
	// since before the last OutboxTTL of traffic, or since the round
	// before when superseded revisions pile up ([kv.Store.Rewrite]):
	// otherwise they would keep the stream's old blocks, on disk and in
	// the server's memory, and the revisions written after them, for as
	// long as the world runs.
	CompactInterval time.Duration
	// OutboxTTL is how long a message to a session or to a reliable
	// channel stays in the world's stream: long enough for a client that
	// lost its connection to have it replayed when it reconnects (default
	// 2m, four times the edge's default ReconnectGrace; rounded up to
	// whole seconds). An ended session's messages go by it too. Set it
	// above the edges' ReconnectGrace, with room for how far behind a
	// client may fall before its connection drops. Negative: kept until
	// the session ends, and purged then (a session's messages), or
	// forever (a channel's).
	OutboxTTL time.Duration
	// Observer, if set, is told each committed event's latency, its wait
	// on the stream, and each purge of compaction (for metrics). nil:
	// nothing is measured beyond [Runtime.Stats].
	Observer Observer
}

// Observer receives measurements of a runtime's tasks and compaction. Its
// methods are called from the worker goroutines: they must be safe for
// concurrent use, fast, and never block.
type Observer interface {
	// ObserveTask reports an event whose task committed (or had nothing to
	// commit): the time from its delivery to this worker to its ack,
	// retries included.
	ObserveTask(d time.Duration)
	// ObserveEventWait reports how long a client's or the game's event
	// waited on the stream: from its store (the stream's clock) to its
	// first delivery to this worker (the worker's clock; on one machine,
	// the queue's wait).
	ObserveEventWait(d time.Duration)
	// ObserveCompaction reports one purge of compaction (kind "events",
	// "alarms", "markers", "checks" or "revisions") and how long it took
	// the server: the stream holds every commit meanwhile.
	ObserveCompaction(kind string, d time.Duration)
}

func (c *Config) setDefaults() error {
	if c.Store == nil || c.JS == nil || c.Handler == nil {
		return errors.New("handlers: Config.Store, Config.JS and Config.Handler are required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Consumer == "" {
		c.Consumer = "workers"
	}
	if err := bus.ValidName(c.Consumer); err != nil {
		return fmt.Errorf("handlers: Config.Consumer %q: %w", c.Consumer, err)
	}
	if c.Member == "" {
		c.Member = nuid.Next()
	}
	if err := bus.ValidName(c.Member); err != nil {
		return fmt.Errorf("handlers: Config.Member %q: %w", c.Member, err)
	}
	if c.Lease <= 0 {
		c.Lease = 3 * time.Second
	}
	if c.Lease < 600*time.Millisecond {
		return fmt.Errorf("handlers: Config.Lease %v is below 600ms", c.Lease)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 256
	}
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = 100 * time.Millisecond
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 1000
	}
	if c.MaxErrors <= 0 {
		c.MaxErrors = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = 10 * time.Second
	}
	if c.CompactInterval == 0 {
		c.CompactInterval = 30 * time.Second
	}
	if c.OutboxTTL == 0 {
		c.OutboxTTL = 2 * time.Minute
	}
	return nil
}

// Runtime consumes a world's events and runs each as a task: the handler
// runs in a transaction, the transaction commits together with the event's
// applied marker, and only then is the event acknowledged.
type Runtime struct {
	cfg   Config
	store *kv.Store
	world bus.World
	log   *slog.Logger
	stats runtimeStats

	schedCons jetstream.Consumer // set by Run before compaction starts
	stream    jetstream.Stream   // the world's stream, set by Run before any task
	outTTL    string             // Nats-TTL of messages to clients (Config.OutboxTTL), "" for none
	group     atomic.Pointer[group]

	// afterCommit, if set, runs between a task's commit and its ack: tests
	// use it to kill a worker at the worst moment.
	afterCommit func()
	// muteHeartbeats, set by tests, stops this runtime's heartbeats while
	// it goes on believing it is alive: a stale owner.
	muteHeartbeats atomic.Bool
}

// New returns a runtime; [Runtime.Run] starts it.
func New(cfg Config) (*Runtime, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &Runtime{cfg: cfg, store: cfg.Store, world: cfg.Store.World(), log: cfg.Logger}
	if cfg.OutboxTTL > 0 {
		// The Nats-TTL header of messages to sessions and reliable
		// channels; the server counts TTLs in whole seconds.
		r.outTTL = strconv.FormatInt(int64((cfg.OutboxTTL+time.Second-1)/time.Second), 10)
	}
	return r, nil
}

// Log attribute keys.
const (
	logType      = "type"
	logSeq       = "event_seq"
	logAttempt   = "attempts"
	logReason    = "reason"
	logErr       = "err"
	logRead      = "read"
	logWritten   = "written"
	logPartition = "partition"
	logEpoch     = "epoch"
	logMember    = "member"
)

// Run joins the world's worker group and consumes the events of the
// partitions it is given, and the world's alarms, until ctx ends. Then it
// stops taking new events, lets the tasks running finish, hands its
// partitions back to the group and returns nil.
func (r *Runtime) Run(ctx context.Context) error {
	stream, err := r.cfg.JS.Stream(ctx, r.world.Stream())
	if err != nil {
		return fmt.Errorf("handlers: stream: %w", err)
	}
	r.stream = stream
	r.schedCons, err = r.cfg.JS.CreateOrUpdateConsumer(ctx, r.world.Stream(), jetstream.ConsumerConfig{
		Durable:       r.cfg.Consumer + "-sched",
		FilterSubject: r.world.ScheduleFilter(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.cfg.AckWait,
		MaxAckPending: 100_000,
	})
	if err != nil {
		return fmt.Errorf("handlers: schedule consumer: %w", err)
	}
	// Every worker takes the commits of the others when it is the group's
	// commit leader (see group.lead); the subscription costs nothing
	// while it is not.
	stopServing, err := r.store.ServeCommits(r.cfg.Member)
	if err != nil {
		return fmt.Errorf("handlers: %w", err)
	}
	defer stopServing()
	defer func() { _ = r.store.CommitVia("") }() // "" cannot fail
	if err := r.migrateMembers(ctx); err != nil {
		return err
	}
	if err := r.initWorld(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for another worker's init
		}
		return err
	}

	// Every partition's consumer bounds its events outstanding at
	// 2*Concurrency; alarms can occupy the queue too, up to the schedule
	// consumer's MaxAckPending of them.
	q := newKeyQueue(bus.Partitions*r.cfg.Concurrency*2 + 100_000)
	g := newGroup(r, stream, q)
	r.group.Store(g)
	var wg sync.WaitGroup
	actx, stopAlarms := context.WithCancel(ctx)
	defer stopAlarms()
	alarmErr := make(chan error, 1)
	gctx, stopGroup := context.WithCancel(ctx)
	defer stopGroup()
	wg.Go(func() {
		if err := r.alarms(actx, r.schedCons, q); err != nil {
			alarmErr <- err
			stopGroup()
		}
	})
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for {
				key, ok := q.next()
				if !ok {
					return
				}
				for it := range q.drain(key) {
					r.process(ctx, it)
				}
			}
		})
	}
	if r.cfg.CompactInterval > 0 {
		wg.Go(func() { r.compact(actx, stream, g) })
	}
	held, groupErr := g.run(gctx)
	stopAlarms()
	for _, it := range q.close() {
		_ = it.m.Nak()
		if it.ps != nil {
			it.ps.out.Add(-1)
		}
	}
	wg.Wait()
	g.leave(ctx, held)
	select {
	case err := <-alarmErr:
		return err
	default:
	}
	if groupErr != nil && ctx.Err() == nil {
		return groupErr
	}
	return nil
}

// Partitions returns the partitions this runtime consumes now.
func (r *Runtime) Partitions() []int {
	g := r.group.Load()
	if g == nil {
		return nil
	}
	var out []int
	owned := g.owned.Load()
	for p := range bus.Partitions {
		if owned&(1<<p) != 0 {
			out = append(out, p)
		}
	}
	return out
}

// Member returns this runtime's name in its worker group.
func (r *Runtime) Member() string { return r.cfg.Member }

// process runs one event to its end: committed and acknowledged, or
// dead-lettered; or dropped, if its partition has moved to another worker
// meanwhile (the new owner replays it).
func (r *Runtime) process(ctx context.Context, it item) {
	m := it.m
	var replay uint64
	if ps := it.ps; ps != nil {
		defer ps.out.Add(-1)
		if ps.stopped.Load() {
			return
		}
		replay = ps.Replay
	}
	if ctx.Err() != nil {
		_ = m.Nak()
		return
	}
	meta, err := m.Metadata()
	if err != nil {
		r.deadLetter(ctx, m, 0, "no metadata: "+err.Error())
		return
	}
	seq := meta.Sequence.Stream
	if it.ps != nil {
		if _, _, ok := r.world.ParseEvent(m.Subject()); !ok {
			r.deadLetter(ctx, m, seq, "malformed event subject")
			return
		}
		if o := r.cfg.Observer; o != nil && meta.NumDelivered == 1 {
			o.ObserveEventWait(it.at.Sub(meta.Timestamp))
		}
	}
	// Delivered before, or by an earlier owner of its partition: a worker
	// may have committed it and died before its ack. The marker says.
	if partition.MayBeApplied(seq, meta.NumDelivered, replay) {
		if r.applied(ctx, m, seq) {
			return
		}
	}
	var conflicts, failures, unavailable int
	retry := r.store.NewRetrier() // losers of a conflict re-run in turn
	defer retry.Done()
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			_ = m.InProgress()
			if retry.Lost(ctx, err) != nil || kv.Backoff(ctx, attempt-1) != nil {
				_ = m.Nak()
				return
			}
		}
		var t *Task
		t, err = r.run(ctx, m, seq, attempt)
		switch {
		case err == nil:
			if t.Type == bus.EventDisconnect && t.Session != "" {
				r.purgeOutbox(ctx, t.Session)
			}
			r.committed(it.at)
			if r.afterCommit != nil {
				r.afterCommit()
			}
			_ = m.Ack()
			return
		case errors.Is(err, kv.ErrConflict), errors.Is(err, errDeadline):
			r.stats.retries.Add(1)
			if errors.Is(err, kv.ErrConflict) {
				r.stats.conflicts.Add(1)
			} else {
				r.stats.deadlines.Add(1)
			}
			// A task conflicting again and again on state that is current
			// may be an event another worker has applied meanwhile (its
			// partition moved while the event was in flight here).
			if conflicts++; conflicts >= 2 && r.applied(ctx, m, seq) {
				return
			}
			if conflicts < r.cfg.MaxAttempts {
				continue
			}
			r.deadLetterTask(ctx, m, t, attempt, err)
			return
		case errors.Is(err, kv.ErrCommitUnknown), errors.Is(err, kv.ErrUnavailable):
			// The commit may have landed; its marker says.
			if errors.Is(err, kv.ErrCommitUnknown) {
				if done, aerr := r.store.Applied(ctx, seq); aerr == nil && done {
					r.committed(it.at)
					_ = m.Ack()
					return
				}
			}
			// The server did not answer or cannot serve now (a cluster
			// electing a leader): not the task's fault. Try again, as long
			// as it takes, so that the event keeps its place in its part's
			// order.
			r.stats.unavailable.Add(1)
			if unavailable++; unavailable == 1 || unavailable%20 == 0 {
				r.log.Warn("server unavailable, retrying", logType, t.Type, logSeq, seq, logAttempt, attempt, logErr, err)
			}
			if pause(ctx, min(50*time.Millisecond<<min(unavailable, 6), 2*time.Second)) != nil {
				_ = m.Nak()
				return
			}
			continue
		case errors.Is(err, ErrNoHandler) && clientInput(t.Type):
			// What a client sends is the client's: a game that has no
			// handler for it drops it. Counted, not dead-lettered and not
			// logged as an error, so that no client can flood the logs.
			r.stats.unhandled.Add(1)
			r.log.Debug("client event without handler dropped", logType, t.Type, logSeq, seq)
			_ = m.Ack()
			return
		case errors.Is(err, ErrPermanent):
			if !r.applied(ctx, m, seq) {
				r.deadLetterTask(ctx, m, t, attempt, err)
			}
			return
		case ctx.Err() != nil:
			_ = m.Nak()
			return
		default:
			failures++
		}
		r.stats.errors.Add(1)
		if failures >= r.cfg.MaxErrors {
			if !r.applied(ctx, m, seq) {
				r.deadLetterTask(ctx, m, t, attempt, err)
			}
			return
		}
		r.log.Warn("task failed, retrying", logType, t.Type, logSeq, seq, logAttempt, attempt, logErr, err)
	}
}

// committed counts an event whose task committed, delivered at start.
func (r *Runtime) committed(start time.Time) {
	d := time.Since(start)
	r.stats.committed.Add(1)
	r.stats.latency.Store(int64(d))
	if o := r.cfg.Observer; o != nil {
		o.ObserveTask(d)
	}
}

// clientInput reports whether events of type typ are what clients send
// (SEND, CHANNEL_SEND), as opposed to events of the platform or the game.
func clientInput(typ string) bool {
	return typ == bus.EventMessage || typ == bus.EventChannel
}

// pause waits a random time up to d (full jitter), or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(rand.N(d) + 1):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// applied acknowledges the event stored at seq if its marker says it has
// been applied already, and reports whether it did.
func (r *Runtime) applied(ctx context.Context, m jetstream.Msg, seq uint64) bool {
	done, err := r.store.Applied(ctx, seq)
	if err != nil || !done {
		return false
	}
	r.stats.duplicates.Add(1)
	_ = m.Ack()
	return true
}

// errDeadline reports a task that ran past its deadline.
var errDeadline = errors.New("handlers: task deadline exceeded")

// PanicError is a handler's panic, recovered at the task boundary.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("handlers: task panicked: %v", e.Value) }

// Is makes a panic permanent: the same code on the same state panics again.
func (e *PanicError) Is(target error) bool { return target == ErrPermanent }

// run makes one attempt: a fresh transaction, the handler, the commit.
func (r *Runtime) run(ctx context.Context, m jetstream.Msg, seq uint64, attempt int) (*Task, error) {
	r.stats.runs.Add(1)
	h := m.Headers()
	t := &Task{
		Type:     h.Get(bus.HeaderType),
		Session:  h.Get(bus.HeaderSession),
		Data:     m.Data(),
		Header:   h,
		EventSeq: seq,
		Attempt:  attempt,
		tx:       r.store.Begin(),
		world:    r.world,
		outTTL:   r.outTTL,
	}
	t.Region, t.Part, _ = r.world.ParseEvent(m.Subject())
	if s := h.Get(bus.HeaderSeq); s != "" {
		t.Seq, _ = strconv.ParseUint(s, 10, 64)
	}
	tctx, cancel := context.WithTimeout(ctx, r.cfg.TaskTimeout)
	var err error
	if id, ok := r.world.ParseSchedule(m.Subject()); ok {
		due, perr := strconv.ParseInt(h.Get(bus.HeaderDue), 10, 64)
		if perr != nil {
			err = Permanent(fmt.Errorf("alarm without a due time: %w", perr))
		} else {
			_, err = r.fire(tctx, t, ScheduleID(id), due)
		}
	} else {
		err = serve(tctx, r.cfg.Handler, t)
		if err == nil && t.Type == bus.EventDisconnect && t.Session != "" {
			// A session's end ends its memberships, after the game has
			// had its say.
			if err = t.leaveAll(tctx, t.Session); err == nil {
				err = t.clearInterests(tctx, t.Session)
			}
		}
	}
	overran := tctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err == nil && overran {
		err = errDeadline
	}
	if err != nil {
		t.tx.Discard()
		if overran && !errors.Is(err, kv.ErrConflict) {
			return t, fmt.Errorf("%w: %w", errDeadline, err)
		}
		if !errors.Is(err, kv.ErrConflict) {
			// An error, or a panic, after reading stale state is an artefact
			// of the stale read, not a verdict: retry it as a conflict.
			if verr := r.store.Validate(ctx, t.tx); errors.Is(verr, kv.ErrConflict) {
				return t, verr
			}
		}
		return t, err
	}
	if t.tx.Empty() {
		t.tx.Discard() // nothing to apply, nothing to mark
		r.sendLive(t)
		return t, nil
	}
	if err := t.tx.MarkApplied(seq); err != nil {
		return t, err
	}
	if err := r.store.Commit(ctx, t.tx); err != nil {
		return t, err
	}
	r.sendLive(t)
	return t, nil
}

// sendLive sends a committed task's best-effort channel messages.
func (r *Runtime) sendLive(t *Task) {
	if len(t.live) == 0 {
		return
	}
	nc := r.cfg.JS.Conn()
	for _, m := range t.live {
		if err := nc.PublishMsg(m); err != nil {
			r.log.Debug("best-effort message not sent", logSeq, t.EventSeq, logErr, err)
		}
	}
}

// serve runs the handler, turning a panic into a *PanicError.
func serve(ctx context.Context, h Handler, t *Task) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h.ServeTask(ctx, t)
}

func (r *Runtime) deadLetterTask(ctx context.Context, m jetstream.Msg, t *Task, attempts int, cause error) {
	read, written := t.tx.Keys()
	attrs := []any{logType, t.Type, logSeq, t.EventSeq, logAttempt, attempts, logErr, cause, logRead, read, logWritten, written}
	var pe *PanicError
	if errors.As(cause, &pe) {
		attrs = append(attrs, "stack", string(pe.Stack))
	}
	r.log.Error("task dead-lettered", attrs...)
	r.deadLetter(ctx, m, t.EventSeq, cause.Error())
}

// deadLetter parks the event on the world's dead-letter subject and
// terminates its delivery. If parking fails, the event is handed back for
// redelivery rather than lost.
func (r *Runtime) deadLetter(ctx context.Context, m jetstream.Msg, seq uint64, reason string) {
	dl := nats.NewMsg(r.world.DeadLetter(seq))
	dl.Data = m.Data()
	for k, v := range m.Headers() {
		if len(k) < 5 || k[:5] != "Nats-" {
			dl.Header[k] = v
		}
	}
	dl.Header.Set(bus.HeaderReason, reason)
	dl.Header.Set("Starbus-Subject", m.Subject())
	if _, err := r.cfg.JS.PublishMsg(context.WithoutCancel(ctx), dl); err != nil {
		r.log.Error("dead letter not stored; event handed back", logSeq, seq, logErr, err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	// Counted once stored: whoever reads the counter finds the dead
	// letter on the stream.
	r.stats.deadLetters.Add(1)
	_ = m.Term()
}

// compact purges handled events and their applied markers. Everything at or
// below a partition's ack floor has been acknowledged and is never
// delivered again; a consumer with nothing pending and nothing
// unacknowledged has handled every event of its partition stored before
// its info was taken. A marker is always stored after its event, so
// events and markers at or below the lowest floor of all partitions (and
// of the alarms) belong to acknowledged events. The owner of partition 0
// purges them, for every partition; a partition with no consumer, or a
// failed look-up, stops the purge for that round.
//
// A purge costs the server about the same whatever it removes: it holds
// the stream while it walks every block of it that may hold the filter's
// messages, loading the ones not in memory, and commits wait meanwhile
// (measured at 1,000 players: 30 ms to 550 ms per purge). So a round
// makes as few purges as it can: one per kind of message, the events of
// all partitions together. At 600 players this took the round trip's p99
// from 340–600 ms (a purge per partition) to 130–140 ms, against 106 ms
// with compaction off; purging in smaller steps, with pauses, made it
// worse (210–350 ms): more purges.
//
// The round's purges are spread over its interval, one per step (see
// compactStep), so that the stream is held for one purge at a time: at
// 300 players four purges held it 130–160 ms back to back, which is
// what the slowest round trips of a run waited.
func (r *Runtime) compact(ctx context.Context, s jetstream.Stream, g *group) {
	tick := time.NewTicker(r.cfg.CompactInterval / compactSteps)
	defer tick.Stop()
	var c compaction
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if g.owned.Load()&1 == 0 {
			c = compaction{past: c.past} // a new owner starts its rounds afresh
			continue
		}
		r.compactStep(ctx, s, g, &c)
	}
}

// compactSteps is the number of steps of a round of compaction.
const compactSteps = 5

// compaction is where compact is in its round: the step to take next, and
// the floors the round's purges of events and alarms used.
type compaction struct {
	step   int
	events uint64 // events at or below it are purged, this round
	alarms uint64 // alarms likewise
	past   sediment
}

// compactStep takes the next step of c's round: purge the events, the
// alarms, the markers, then the checks and settle the state, then the
// keys' superseded revisions (see kv.Store.Revisions). Markers go
// only up to where events and alarms have gone this round, so that every
// event still stored keeps its marker (a partition's next owner checks
// stored events against them). A step that fails leaves its floor at 0,
// which keeps the markers' purge from going past it.
func (r *Runtime) compactStep(ctx context.Context, s jetstream.Stream, g *group, c *compaction) {
	step := c.step
	c.step = (c.step + 1) % compactSteps
	switch step {
	case 0:
		c.events, c.alarms = 0, 0
		// The stream's last sequence first: a consumer's info taken after
		// it speaks for every event stored up to it.
		sinfo, err := s.Info(ctx)
		if err != nil {
			return
		}
		cons, err := partitionConsumers(ctx, s, r.cfg.Consumer)
		if err != nil {
			return
		}
		low := sinfo.State.LastSeq
		for _, infos := range cons {
			if len(infos) == 0 {
				low = 0
			}
			for _, ci := range infos {
				low = min(low, ackFloor(ci, sinfo.State.LastSeq))
			}
		}
		if r.purge(ctx, s, "events", r.world.EventFilter(), low) {
			c.events = low
		}
	case 1:
		sinfo, err := s.Info(ctx)
		if err != nil {
			return
		}
		ci, err := r.schedCons.Info(ctx)
		if err != nil {
			return
		}
		sched := ackFloor(ci, sinfo.State.LastSeq)
		if r.purge(ctx, s, "alarms", r.world.ScheduleFilter(), sched) {
			c.alarms = sched
		}
	case 2:
		r.purge(ctx, s, "markers", r.world.DoneFilter(), min(c.events, c.alarms))
	case 3:
		sinfo, err := s.Info(ctx)
		if err != nil {
			return
		}
		now := time.Now()
		floor := c.past.floor(now, sinfo.State.LastSeq, max(r.cfg.OutboxTTL, 0)+2*r.cfg.CompactInterval)
		if floor > 0 {
			r.purge(ctx, s, "checks", r.world.CheckFilter(), floor-1)
		}
		r.settle(ctx, s, g, floor, c.past.before(now, r.cfg.CompactInterval))
	case 4:
		// Below the floor, every message on a key is superseded (its key
		// has a newer one, which the purge leaves) or an expired tombstone.
		rv, err := r.store.Revisions(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				r.log.Warn("compaction failed", "filter", r.world.KeyFilter(), logErr, err)
			}
		case rv.Superseded() > 0 || rv.Expired > 0:
			r.purge(ctx, s, "revisions", r.world.KeyFilter(), rv.Floor-1)
		}
	}
}

// ackFloor returns the sequence at or below which a consumer has handled
// every message it will ever be given, last being the stream's last
// sequence when its info was taken.
func ackFloor(ci *jetstream.ConsumerInfo, last uint64) uint64 {
	if ci.NumPending == 0 && ci.NumAckPending == 0 {
		return last
	}
	return ci.AckFloor.Stream
}

// sediment remembers the stream's last sequence at each round of
// compaction, to tell which sequence was the last one a while ago.
type sediment struct {
	seen []seqAt
}

type seqAt struct {
	at  time.Time
	seq uint64
}

// floor records that last was the stream's last sequence at now, and
// returns the last sequence of age ago (0 if the runtime has not watched
// that long).
func (p *sediment) floor(now time.Time, last uint64, age time.Duration) uint64 {
	p.seen = append(p.seen, seqAt{now, last})
	i := 0 // the newest sample at least age old
	for i+1 < len(p.seen) && !p.seen[i+1].at.After(now.Add(-age)) {
		i++
	}
	p.seen = p.seen[i:]
	return p.before(now, age)
}

// before returns the newest last sequence recorded at least age before
// now (0 if none is that old), recording nothing.
func (p *sediment) before(now time.Time, age time.Duration) uint64 {
	var seq uint64
	for _, s := range p.seen {
		if s.at.After(now.Add(-age)) {
			break
		}
		seq = s.seq
	}
	return seq
}

// Settling: what the stream still holds below floor is long-lived. The
// traffic written then is gone (events and markers purged, messages to
// sessions and channels expired), but a key written then and never since
// still holds its block of the stream's files, and with it every message
// that block once held: the server frees a block only when it is empty,
// and reads all of it into memory to remove one message. Left alone, the
// blocks of a busy world pile up for as long as it runs (measured: 180
// blocks after 6 minutes of 500 players, for 12,000 live keys), and so
// does the server's memory.
//
// settle copies such keys forward ([kv.Store.Rewrite]) when they are
// sparse below floor: fewer than one message in settleDensity of the
// sequences there. A world whose state fills its old blocks has nothing
// to gain; one whose traffic dwarfs its state rewrites each key that
// stays unwritten about once per floor's age (the outbox TTL and two
// rounds), which costs little next to the traffic that diluted it. Check
// messages below floor are purged: nothing reads them once their batch
// is stored, and the partitions' records are stored again (group.restore).
// At most settleLimit keys move per round.
//
// Settling also lets the keys' superseded revisions go. They are purged
// below the oldest latest revision of any key (the round's last step), so
// one key left unwritten would keep every revision written after it. Once
// the stream holds at least as many superseded revisions as keys, settle
// copies forward the keys unwritten since the round before (recent, the
// stream's last sequence then): each costs one message, as its rollup
// did, but only once a round whatever the traffic, where every write
// paid one before. A world that writes nothing rewrites nothing.
//
// What is left below floor keeps the blocks from there on: dead letters,
// until an operator deals with them, and timers set to fire past floor's
// age.
const (
	settleDensity = 8
	settleLimit   = 20_000
)

func (r *Runtime) settle(ctx context.Context, s jetstream.Stream, g *group, floor, recent uint64) {
	var below uint64 // rewrite the keys whose latest revision is below it
	if floor > 0 {
		g.restore(ctx, floor)
		if r.sparse(ctx, s, floor) {
			below = floor
		}
	}
	if recent > below {
		rv, err := r.store.Revisions(ctx)
		if err == nil && rv.Superseded() >= rv.Keys && rv.Floor < recent {
			below = recent
		}
	}
	if below == 0 {
		return
	}
	n, err := r.store.Rewrite(ctx, below, settleLimit)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("state not settled", logErr, err)
	}
	if n > 0 {
		r.log.Debug("state settled", "keys", n, "below", below)
	}
}

// sparse reports whether the stream holds fewer than one message in
// settleDensity of its sequences below floor.
func (r *Runtime) sparse(ctx context.Context, s jetstream.Stream, floor uint64) bool {
	info, err := s.Info(ctx)
	if err != nil || floor <= info.State.FirstSeq {
		return false
	}
	st := info.State
	// The live messages at or above floor, as a consumer starting there
	// counts them; the rest are below.
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       floor,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return false
	}
	above := cons.CachedInfo().NumPending
	_ = s.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name)
	below := st.Msgs - min(above, st.Msgs)
	return below*settleDensity <= floor-st.FirstSeq
}

// purgeOutbox removes what is stored for session once it has ended, when
// its messages have no TTL: they would stay forever, since nothing reads
// them any more. The edges leave it to the workers: their role may not
// purge. With a TTL (Config.OutboxTTL, the default) they are left to it:
// a purge of several messages makes the server recount the pending
// messages of every consumer of the stream, and scans the stream's last
// TTL of messages for the session's, so that a thousand sessions ending
// at once (a mass logout, an edge lost) held the stream for minutes,
// while each message's expiry is a single removal.
func (r *Runtime) purgeOutbox(ctx context.Context, session string) {
	if r.outTTL != "" {
		return
	}
	subj, err := r.world.Session(session)
	if err != nil || r.stream == nil {
		return
	}
	if err := r.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil && ctx.Err() == nil {
		r.log.Debug("outbox not purged", logErr, err)
	}
}

// purge removes the messages of kind on filter at or below seq, and
// reports whether it did (nothing to do, seq 0, counts as not).
func (r *Runtime) purge(ctx context.Context, s jetstream.Stream, kind, filter string, seq uint64) bool {
	if seq == 0 {
		return false
	}
	start := time.Now()
	err := s.Purge(ctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(seq+1))
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("compaction failed", "filter", filter, logErr, err)
		}
		return false
	}
	if o := r.cfg.Observer; o != nil {
		o.ObserveCompaction(kind, time.Since(start))
	}
	return true
}

// Stats counts what a runtime has done.
type Stats struct {
	Runs        uint64        // attempts: handler runs, alarms included
	Committed   uint64        // events whose task committed (or had nothing to commit)
	Conflicts   uint64        // attempts that ended in a conflict
	Deadlines   uint64        // attempts that ran past the deadline
	Retries     uint64        // attempts re-run (conflicts and deadlines)
	Errors      uint64        // attempts that ended in an error
	DeadLetters uint64        // events dead-lettered
	Duplicates  uint64        // redelivered events found already applied
	Unhandled   uint64        // client events (messages, channel messages) of a type the handler has none for: dropped
	Unavailable uint64        // attempts that found the server unavailable (retried without limit)
	Acquired    uint64        // partitions taken
	Released    uint64        // partitions handed back to the group
	Lost        uint64        // partitions taken over by another worker, or whose consumer went away
	StaleAlarms uint64        // alarms of cancelled schedules or due times already run
	LastLatency time.Duration // delivery-to-ack time of the last committed event (Config.Observer sees every one)
}

type runtimeStats struct {
	runs, committed, conflicts, deadlines, retries, errors, deadLetters, duplicates, staleAlarms, unavailable, unhandled atomic.Uint64
	latency                                                                                                              atomic.Int64
}

// Stats returns a snapshot of the runtime's counters.
func (r *Runtime) Stats() Stats {
	var acquired, released, lost uint64
	if g := r.group.Load(); g != nil {
		acquired, released, lost = g.stats.acquired.Load(), g.stats.released.Load(), g.stats.lost.Load()
	}
	return Stats{
		Acquired:    acquired,
		Released:    released,
		Lost:        lost,
		Runs:        r.stats.runs.Load(),
		Committed:   r.stats.committed.Load(),
		Conflicts:   r.stats.conflicts.Load(),
		Deadlines:   r.stats.deadlines.Load(),
		Retries:     r.stats.retries.Load(),
		Errors:      r.stats.errors.Load(),
		DeadLetters: r.stats.deadLetters.Load(),
		Duplicates:  r.stats.duplicates.Load(),
		Unhandled:   r.stats.unhandled.Load(),
		Unavailable: r.stats.unavailable.Load(),
		StaleAlarms: r.stats.staleAlarms.Load(),
		LastLatency: time.Duration(r.stats.latency.Load()),
	}
}
