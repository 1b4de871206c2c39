package kv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
)

// remainingTTL tells whether the entry e, stored at stored with header h,
// is worth rewriting, and the TTL its copy needs: a tombstone keeps the
// rest of its time (see tombstoneLeft), rounded down to whole seconds, so
// that copying it forward, once or many times, never makes it last
// longer; one with less than a second left expires where it is.
func (s *Store) remainingTTL(e entry, stored time.Time, h nats.Header) (ttl string, ok bool) {
	if !e.deleted {
		return "", true
	}
	left, expires := s.tombstoneLeft(stored, h)
	if !expires {
		return bus.TombstoneNever, true
	}
	if left < time.Second {
		return "", false
	}
	return strconv.FormatInt(int64(left/time.Second), 10), true
}

// tombstoneLeft returns how long a tombstone stored at stored with header
// h has left to live: its own lifetime (Starbus-TTL, or Nats-TTL in
// worlds written before it), else the store's TombstoneTTL, from when it
// was stored. ok is false for one that lives forever.
func (s *Store) tombstoneLeft(stored time.Time, h nats.Header) (left time.Duration, ok bool) {
	life := s.opts.TombstoneTTL
	for _, k := range []string{bus.HeaderTombstoneTTL, jetstream.MsgTTLHeader} {
		v := h.Get(k)
		if v == bus.TombstoneNever {
			return 0, false
		}
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 {
			life = time.Duration(secs) * time.Second
			break
		}
	}
	if life <= 0 {
		return 0, false
	}
	return life - time.Since(stored), true
}

// rewriters bounds the rewrites of one Rewrite in flight at once. Each is
// a single checked write, which the committer sends as a plain publish.
const rewriters = 64

// Rewrite copies forward the keys whose latest value is stored below stream
// sequence below: oldest first, at most limit of them (limit ≤ 0: all),
// each is written again, unchanged, in a commit that checks that no one
// wrote it meanwhile (a key that was written is skipped: the newer write
// already superseded the old message). It returns how many keys it
// rewrote.
//
// It exists for the stream's files. A file-backed stream frees a block of
// messages only once every message in it is gone, and it reads a whole
// block into memory to remove one message from it. The traffic of a world
// (events, markers, messages to sessions and channels) goes away within
// minutes, but a key written once and never again keeps its block alive:
// over hours, a few live values would hold every block the world ever
// wrote, on disk and, whenever the server touches them, in memory.
// Copied forward, the old values go, and their blocks with them.
//
// A rewritten key's revision changes and its value does not: a task that
// read the key before the rewrite and commits after it conflicts and runs
// again, and a watcher of the key sees the same value once more. Deleted
// keys are rewritten as deleted, with what is left of their time (to the
// second below): they expire when they would have, or a moment before.
func (s *Store) Rewrite(ctx context.Context, below uint64, limit int) (int, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		n       int
		failed  error // the first commit that failed for another reason than a conflict
		slots   = make(chan struct{}, rewriters)
		started int
	)
	err := s.read(ctx, s.world.KeyFilter(), jetstream.DeliverLastPerSubjectPolicy, func(m jetstream.Msg, meta *jetstream.MsgMetadata) bool {
		if meta.Sequence.Stream >= below || limit > 0 && started >= limit {
			return false
		}
		e := stored(meta.Sequence.Stream, m.Data(), m.Headers())
		ttl, ok := s.remainingTTL(e, meta.Timestamp, m.Headers())
		if !ok {
			return true
		}
		slots <- struct{}{}
		mu.Lock()
		stop := failed != nil
		mu.Unlock()
		if stop {
			<-slots
			return false
		}
		started++
		tx := s.newTx(false)
		tx.reads[m.Subject()] = e.rev
		tx.writes = map[string]entry{m.Subject(): {val: e.val, deleted: e.deleted}}
		tx.order = []string{m.Subject()}
		tx.tombTTL = ttl
		wg.Go(func() {
			defer func() { <-slots }()
			err := s.Commit(ctx, tx)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				n++
			case errors.Is(err, ErrConflict):
			case failed == nil:
				failed = err
			}
		})
		return true
	})
	wg.Wait()
	if err = cmp.Or(err, failed); err != nil {
		return n, fmt.Errorf("kv: rewrite: %w", err)
	}
	return n, nil
}

// Revisions is what a world's stream holds of its keys.
type Revisions struct {
	Stored uint64 // messages on keys: every key's latest revision, and the older ones not purged yet
	Keys   uint64 // keys with a message (tombstones included), so latest revisions
	// Floor is the lowest stream sequence of a key's latest revision that
	// is not an expired tombstone (with none, one past the last; 0 with
	// no key at all). Every message on a key below it is superseded, or
	// an expired tombstone: purged, the key reads the same.
	Floor   uint64
	Expired uint64 // latest revisions below Floor that are expired tombstones
}

// Superseded returns how many of the stored revisions are not their key's
// latest (an estimate: the counts are taken one after the other).
func (r Revisions) Superseded() uint64 { return r.Stored - min(r.Keys, r.Stored) }

// Revisions counts the messages the stream holds on keys and finds the
// floor below which they can all be purged.
//
// A write leaves the revision it supersedes stored, because removing it
// then would cost the commit path more than anything else it does: the
// server's rollup of a subject is a purge, matched against every consumer
// of the stream, made by the one goroutine that stores the stream's
// messages (a third of that goroutine's time at 1,000 players); and one
// that removes more than one message makes every consumer recount its
// pending messages. Superseded revisions are purged in bulk instead:
// below Floor, a key's message is superseded or an expired tombstone,
// and a key's latest revision only ever moves up, so purging the keys'
// subjects below Floor removes nothing a reader can see. A tombstone is
// expired once it has stood its lifetime (Options.TombstoneTTL); the
// server does not remove it (its TTL would remove the tombstone alone,
// and a value below it would be the key's again). [Store.Rewrite]
// moves the keys that hold Floor down forward. The handler runtime does
// both in its compaction (package handlers, Config.CompactInterval).
func (s *Store) Revisions(ctx context.Context) (Revisions, error) {
	var rv Revisions
	cons, done, err := s.tempConsumer(ctx, s.world.KeyFilter(), jetstream.DeliverAllPolicy)
	if err != nil {
		return rv, fmt.Errorf("kv: revisions: %w", err)
	}
	rv.Stored = cons.CachedInfo().NumPending
	done()
	err = s.read(ctx, s.world.KeyFilter(), jetstream.DeliverLastPerSubjectPolicy, func(m jetstream.Msg, meta *jetstream.MsgMetadata) bool {
		if rv.Keys == 0 {
			rv.Keys = meta.NumPending + 1
		}
		if bus.IsDelete(m.Headers()) {
			if left, ok := s.tombstoneLeft(meta.Timestamp, m.Headers()); ok && left <= 0 {
				rv.Expired++
				rv.Floor = meta.Sequence.Stream + 1
				return true
			}
		}
		rv.Floor = meta.Sequence.Stream
		return false
	})
	if err != nil {
		return Revisions{}, fmt.Errorf("kv: revisions: %w", err)
	}
	return rv, nil
}
