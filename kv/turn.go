package kv

import (
	"context"
	"errors"
	"sync"
)

// turns is a FIFO queue per key for transactions that lost a conflict on
// that key. Optimistic concurrency has one winner per round on a hot key;
// if every loser re-ran at once, each round would cost as many runs as
// there are contenders (an abort storm). Instead a loser waits for its
// turn on the key it lost on, and the losers re-run one at a time, in the
// order they lost. First attempts never wait.
//
// A transaction holds at most one turn: before taking a turn on another
// key it gives back the one it holds. With no hold-and-wait there is no
// deadlock.
type turns struct {
	mu   sync.Mutex
	keys map[string]*turnQueue
}

type turnQueue struct {
	waiting []chan struct{} // closed to hand the turn over
}

// Turn waits until the caller's turn on key and returns the function that
// gives it back. Waiting ends early, with ctx's error, if ctx does.
func (s *Store) Turn(ctx context.Context, key string) (release func(), err error) {
	t := &s.turns
	t.mu.Lock()
	if t.keys == nil {
		t.keys = make(map[string]*turnQueue)
	}
	q, held := t.keys[key]
	if !held {
		t.keys[key] = &turnQueue{}
		t.mu.Unlock()
		return s.releaser(key), nil
	}
	ch := make(chan struct{})
	q.waiting = append(q.waiting, ch)
	t.mu.Unlock()
	select {
	case <-ch:
		return s.releaser(key), nil
	case <-ctx.Done():
		t.mu.Lock()
		defer t.mu.Unlock()
		select {
		case <-ch: // handed over meanwhile: pass it on
			s.handOver(key)
		default:
			for i, w := range q.waiting {
				if w == ch {
					q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
					break
				}
			}
		}
		return nil, ctx.Err()
	}
}

func (s *Store) releaser(key string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.turns.mu.Lock()
			s.handOver(key)
			s.turns.mu.Unlock()
		})
	}
}

// handOver passes key's turn to the next waiter, or frees it. turns.mu
// must be held.
func (s *Store) handOver(key string) {
	q := s.turns.keys[key]
	if len(q.waiting) == 0 {
		delete(s.turns.keys, key)
		return
	}
	next := q.waiting[0]
	q.waiting = q.waiting[1:]
	close(next)
}

// Retrier keeps the turn a retrying transaction holds. Use one per
// transaction's run of attempts: after each failed attempt call Lost with
// the error, before the next attempt; call Done when the attempts end.
type Retrier struct {
	s       *Store
	key     string
	release func()
}

// NewRetrier returns a Retrier for one transaction's attempts.
func (s *Store) NewRetrier() *Retrier { return &Retrier{s: s} }

// Lost takes the caller's turn on the key err's conflict names, giving
// back any other turn held. Errors that name no key change nothing.
func (r *Retrier) Lost(ctx context.Context, err error) error {
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Key == "" || ce.Key == r.key {
		return nil
	}
	r.Done()
	release, terr := r.s.Turn(ctx, ce.Key)
	if terr != nil {
		return terr
	}
	r.key, r.release = ce.Key, release
	return nil
}

// Done gives back the turn held, if any.
func (r *Retrier) Done() {
	if r.release != nil {
		r.release()
		r.key, r.release = "", nil
	}
}
