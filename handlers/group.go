package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers/internal/partition"
)

// The I/O of the worker-group protocol, whose decisions are made by package
// partition (handlers/internal/partition; its documentation describes the
// protocol): this file publishes the heartbeats, watches the group's
// subjects into a partition.Board, plans from a partition.View of it and of
// the partitions consumed here, and carries out the plan's actions:
// compare-and-set of ownership records, creation and deletion of the
// epochs' consumers, reading a partition's events into the task queue.

// partSub is this runtime's subscription to a partition it owns.
type partSub struct {
	p              int
	partition.Held // the epoch consumed and the record that made it ours
	iter           jetstream.MessagesContext
	stopped        atomic.Bool  // set once the partition is no longer ours
	out            atomic.Int64 // events taken from the server and not yet finished
}

// stop ends the subscription: no more events are taken, and those queued
// but not started are dropped (the partition's next owner replays them).
func (ps *partSub) stop() {
	ps.stopped.Store(true)
	ps.iter.Stop()
}

// opKind says what an asynchronous group operation reports.
type opKind int

const (
	opAcquired opKind = iota // ps is set on success
	opReleased
	opEnded // a partition's reader stopped
)

type opResult struct {
	kind opKind
	p    int
	ps   *partSub
	err  error
}

// group is a runtime's membership in its world's worker group. Its loop
// goroutine owns parts, busy, notUntil, inflight and leader; the watcher's
// callback writes the board under mu.
type group struct {
	r      *Runtime
	js     jetstream.JetStream
	stream jetstream.Stream
	w      bus.World
	name   string
	member string
	lease  time.Duration
	beat   time.Duration
	q      *keyQueue

	mu    sync.Mutex      // guards board
	board partition.Board // what the watch has shown of the group
	poke  chan struct{}

	parts    [bus.Partitions]*partSub
	busy     [bus.Partitions]bool
	notUntil [bus.Partitions]time.Time // after a failed acquisition or release
	inflight int                       // goroutines that will send one result each
	leader   string                    // the commit leader, "" for this worker itself
	results  chan opResult
	owned    atomic.Uint32 // bit p set while partition p is consumed here

	stats struct{ acquired, released, lost atomic.Uint64 }
}

func newGroup(r *Runtime, stream jetstream.Stream, q *keyQueue) *group {
	return &group{
		r: r, js: r.cfg.JS, stream: stream, w: r.world, name: r.cfg.Consumer, member: r.cfg.Member,
		lease: r.cfg.Lease, beat: partition.Beat(r.cfg.Lease), q: q,
		board:   partition.NewBoard(bus.Partitions),
		poke:    make(chan struct{}, 1),
		results: make(chan opResult, 4*bus.Partitions),
	}
}

// run joins the group and keeps this runtime's share of the partitions
// until ctx ends; then it stops consuming and returns the partitions it
// held, for leave to hand back once their running tasks have finished.
func (g *group) run(ctx context.Context) ([]*partSub, error) {
	if err := g.heartbeat(ctx); err != nil {
		return nil, fmt.Errorf("handlers: join group %s: %w", g.name, err)
	}
	watch, err := g.watch(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { watch.stop() }()

	// Heartbeats go out from a goroutine of their own, so that a slow
	// publish delays neither the others nor the loop.
	hctx, stopBeats := context.WithCancel(ctx)
	closed := make(chan error, 1)
	var beats sync.WaitGroup
	beats.Go(func() {
		tick := time.NewTicker(g.beat)
		defer tick.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-tick.C:
			}
			if err := g.heartbeat(hctx); errors.Is(err, nats.ErrConnectionClosed) {
				closed <- err
				return
			}
		}
	})
	defer func() {
		stopBeats()
		beats.Wait()
	}()

	tick := time.NewTicker(g.beat)
	defer tick.Stop()
	syncBy := time.Now().Add(g.lease) // act on a partial view rather than never
	for {
		g.evaluate(ctx, syncBy)
		select {
		case <-ctx.Done():
			return g.shutdown(), nil
		case err := <-closed:
			return g.shutdown(), fmt.Errorf("handlers: group %s: %w", g.name, err)
		case <-tick.C:
			// A watcher that has not shown this member's own heartbeats for
			// a lease may have stopped for good (its consumer lost with a
			// server): start another.
			if partition.Rewatch(time.Now(), g.lastSeen(g.member), watch.started, g.lease) {
				g.r.log.Info("group view stale, watching again", logMember, g.member)
				watch.stop()
				if w, err := g.watch(ctx); err == nil {
					watch = w
				}
			}
		case <-g.poke:
		case res := <-g.results:
			g.apply(ctx, res)
		}
	}
}

