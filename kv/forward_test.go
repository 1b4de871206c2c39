package kv_test

import (
	"errors"
	"testing"
	"time"

	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// leaderAndFollower opens two stores, each on its own connection as two
// worker processes would: the leader serves commits as member "lead", the
// follower forwards its batches to it.
func leaderAndFollower(t *testing.T, env *natstest.Env) (leader, follower *kv.Store) {
	t.Helper()
	leader, follower = second(t, env), second(t, env)
	stop, err := leader.ServeCommits("lead")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if err := follower.CommitVia("lead"); err != nil {
		t.Fatal(err)
	}
	return leader, follower
}

// TestForwardBank is the bank contract (money neither made nor lost, no
// account negative) with half the transfers forwarded to a commit leader
// that also commits its own.
func TestForwardBank(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	leader, follower := leaderAndFollower(t, env)
	bank(t, []*kv.Store{leader, follower}, open(t, env, kv.Options{}), 16, 60)
	if n := follower.Stats().Forwards; n == 0 {
		t.Error("the follower forwarded nothing")
	}
	if n := follower.Stats().Batches; n != 0 {
		t.Errorf("the follower sent %d atomic batches itself; want all forwarded", n)
	}
	if n := leader.Stats().Forwarded; n == 0 {
		t.Error("the leader took no forwarded commit")
	}
}

// TestForwardRevisions: a forwarded commit's outcome carries the
// revisions it was stored at, so the follower's next transaction on the
// same keys reads its own writes from its cache and commits without a
// conflict; a stale read is refused by the leader naming the key.
func TestForwardRevisions(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	leader, follower := leaderAndFollower(t, env)
	incr := func(s *kv.Store) error {
		tx := s.Begin()
		var a, b int
		if err := tx.Get(ctx, "a", &a); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if err := tx.Get(ctx, "b", &b); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if err := errors.Join(tx.Put("a", a+1), tx.Put("b", b+1)); err != nil {
			return err
		}
		return s.Commit(ctx, tx)
	}
	// Each commit follows the acknowledgement of the one before: it must
	// neither read a stale cache nor find the one before still in flight
	// at the leader.
	const rounds = 300
	for i := range rounds {
		if err := incr(follower); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	if st := follower.Stats(); st.Forwards != rounds || st.Conflicts != 0 {
		t.Fatalf("follower: %+v; want %d forwards, no conflict", st, rounds)
	}
	for i := range rounds { // and the same on the leader's own commits
		if err := incr(leader); err != nil {
			t.Fatalf("leader's commit %d: %v", i, err)
		}
	}
	if st := leader.Stats(); st.Conflicts != 0 {
		t.Fatalf("leader: %+v; want no conflict", st)
	}

	// A transaction that read "a" before the leader wrote it is refused,
	// and the error names the key.
	stale := follower.Begin()
	var a int
	if err := stale.Get(ctx, "a", &a); err != nil {
		t.Fatal(err)
	}
	if err := incr(leader); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(stale.Put("a", a+100), stale.Put("c", 1)); err != nil {
		t.Fatal(err)
	}
	err := follower.Commit(ctx, stale)
	var ce *kv.ConflictError
	if !errors.As(err, &ce) || ce.Key != "a" {
		t.Fatalf("stale forwarded commit: %v; want a conflict on \"a\"", err)
	}
	var b int
	if err := open(t, env, kv.Options{}).View(ctx, func(tx *kv.Tx) error {
		return errors.Join(tx.Get(ctx, "a", &a), tx.Get(ctx, "b", &b))
	}); err != nil {
		t.Fatal(err)
	}
	if a != 2*rounds+1 || b != 2*rounds+1 {
		t.Fatalf("a, b = %d, %d; want %d each", a, b, 2*rounds+1)
	}
}

// TestForwardFallback: a follower whose leader is not there (no
// responders), or is closing, commits directly; a leader's close does not
// lose a follower's commit.
func TestForwardFallback(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	leader, follower := leaderAndFollower(t, env)
	put := func(s *kv.Store, v int) error {
		return s.Update(ctx, func(tx *kv.Tx) error { return errors.Join(tx.Put("x", v), tx.Put("y", v)) })
	}
	if err := put(follower, 1); err != nil {
		t.Fatal(err)
	}
	leader.Close()
	if err := put(follower, 2); err != nil {
		t.Fatalf("after the leader closed: %v", err)
	}
	if err := follower.CommitVia("nobody"); err != nil {
		t.Fatal(err)
	}
	if err := put(follower, 3); err != nil {
		t.Fatalf("with no leader listening: %v", err)
	}
	if st := follower.Stats(); st.Forwards != 1 || st.Batches != 2 {
		t.Errorf("follower: %+v; want 1 forward, then 2 direct batches", st)
	}
	if err := follower.CommitVia("bad.name"); err == nil {
		t.Error("CommitVia accepted a member name that is not a token")
	}
}

// TestForwardBadRequests: whatever arrives on a leader's commit subject,
// it answers with an empty reply (commit directly) and goes on serving.
func TestForwardBadRequests(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	leader, follower := leaderAndFollower(t, env)
	subj, err := env.World.Commits("lead")
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{
		nil,
		{0xff},
		{1, 200},            // more requests than bytes
		{1, 1, 0, 0, 1, 3},  // a message whose subject is cut short
		kv.EncodeForeign(t), // a well-formed request for a subject outside the world
	} {
		reply, err := env.Conn.Request(subj, data, 5*time.Second)
		if err != nil {
			t.Fatalf("request %x: %v", data, err)
		}
		if len(reply.Data) != 0 {
			t.Errorf("request %x: reply %x; want empty", data, reply.Data)
		}
	}
	if err := follower.Update(ctx, func(tx *kv.Tx) error { return errors.Join(tx.Put("p", 1), tx.Put("q", 2)) }); err != nil {
		t.Fatal(err)
	}
	if leader.Stats().Forwarded != 1 {
		t.Errorf("leader: %+v; want the one good request taken", leader.Stats())
	}
}
