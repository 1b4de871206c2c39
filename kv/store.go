package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/starbus/starbus/bus"
)

// Options tunes a [Store]. The zero value is usable.
type Options struct {
	// Codec encodes values for Get and Put (default [JSON]).
	Codec Codec
	// Logger receives the store's logs (default: discard).
	Logger *slog.Logger
	// CacheSize bounds the number of keys whose latest value is kept in
	// memory (default 100,000; negative disables the cache).
	CacheSize int
	// MaxInflight bounds the commit groups in flight to the server at once
	// (default 4; the server allows 50 atomic batches in flight per stream).
	MaxInflight int
	// MaxBatch bounds the messages of one atomic batch (default and maximum
	// 1,000, the server's limit).
	MaxBatch int
	// MaxAttempts bounds how often [Store.Update] runs its function when
	// commits conflict (default 1,000: under heavy contention on one key
	// each round has one winner, and a loser must not give up early).
	MaxAttempts int
	// CommitTimeout bounds one commit round trip (default 10s).
	CommitTimeout time.Duration
	// TombstoneTTL is how long the record of a deleted key stays in the
	// stream (default 10m; negative: forever). After it, compaction
	// removes it (package handlers), and the key has no message at all,
	// which reads the same: not found. It bounds what
	// keys that come and go leave behind (a channel's members, a player's
	// offers). A transaction that read the tombstone before it expired and
	// commits after conflicts once and re-runs.
	TombstoneTTL time.Duration
	// ForwardTimeout bounds the wait for a commit leader's answer to a
	// forwarded commit (default 2s, at most CommitTimeout): past it, the
	// leader may have died with the commit, whose outcome is then unknown.
	ForwardTimeout time.Duration
	// Observer, if set, is told how long each commit took and how large
	// each commit group was (for metrics). nil: nothing is measured.
	Observer Observer
}

// Observer receives measurements of a store's commit path. Its methods are
// called on that path, from the committing goroutines and the committer:
// they must be safe for concurrent use, fast, and never block.
type Observer interface {
	// ObserveCommit reports a commit handed to the committer: how long from
	// the call of [Store.Commit] to its outcome, and the outcome (nil, or
	// the error Commit returns).
	ObserveCommit(d time.Duration, err error)
	// ObserveGroup reports a commit group sent: its transactions, and the
	// messages of the atomic batch this store sent for it (0: none, when
	// every transaction was one message or the batch went to the commit
	// leader).
	ObserveGroup(txs, batchMsgs int)
}