// heartbeat tells the group this member is alive.
func (g *group) heartbeat(ctx context.Context) error {
	subj, err := g.w.Member(g.name, g.member)
	if err != nil {
		return err
	}
	if g.r.muteHeartbeats.Load() {
		return nil // a test makes this worker look dead to the others
	}
	m := nats.NewMsg(subj)
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	ttl := partition.HeartbeatTTL(g.lease)
	pctx, cancel := context.WithTimeout(ctx, g.lease)
	defer cancel()
	_, err = g.js.PublishMsg(pctx, m, jetstream.WithMsgTTL(ttl))
	return err
}

// watcher is a running watch of the group's subjects.
type watcher struct {
	cc      jetstream.ConsumeContext
	started time.Time
}

func (w *watcher) stop() {
	w.cc.Stop()
	<-w.cc.Closed()
}

// watch starts delivering the latest message of every subject of the
// group, then every new one, to observe.
func (g *group) watch(ctx context.Context) (*watcher, error) {
	filter, err := g.w.GroupFilter(g.name)
	if err != nil {
		return nil, err
	}
	cons, err := g.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("handlers: watch group %s: %w", g.name, err)
	}
	var caughtUp atomic.Bool
	cc, err := cons.Consume(func(m jetstream.Msg) { g.observe(m, &caughtUp) })
	if err != nil {
		return nil, fmt.Errorf("handlers: watch group %s: %w", g.name, err)
	}
	return &watcher{cc: cc, started: time.Now()}, nil
}

// observe puts one message of the group's subjects on the board: a
// member's heartbeat, its leaving (a delete heartbeat), or a partition's
// record. caughtUp is set once the watch has delivered what was stored
// when it started.
func (g *group) observe(m jetstream.Msg, caughtUp *atomic.Bool) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	member, p, ok := g.w.ParseGroup(g.name, m.Subject())
	g.mu.Lock()
	switch {
	case !ok:
	case p < 0 && bus.IsDelete(m.Headers()):
		g.board.Leave(member)
	case p < 0:
		g.board.Heartbeat(member, time.Now(), meta.Timestamp, caughtUp.Load())
	default:
		if rec, err := partition.DecodeRecord(m.Data(), meta.Sequence.Stream); err == nil {
			g.board.Learn(p, rec)
		}
	}
	if meta.NumPending == 0 {
		caughtUp.Store(true)
		g.board.Synced = true
	}
	g.mu.Unlock()
	g.nudge()
}

func (g *group) nudge() {
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

// lastSeen returns when member's last heartbeat was seen.
func (g *group) lastSeen(member string) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.board.Members[member]
}

// refresh reads partition p's record from the server, after a
// compare-and-set found the view's out of date.
func (g *group) refresh(ctx context.Context, p int) {
	subj, err := g.w.Owner(g.name, p)
	if err != nil {
		return
	}
	m, err := g.stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return
	}
	rec, err := partition.DecodeRecord(m.Data, m.Sequence)
	if err != nil {
		return
	}
	g.mu.Lock()
	g.board.Learn(p, rec)
	g.mu.Unlock()
}

// evaluate plans from the board and the partitions consumed here
// (partition.Plan), and carries the plan out: it starts the acquisitions
// and releases, drops the partitions taken over, and follows the commit
// leader. Until syncBy, it waits for the watch to catch up.
func (g *group) evaluate(ctx context.Context, syncBy time.Time) {
	g.mu.Lock()
	board := g.board.Clone()
	g.mu.Unlock()
	v := partition.View{
		Board:  board,
		Self:   g.member,
		Now:    time.Now(),
		Lease:  g.lease,
		SyncBy: syncBy,
		Leader: cmp.Or(g.leader, g.member),
		Parts:  make([]partition.Local, bus.Partitions),
	}
	for p, ps := range g.parts {
		v.Parts[p] = partition.Local{Busy: g.busy[p], NotUntil: g.notUntil[p]}
		if ps != nil {
			ps.Follow(g.member, board.Records[p])
			v.Parts[p].Held = &ps.Held
		}
	}
	for _, a := range partition.Plan(v) {
		switch a.Op {
		case partition.Lead:
			g.lead(a.Member)
		case partition.Drop:
			g.drop(a.P, a.Reason)
		case partition.Acquire:
			g.acquire(ctx, a.P, a.Record)
		case partition.Release:
			g.release(ctx, a.P, a.Record)
		}
	}
}

