package kv_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// observer records what a store reports to its kv.Observer.
type observer struct {
	mu      sync.Mutex
	commits []observedCommit
	groups  [][2]int // transactions, batch messages
}

type observedCommit struct {
	d   time.Duration
	err error
}

func (o *observer) ObserveCommit(d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.commits = append(o.commits, observedCommit{d, err})
}

func (o *observer) ObserveGroup(txs, batchMsgs int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.groups = append(o.groups, [2]int{txs, batchMsgs})
}

var _ kv.Observer = (*observer)(nil)

// TestObserver: every commit handed to the committer is reported once with
// its outcome and a duration; every group sent with its transactions and
// the messages of its atomic batch; a commit with nothing to write is not
// a commit.
func TestObserver(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	obs := &observer{}
	s := open(t, env, kv.Options{Observer: obs})

	// One message: a compare-and-set publish, no batch.
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put("obs.a", 1) }); err != nil {
		t.Fatal(err)
	}
	// Two writes: an atomic batch of two messages.
	if err := s.Update(ctx, func(tx *kv.Tx) error {
		if err := tx.Put("obs.a", 2); err != nil {
			return err
		}
		return tx.Put("obs.b", 2)
	}); err != nil {
		t.Fatal(err)
	}
	// Nothing to write: no commit.
	if err := s.View(ctx, func(tx *kv.Tx) error { var n int; return tx.Get(ctx, "obs.a", &n) }); err != nil {
		t.Fatal(err)
	}
	// A stale read: refused by the committer before any group.
	stale := s.Begin()
	var n int
	if err := stale.Get(ctx, "obs.a", &n); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put("obs.a", 3) }); err != nil {
		t.Fatal(err)
	}
	if err := stale.Put("obs.b", n); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, stale); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("stale commit: %v, want a conflict", err)
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	var outcomes []bool // committed?
	for _, c := range obs.commits {
		if c.d <= 0 {
			t.Errorf("commit observed with duration %v", c.d)
		}
		if c.err != nil && !errors.Is(c.err, kv.ErrConflict) {
			t.Errorf("commit observed with error %v", c.err)
		}
		outcomes = append(outcomes, c.err == nil)
	}
	if want := []bool{true, true, true, false}; !slices.Equal(outcomes, want) {
		t.Errorf("commit outcomes %v, want %v", outcomes, want)
	}
	if want := [][2]int{{1, 0}, {1, 2}, {1, 0}}; !slices.Equal(obs.groups, want) {
		t.Errorf("groups %v, want %v", obs.groups, want)
	}
	if st := s.Stats(); st.Commits != 3 || st.Groups != 3 || st.Batches != 1 || st.Conflicts != 1 {
		t.Errorf("stats %+v disagree with what was observed", st)
	}
}