func (o *Options) setDefaults() {
	if o.Codec == nil {
		o.Codec = JSON{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheSize == 0 {
		o.CacheSize = 100_000
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 4
	}
	if o.MaxBatch <= 0 || o.MaxBatch > 1000 {
		o.MaxBatch = 1000
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 1000
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 10 * time.Second
	}
	if o.ForwardTimeout <= 0 {
		o.ForwardTimeout = 2 * time.Second
	}
	o.ForwardTimeout = min(o.ForwardTimeout, o.CommitTimeout)
	if o.TombstoneTTL == 0 {
		o.TombstoneTTL = 10 * time.Minute
	}
}

// Store is transactional state over one world's stream. It is safe for
// concurrent use. Open starts its committer goroutine; Close stops it and
// waits for every commit in flight.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	world  bus.World
	codec  Codec
	log    *slog.Logger
	opts   Options
	cache  *cache

	reqs      chan *commitReq
	completed chan *group
	quit      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// pmu guards pending: the subjects written by commits in flight, each
	// with a channel closed once that commit's outcome is in the cache.
	// Lock order: pmu is a leaf; cache.mu is never held while taking it.
	pmu     sync.Mutex
	pending map[string]chan struct{}

	stats storeStats

	// maxBatches bounds the atomic batches in flight: 1 on an R1 file
	// stream (see the committer), MaxInflight otherwise.
	maxBatches int

	// watch tails the world's state writes to evict superseded cache
	// entries; stopped by Close.
	watch jetstream.ConsumeContext

	turns turns // see turn.go

	// tombTTL is the Starbus-TTL header of a deletion (Options.TombstoneTTL,
	// in seconds, or bus.TombstoneNever).
	tombTTL string

	// via is the commit leader this store forwards batches to; nil
	// commits directly (see forward.go).
	via atomic.Pointer[route]
	// smu guards subs and closing: the subscriptions serving forwarded
	// commits, and whether Close has begun (after which no forwarded
	// commit is taken). A leaf lock.
	smu     sync.Mutex
	subs    []*nats.Subscription
	closing bool
}

// Open returns a store over the world w, whose stream must already be
// provisioned (see [bus.Provision]).
func Open(ctx context.Context, js jetstream.JetStream, w bus.World, opts Options) (*Store, error) {
	opts.setDefaults()
	stream, err := js.Stream(ctx, w.Stream())
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", w.Stream(), err)
	}
	s := &Store{
		js:        js,
		stream:    stream,
		world:     w,
		codec:     opts.Codec,
		log:       opts.Logger,
		opts:      opts,
		cache:     newCache(opts.CacheSize),
		reqs:      make(chan *commitReq),
		completed: make(chan *group, opts.MaxInflight),
		quit:      make(chan struct{}),
		pending:   make(map[string]chan struct{}),
	}
	s.tombTTL = bus.TombstoneNever
	if opts.TombstoneTTL > 0 {
		// The server counts TTLs in whole seconds.
		s.tombTTL = strconv.FormatInt(int64((opts.TombstoneTTL+time.Second-1)/time.Second), 10)
	}
	s.maxBatches = opts.MaxInflight
	if cfg := stream.CachedInfo().Config; cfg.Storage == jetstream.FileStorage && cfg.Replicas <= 1 {
		s.maxBatches = 1
	}
	if opts.CacheSize > 0 {
		// Other processes' commits make cached entries stale. A stale read
		// is safe (commit re-checks), but it costs a conflict and a re-run:
		// tail every state write and keep the cached keys current with it.
		cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{w.KeyFilter()},
			DeliverPolicy:  jetstream.DeliverNewPolicy,
		})
		if err != nil {
			return nil, fmt.Errorf("kv: open %s: watch: %w", w.Stream(), err)
		}
		s.watch, err = cons.Consume(func(m jetstream.Msg) {
			if meta, err := m.Metadata(); err == nil {
				s.cache.observe(m.Subject(), stored(meta.Sequence.Stream, m.Data(), m.Headers()))
			}
		})
		if err != nil {
			return nil, fmt.Errorf("kv: open %s: watch: %w", w.Stream(), err)
		}
	}
	s.wg.Add(1)
	go s.runCommitter()
	return s, nil
}

// Close stops the committer and waits for the commits in flight. Commits
// not yet sent fail with [ErrClosed].
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.smu.Lock()
		s.closing = true
		for _, sub := range s.subs {
			_ = sub.Unsubscribe()
		}
		s.smu.Unlock()
		if s.watch != nil {
			s.watch.Stop()
			<-s.watch.Closed()
		}
		close(s.quit)
	})
	s.wg.Wait()
	return nil
}

// World returns the world the store holds.
func (s *Store) World() bus.World { return s.world }

// Begin starts a read-write transaction. The caller commits it with
// [Store.Commit] or ends it with [Tx.Discard]. Most callers want
// [Store.Update], which retries conflicts.
func (s *Store) Begin() *Tx { return s.newTx(false) }

