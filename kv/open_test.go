package kv_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestOpenBatch: on an R1 file stream, after a batch the store opens the
// next one, and the next group's batch commits into it: its messages at
// the sequences the cache records (a later read-modify-write of the same
// keys commits), behind one opener on check subject 0. An opened batch
// no group comes for is closed with the opener alone.
func TestOpenBatch(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s := open(t, env, kv.Options{})
	last := func() uint64 {
		t.Helper()
		info, err := env.Stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	bump := func() error {
		return s.Update(ctx, func(tx *kv.Tx) error {
			var a, b int
			if err := tx.Get(ctx, "o.a", &a); err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			if err := tx.Get(ctx, "o.b", &b); err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			return errors.Join(tx.Put("o.a", a+1), tx.Put("o.b", b+1))
		})
	}
	for i := range 5 {
		if err := bump(); err != nil {
			t.Fatalf("bump %d: %v", i, err)
		}
	}
	st := s.Stats()
	if st.Preopened != 4 || st.Conflicts != 0 {
		t.Fatalf("5 batches: %d into an opened batch, %d conflicts; want 4 and 0", st.Preopened, st.Conflicts)
	}
	// Each opened batch stored its opener before the two writes.
	subj, _ := env.World.Key("o.a")
	m, err := env.Stream.GetLastMsgForSubject(ctx, env.World.Check(0))
	if err != nil {
		t.Fatalf("opener: %v", err)
	}
	a, err := env.Stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sequence+1 != a.Sequence {
		t.Errorf("opener at %d, first write at %d; want it right before", m.Sequence, a.Sequence)
	}
	var v int
	if err := s.View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "o.a", &v) }); err != nil || v != 5 {
		t.Fatalf("o.a = %d, %v; want 5", v, err)
	}

	// Idle: the batch opened after the last one is closed, storing its
	// opener and nothing else.
	before := last()
	natstest.Eventually(t, 10*time.Second, func() bool { return last() == before+1 },
		"the idle opened batch was not closed: last sequence %d, was %d", last(), before)
	if m, err := env.Stream.GetLastMsgForSubject(ctx, env.World.Check(0)); err != nil || m.Sequence != before+1 {
		t.Fatalf("last opener: %v, %v; want it at %d", m, err, before+1)
	}
	// The next batch opens its own, and all is as before.
	if err := bump(); err != nil {
		t.Fatal(err)
	}
	if err := s.View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "o.b", &v) }); err != nil || v != 6 {
		t.Fatalf("o.b = %d, %v; want 6", v, err)
	}
}

// TestOpenBatchLost: a group sent into an opened batch the server no
// longer knows is sent again as a batch of its own, and stored once.
func TestOpenBatchLost(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s := open(t, env, kv.Options{})
	out, _ := env.World.Session("lost")
	var msgs []*nats.Msg
	for _, d := range []string{"one", "two", "three"} {
		msgs = append(msgs, &nats.Msg{Subject: out, Data: []byte(d), Header: nats.Header{}})
	}
	seq, err := kv.CommitIntoLostBatch(s, msgs)
	if err != nil {
		t.Fatalf("commit into a lost batch: %v", err)
	}
	info, err := env.Stream.Info(ctx, jetstream.WithSubjectFilter(out))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[out]; n != 3 {
		t.Errorf("%d messages stored, want 3", n)
	}
	m, err := env.Stream.GetMsg(ctx, seq)
	if err != nil || string(m.Data) != "three" {
		t.Fatalf("acknowledged sequence %d holds %v, %v; want the last message", seq, m, err)
	}
}