// lead makes leader the group's commit leader for this worker (Plan's
// Lead). The others forward their atomic batches to it, so that one
// committer forms them all and keeps their conflicts apart (see package
// kv, forward.go). Views that disagree for a while cost conflicts, not
// correctness. If the store refuses, leader is kept as it was, and the
// next plan asks again.
func (g *group) lead(leader string) {
	if leader == g.member {
		leader = ""
	}
	if leader == g.leader {
		return
	}
	if err := g.r.store.CommitVia(leader); err != nil {
		g.r.log.Warn("commit leader", logMember, leader, logErr, err)
		return
	}
	g.leader = leader
	if leader == "" {
		leader = g.member
	}
	g.r.log.Info("commit leader", logMember, leader)
}

func (g *group) setOwned(p int, on bool) {
	for {
		old := g.owned.Load()
		v := old &^ (1 << p)
		if on {
			v |= 1 << p
		}
		if g.owned.CompareAndSwap(old, v) {
			return
		}
	}
}

// drop stops consuming partition p at once.
func (g *group) drop(p int, why string) {
	g.r.log.Info("partition lost", logPartition, p, logEpoch, g.parts[p].Epoch, logReason, why)
	g.parts[p].stop()
	g.parts[p] = nil
	g.setOwned(p, false)
	g.stats.lost.Add(1)
}

// acquire takes partition p in the background.
// rec is the partition's record known, which the next epoch's replaces.
func (g *group) acquire(ctx context.Context, p int, rec partition.Record) {
	g.busy[p] = true
	g.inflight++
	go func() {
		ps, err := g.take(ctx, p, rec)
		g.results <- opResult{kind: opAcquired, p: p, ps: ps, err: err}
	}()
}

// release hands partition p back in the background: stop taking its
// events if it is consumed here, let the ones started finish (bounded by
// the lease), then clear the owner of rec, the record by which this worker
// holds it, so that the next owner need not wait for a lease.
func (g *group) release(ctx context.Context, p int, rec partition.Record) {
	g.busy[p] = true
	g.inflight++
	ps := g.parts[p]
	if ps != nil {
		g.parts[p] = nil
		g.setOwned(p, false)
		ps.stop()
	}
	go func() {
		if ps != nil {
			g.settle(ctx, ps)
		}
		err := g.writeRecord(ctx, p, rec.Released(), rec.Seq)
		g.results <- opResult{kind: opReleased, p: p, err: err}
	}()
}

// settle waits, up to a lease, until the tasks started on ps have ended.
func (g *group) settle(ctx context.Context, ps *partSub) {
	deadline := time.Now().Add(g.lease)
	for ps.out.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
}

// apply takes in the result of an asynchronous operation.
func (g *group) apply(ctx context.Context, res opResult) {
	g.inflight--
	switch res.kind {
	case opAcquired:
		g.busy[res.p] = false
		switch {
		case res.err != nil:
			g.backOff(res.p)
			if ctx.Err() == nil {
				g.r.log.Info("partition not acquired", logPartition, res.p, logErr, res.err)
			}
		case ctx.Err() != nil:
			res.ps.stop()
		default:
			g.parts[res.p] = res.ps
			g.setOwned(res.p, true)
			g.stats.acquired.Add(1)
			g.r.log.Info("partition acquired", logPartition, res.p, logEpoch, res.ps.Epoch)
			g.inflight++
			go g.read(res.ps)
		}
	case opReleased:
		g.busy[res.p] = false
		if res.err == nil {
			g.stats.released.Add(1)
			g.r.log.Info("partition released", logPartition, res.p)
		} else if ctx.Err() == nil {
			g.backOff(res.p)
			g.r.log.Info("partition not released", logPartition, res.p, logErr, res.err)
		}
	case opEnded:
		if g.parts[res.p] == res.ps {
			why := "its consumer went away"
			if errors.Is(res.err, errDeliveryGap) {
				why = "a delivery was lost"
			}
			g.r.log.Info("partition lost", logPartition, res.p, logEpoch, res.ps.Epoch, logReason, why, logErr, res.err)
			// The consumer went away under us (taken over, or the server
			// lost it), or lost a delivery: stop, and let the next plan
			// decide what comes next (this worker takes the partition again, at
			// its next epoch, if it is still this worker's).
			g.parts[res.p] = nil
			g.setOwned(res.p, false)
			res.ps.stopped.Store(true)
			g.stats.lost.Add(1)
		}
	}
}