// Commit makes every effect of tx visible at once, or none of them. It
// fails with [ErrConflict] if any key tx read or wrote has changed since
// tx read it, and with [ErrCommitUnknown] if the server's answer was lost.
// A transaction commits at most once.
func (s *Store) Commit(ctx context.Context, tx *Tx) error {
	if tx.done {
		return ErrTxDone
	}
	tx.done = true
	if tx.empty() {
		// Nothing to write; but a caller acting on what it read must have
		// read one consistent state.
		if len(tx.reads) > 1 {
			return s.Validate(ctx, tx)
		}
		return nil
	}
	r := tx.request()
	if len(r.msgs) > s.opts.MaxBatch {
		return fmt.Errorf("%w: %d messages, at most %d", ErrTooLarge, len(r.msgs), s.opts.MaxBatch)
	}
	var start time.Time
	if s.opts.Observer != nil {
		start = time.Now()
	}
	select {
	case s.reqs <- r:
	case <-s.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed over, the outcome is the server's: wait for it even if
	// ctx ends, or the caller could not tell what happened.
	err := <-r.done
	if o := s.opts.Observer; o != nil {
		o.ObserveCommit(time.Since(start), err)
	}
	return err
}

// Update runs fn in a new transaction and commits it if fn returns nil.
// On a conflict it runs fn again, from scratch, with jittered backoff, up
// to Options.MaxAttempts times, after waiting its turn on the key it lost
// on (see [Store.Turn]). fn must have no effects outside tx.
//
// If fn returns an error after reading values that were already stale, the
// error may be an artefact of the stale read: Update validates the reads and
// retries instead of returning it.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	var err error
	retry := s.NewRetrier()
	defer retry.Done()
	for attempt := range s.opts.MaxAttempts {
		if attempt > 0 {
			if werr := retry.Lost(ctx, err); werr != nil {
				return errors.Join(err, werr)
			}
			if werr := Backoff(ctx, attempt); werr != nil {
				return errors.Join(err, werr)
			}
		}
		tx := s.Begin()
		if err = fn(tx); err != nil {
			tx.Discard()
			if errors.Is(err, ErrConflict) {
				continue
			}
			if verr := s.Validate(ctx, tx); errors.Is(verr, ErrConflict) {
				err = verr
				continue
			}
			return err
		}
		if err = s.Commit(ctx, tx); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("kv: gave up after %d attempts: %w", s.opts.MaxAttempts, err)
}

// View runs fn in a read-only transaction. If fn read more than one key, the
// reads are validated afterwards, so a nil result means fn saw one
// consistent snapshot; a conflict re-runs fn.
func (s *Store) View(ctx context.Context, fn func(tx *Tx) error) error {
	var err error
	for attempt := range s.opts.MaxAttempts {
		if attempt > 0 {
			if werr := Backoff(ctx, attempt); werr != nil {
				return errors.Join(err, werr)
			}
		}
		tx := s.newTx(true)
		err = fn(tx)
		tx.done = true
		if len(tx.reads) <= 1 && err == nil {
			return nil
		}
		if verr := s.Validate(ctx, tx); errors.Is(verr, ErrConflict) {
			err = verr
			continue
		} else if verr != nil && err == nil {
			return verr
		}
		return err
	}
	return fmt.Errorf("kv: gave up after %d attempts: %w", s.opts.MaxAttempts, err)
}

// Backoff waits before attempt (1-based retries) with full jitter: a random
// wait up to 250µs·2^attempt, capped at 50ms. It returns early with ctx's
// error.
func Backoff(ctx context.Context, attempt int) error {
	ceil := 250 * time.Microsecond << min(attempt, 8)
	d := time.Duration(rand.Int64N(int64(min(ceil, 50*time.Millisecond)) + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// validateChunk is the number of subjects [Store.Validate] asks the server
// about at once, under the server's limit of 1,024 per multi-subject get.
const validateChunk = 1000

// Validate checks, on the server, that every key tx read still has the
// revision tx saw, and that no key under a prefix it listed has changed. It
// returns a *ConflictError naming the first key that moved. Use it to tell
// an error caused by a stale read from a real one.
func (s *Store) Validate(ctx context.Context, tx *Tx) error {
	if len(tx.reads) == 0 {
		return nil
	}
	subjects := make([]string, 0, len(tx.reads))
	for subj, rev := range tx.reads {
		if !isRange(subj) {
			subjects = append(subjects, subj)
			continue
		}
		m, err := s.stream.GetLastMsgForSubject(ctx, subj)
		var now uint64
		switch {
		case err == nil:
			now = m.Sequence
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return fmt.Errorf("kv: validate: %w", unavailable(err))
		}
		if now != rev {
			key, _ := s.world.ParseKey(strings.TrimSuffix(subj, ".>"))
			return &ConflictError{Key: key + ".>", Read: rev, Now: now}
		}
	}
	if len(subjects) == 0 {
		return nil
	}
	current := make(map[string]uint64, len(subjects))
	// The server answers at most 1,024 subjects per request. Validating in
	// chunks, every chunk after every read, still proves one snapshot:
	// revisions only grow, so a key whose revision is unchanged at its
	// chunk's check held its value from its read until then, and so every
	// key held its value at the moment of the last read.
	err := s.lastMsgs(ctx, subjects, func(m *jetstream.RawStreamMsg) { current[m.Subject] = m.Sequence })
	if err != nil {
		return fmt.Errorf("kv: validate: %w", unavailable(err))
	}
	for _, subj := range subjects {
		rev := tx.reads[subj]
		if now := current[subj]; now != rev {
			s.cache.evict(subj)
			key, _ := s.world.ParseKey(subj)
			return &ConflictError{Key: key, Read: rev, Now: now}
		}
	}
	return nil
}

// isRange reports whether a subject read is a range (see Tx.List).
func isRange(subj string) bool { return strings.HasSuffix(subj, ".>") }

// scan calls fn with the latest entry of every subject matching filter,
// deletions included, and returns the highest revision among them (0 for
// none): the last revision of the range, as the server's check of a
// wildcard subject sees it. It asks for them in one request; past the
// server's limit of 1,024 subjects per request, it reads them through an
// ordered consumer.
func (s *Store) scan(ctx context.Context, filter string, fn func(subj string, e entry)) (uint64, error) {
	var last uint64
	seen := map[string]uint64{}
	put := func(subj string, seq uint64, data []byte, h nats.Header) {
		if seq <= seen[subj] {
			return
		}
		seen[subj] = seq
		last = max(last, seq)
		fn(subj, stored(seq, data, h))
	}
	err := s.lastMsgs(ctx, []string{filter}, func(m *jetstream.RawStreamMsg) {
		put(m.Subject, m.Sequence, m.Data, m.Header)
	})
	if err == nil {
		s.stats.reads.Add(uint64(len(seen)))
		return last, nil
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	// Too many subjects for one request (or an older server): read the
	// range's latest messages as a consumer delivers them.
	err = s.read(ctx, filter, jetstream.DeliverLastPerSubjectPolicy, func(m jetstream.Msg, meta *jetstream.MsgMetadata) bool {
		put(m.Subject(), meta.Sequence.Stream, m.Data(), m.Headers())
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("kv: list: %w", err)
	}
	s.stats.reads.Add(uint64(len(seen)))
	return last, nil
}

// read calls fn with the messages on filter that an ephemeral consumer
// delivering by policy hands out, in stream order, until fn returns false
// or none is left.
func (s *Store) read(ctx context.Context, filter string, policy jetstream.DeliverPolicy, fn func(jetstream.Msg, *jetstream.MsgMetadata) bool) error {
	cons, done, err := s.tempConsumer(ctx, filter, policy)
	if err != nil {
		return err
	}
	defer done()
	if cons.CachedInfo().NumPending == 0 {
		return nil
	}
	msgs, err := cons.Messages()
	if err != nil {
		return unavailable(err)
	}
	defer msgs.Stop()
	for {
		m, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			return unavailable(err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if !fn(m, meta) || meta.NumPending == 0 {
			return nil
		}
	}
}

// tempConsumer creates a consumer of the stream's messages on filter, from
// policy, that acknowledges nothing and lives in the server's memory; its
// info counts the messages it has to deliver. done deletes it.
func (s *Store) tempConsumer(ctx context.Context, filter string, policy jetstream.DeliverPolicy) (cons jetstream.Consumer, done func(), err error) {
	cons, err = s.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     filter,
		DeliverPolicy:     policy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // gone by itself if the delete is lost
	})
	if err != nil {
		return nil, nil, unavailable(err)
	}
	return cons, func() { _ = s.stream.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name) }, nil
}

// prefetch puts the latest entries of subjects in the cache. Like load, it
// may cache an entry a moment stale; commits check revisions.
func (s *Store) prefetch(ctx context.Context, subjects []string) error {
	for _, subj := range subjects {
		s.cache.loadStart(subj)
	}
	defer func() {
		for _, subj := range subjects {
			s.cache.loadEnd(subj)
		}
	}()
	found := make(map[string]bool, len(subjects))
	err := s.lastMsgs(ctx, subjects, func(m *jetstream.RawStreamMsg) {
		found[m.Subject] = true
		s.cache.put(m.Subject, stored(m.Sequence, m.Data, m.Header))
	})
	if err != nil {
		return fmt.Errorf("kv: prefetch: %w", unavailable(err))
	}
	for _, subj := range subjects {
		if !found[subj] {
			s.cache.put(subj, entry{deleted: true})
		}
	}
	s.stats.reads.Add(uint64(len(subjects)))
	return nil
}

// lastMsgs calls fn with the last message of each of subjects that has
// one, asking the server about validateChunk subjects at a time (it
// answers at most 1,024 per request).
//
// Chunks are not one snapshot; Validate still proves one (see there).
func (s *Store) lastMsgs(ctx context.Context, subjects []string, fn func(*jetstream.RawStreamMsg)) error {
	for chunk := range slices.Chunk(subjects, validateChunk) {
		msgs, err := jetstreamext.GetLastMsgsFor(ctx, s.js, s.world.Stream(), chunk)
		if err != nil {
			return err
		}
		for m, err := range msgs {
			if err != nil {
				if errors.Is(err, jetstreamext.ErrNoMessages) {
					break
				}
				return err
			}
			fn(m)
		}
	}
	return nil
}

// Applied reports whether the event stored at stream sequence seq has been
// marked applied by a committed transaction.
func (s *Store) Applied(ctx context.Context, seq uint64) (bool, error) {
	_, err := s.stream.GetLastMsgForSubject(ctx, s.world.Done(seq))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("kv: applied %d: %w", seq, unavailable(err))
	}
}

// load returns the latest entry of a state subject: after any commit of
// this process in flight on it, from the cache, or from the server.
func (s *Store) load(ctx context.Context, subj string) (entry, error) {
	s.pmu.Lock()
	wait := s.pending[subj]
	s.pmu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return entry{}, ctx.Err()
		}
	}
	if e, ok := s.cache.get(subj); ok {
		s.stats.cacheHits.Add(1)
		return e, nil
	}
	if err := ctx.Err(); err != nil {
		return entry{}, err
	}
	s.cache.loadStart(subj)
	defer s.cache.loadEnd(subj)
	m, err := s.stream.GetLastMsgForSubject(ctx, subj)
	var e entry
	switch {
	case err == nil:
		e = stored(m.Sequence, m.Data, m.Header)
	case errors.Is(err, jetstream.ErrMsgNotFound):
		e = entry{deleted: true}
	default:
		return entry{}, fmt.Errorf("kv: read %s: %w", subj, unavailable(err))
	}
	s.stats.reads.Add(1)
	s.cache.put(subj, e)
	return e, nil
}

// Stats counts what a store has done since it opened.
type Stats struct {
	Commits   uint64 // transactions committed
	Conflicts uint64 // commits refused for a conflict (locally or by the server)
	Groups    uint64 // commit groups sent to the server
	Batches   uint64 // atomic batches among them
	Preopened uint64 // batches committed into a batch opened ahead of them (see open.go)
	Reads     uint64 // reads that went to the server
	CacheHits uint64 // reads answered from the cache
	Forwards  uint64 // groups of commits forwarded to the commit leader and answered
	Forwarded uint64 // commits taken from other stores and committed, as their commit leader
}

type storeStats struct {
	commits, conflicts, groups, batches, preopened, reads, cacheHits, forwards, forwarded atomic.Uint64
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:   s.stats.commits.Load(),
		Conflicts: s.stats.conflicts.Load(),
		Groups:    s.stats.groups.Load(),
		Batches:   s.stats.batches.Load(),
		Preopened: s.stats.preopened.Load(),
		Reads:     s.stats.reads.Load(),
		CacheHits: s.stats.cacheHits.Load(),
		Forwards:  s.stats.forwards.Load(),
		Forwarded: s.stats.forwarded.Load(),
	}
}
