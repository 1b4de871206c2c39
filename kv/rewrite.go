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
)

// remainingTTL tells whether the entry e, stored at stored with header h,
// is worth rewriting, and the TTL its copy needs: a tombstone keeps the
// rest of its time (its own Nats-TTL, or TombstoneTTL, from when it was
// stored), rounded down to whole seconds, so that copying it forward, once
// or many times, never makes it last longer; one with less than a second
// left expires where it is.
func (s *Store) remainingTTL(e entry, stored time.Time, h nats.Header) (ttl string, ok bool) {
	if !e.deleted || s.tombTTL == "" {
		return "", true
	}
	life := s.opts.TombstoneTTL
	if secs, err := strconv.ParseInt(h.Get(jetstream.MsgTTLHeader), 10, 64); err == nil && secs > 0 {
		life = time.Duration(secs) * time.Second
	}
	left := life - time.Since(stored)
	if left < time.Second {
		return "", false
	}
	return strconv.FormatInt(int64(left/time.Second), 10), true
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
	err := s.read(ctx, s.world.KeyFilter(), jetstream.DeliverAllPolicy, func(m jetstream.Msg, meta *jetstream.MsgMetadata) bool {
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