// backOff keeps partition p out of the next plans for a while
// (partition.Local.NotUntil), so that a failing acquisition or release is
// not retried in a tight loop.
func (g *group) backOff(p int) {
	g.notUntil[p] = time.Now().Add(g.beat/2 + rand.N(g.beat))
}

// read moves a partition's events into the task queue until the
// subscription stops.
func (g *group) read(ps *partSub) {
	var err error
	var seqs partition.Deliveries
	for {
		var m jetstream.Msg
		if m, err = ps.iter.Next(); err != nil {
			break
		}
		if ps.stopped.Load() {
			continue
		}
		// A gap in the consumer's delivery sequence is a delivery lost on
		// its way here: it ends this subscription, so that the lost event,
		// delivered first by the partition's next epoch, still runs before
		// the partition's later events (partition.Deliveries;
		// TestKillLeader).
		if meta, merr := m.Metadata(); merr == nil {
			if last, ok := seqs.Take(meta.Sequence.Consumer); !ok {
				err = fmt.Errorf("%w: consumer sequence %d after %d", errDeliveryGap, meta.Sequence.Consumer, last)
				ps.stop()
				break
			}
		}
		_, part, ok := g.w.ParseEvent(m.Subject())
		if !ok {
			part = "malformed." + m.Subject() // process dead-letters it
		}
		ps.out.Add(1)
		if !g.q.push(part, item{m: m, ps: ps}) {
			ps.out.Add(-1)
		}
	}
	g.results <- opResult{kind: opEnded, p: ps.p, ps: ps, err: err}
}

// errDeliveryGap reports a partition's delivery that never arrived.
var errDeliveryGap = errors.New("handlers: a delivery was lost")

// shutdown stops every subscription, waits for the operations in flight,
// and returns the partitions that were consumed here.
func (g *group) shutdown() []*partSub {
	var held []*partSub
	for p, ps := range g.parts {
		if ps != nil {
			ps.stop()
			held = append(held, ps)
			g.parts[p] = nil
		}
	}
	for g.inflight > 0 {
		res := <-g.results
		g.inflight--
		if res.kind == opAcquired && res.ps != nil {
			res.ps.stop()
			held = append(held, res.ps)
		}
	}
	g.owned.Store(0)
	return held
}

// leave tells the group this member is gone and hands back the partitions
// it held, so that the others take them over at once.
func (g *group) leave(ctx context.Context, held []*partSub) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if subj, err := g.w.Member(g.name, g.member); err == nil {
		m := nats.NewMsg(subj)
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		m.Header.Set(bus.HeaderOp, bus.OpDelete)
		_, _ = g.js.PublishMsg(ctx, m, jetstream.WithMsgTTL(time.Second))
	}
	var wg sync.WaitGroup
	for _, ps := range held {
		wg.Go(func() {
			rec := ps.Record(g.member)
			_ = g.writeRecord(ctx, ps.p, rec.Released(), rec.Seq)
		})
	}
	wg.Wait()
}

// writeRecord stores partition p's record if its last one is still at
// sequence last (0: none yet), and returns the new record's sequence.
func (g *group) writeRecord(ctx context.Context, p int, rec partition.Record, last uint64) error {
	_, err := g.storeRecord(ctx, p, rec, last)
	return err
}

func (g *group) storeRecord(ctx context.Context, p int, rec partition.Record, last uint64) (uint64, error) {
	subj, err := g.w.Owner(g.name, p)
	if err != nil {
		return 0, err
	}
	m := nats.NewMsg(subj)
	m.Data = rec.Encode()
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	ack, err := g.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			g.refresh(ctx, p) // the view is behind: do not try again with it
		}
		return 0, err
	}
	return ack.Sequence, nil
}

// restore stores again, unchanged, each partition record stored below
// floor, by compare-and-set on its sequence (a record changed meanwhile
// is left as its writer made it): a record that never changes would keep
// the stream's first block, and with it every block after (the server
// frees a block only once nothing before it needs its deletion records).
// Its holder follows the copy ([partition.Held.Follow]). It touches no
// state of the group's goroutine: the compaction calls it.
func (g *group) restore(ctx context.Context, floor uint64) {
	for p := range bus.Partitions {
		subj, err := g.w.Owner(g.name, p)
		if err != nil {
			return
		}
		last, err := g.stream.GetLastMsgForSubject(ctx, subj)
		if err != nil || last.Sequence >= floor {
			continue
		}
		m := nats.NewMsg(subj)
		m.Data = last.Data
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		_, _ = g.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last.Sequence))
	}
}

// consumerName names the consumer of epoch e of partition p.
func consumerName(group string, p int, e uint64) string {
	return group + "-p" + strconv.Itoa(p) + "-e" + strconv.FormatUint(e, 10)
}

// ParseConsumerName returns the partition and epoch of a consumer of the
// worker group's partitions (<group>-p<partition>-e<epoch>), for tools and
// tests that watch a world's consumers.
func ParseConsumerName(group, name string) (p int, e uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, group+"-p")
	if !ok {
		return 0, 0, false
	}
	ps, es, ok := strings.Cut(rest, "-e")
	if !ok {
		return 0, 0, false
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 || p >= bus.Partitions {
		return 0, 0, false
	}
	e, err = strconv.ParseUint(es, 10, 64)
	return p, e, err == nil
}

// partitionConsumers lists the consumers of every epoch of every partition
// of the group.
func partitionConsumers(ctx context.Context, s jetstream.Stream, group string) ([bus.Partitions][]*jetstream.ConsumerInfo, error) {
	var out [bus.Partitions][]*jetstream.ConsumerInfo
	list := s.ListConsumers(ctx)
	for ci := range list.Info() {
		if p, _, ok := ParseConsumerName(group, ci.Name); ok {
			out[p] = append(out[p], ci)
		}
	}
	return out, list.Err()
}

// take makes partition p this runtime's: it wins the next epoch by
// compare-and-set on rec, the partition's record known, creates the epoch's
// consumer where partition.Next says (after the lowest ack floor of the
// earlier epochs), then deletes the earlier epochs' consumers.
func (g *group) take(ctx context.Context, p int, rec partition.Record) (*partSub, error) {
	all, err := partitionConsumers(ctx, g.stream, g.name)
	if err != nil {
		return nil, err
	}
	olds := all[p]
	earlier := make([]partition.Consumer, len(olds))
	for i, o := range olds {
		earlier[i] = partition.Consumer{AckFloor: o.AckFloor.Stream, Delivered: o.Delivered.Stream}
	}
	var last uint64 // the stream's last sequence, which Next needs only when no earlier consumer is left
	if len(olds) == 0 {
		info, err := g.stream.Info(ctx)
		if err != nil {
			return nil, err
		}
		last = info.State.LastSeq
	}
	next, start := partition.Next(g.member, rec, earlier, last)
	ps := &partSub{p: p, Held: partition.Held{Epoch: next.Epoch, Replay: next.Replay}}
	cfg := jetstream.ConsumerConfig{
		Durable:       consumerName(g.name, p, next.Epoch),
		FilterSubject: g.w.PartitionFilter(p),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       g.r.cfg.AckWait,
		MaxAckPending: g.r.cfg.Concurrency * 2,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	if g.stream.CachedInfo().Config.Replicas <= 1 {
		// On one server, the consumer's state (ack floor, pending) is kept
		// in memory, not in a file the server rewrites ten times a second
		// per consumer under load (a tenth of the server's CPU with 16
		// partitions). It is never needed for correctness: a consumer lost
		// with its server's restart is a partition with no earlier
		// consumer, whose next owner checks every stored event against its
		// applied marker (partition.Next), and compaction keeps every
		// marker of a stored event (TestServerRestart). A replicated
		// consumer keeps its state on disk, as before: its ack floor must
		// survive the loss of a node, and memory state on R3 has not been
		// measured against that (TestKillLeader's failures, once blamed on
		// it, came from a lost delivery: see read).
		cfg.MemoryStorage = true
	}
	if ps.RecSeq, err = g.storeRecord(ctx, p, next, rec.Seq); err != nil {
		return nil, err
	}
	cons, err := g.js.CreateConsumer(ctx, g.stream.CachedInfo().Config.Name, cfg)
	if err != nil {
		return nil, err
	}
	for _, o := range olds {
		if err := g.js.DeleteConsumer(ctx, o.Stream, o.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			_ = g.js.DeleteConsumer(ctx, o.Stream, cfg.Durable) // try again later, from scratch
			return nil, err
		}
	}
	batch := max(g.r.cfg.Concurrency*4/bus.Partitions, 32)
	if ps.iter, err = cons.Messages(jetstream.PullMaxMessages(batch)); err != nil {
		return nil, err
	}
	return ps, nil
}
