package kv_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

func open(t testing.TB, env *natstest.Env, opts kv.Options) *kv.Store {
	t.Helper()
	s, err := kv.Open(context.Background(), env.JS, env.World, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// second opens another store on its own connection: a second process.
func second(t testing.TB, env *natstest.Env, opts ...kv.Options) *kv.Store {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, env.Server))
	if err != nil {
		t.Fatal(err)
	}
	s, err := kv.Open(context.Background(), js, env.World, append(opts, kv.Options{})[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// patient lets a store's Update retry for as long as a test of extreme
// contention needs.
var patient = kv.Options{MaxAttempts: 100_000}

func TestGetPutDelete(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	s := open(t, env, kv.Options{})
	ctx := t.Context()

	type player struct {
		Name string
		HP   int
	}
	err := s.Update(ctx, func(tx *kv.Tx) error {
		var p player
		if err := tx.Get(ctx, "player.1", &p); !errors.Is(err, kv.ErrNotFound) {
			t.Errorf("get missing: %v, want ErrNotFound", err)
		}
		if err := tx.Put("player.1", player{"ann", 10}); err != nil {
			return err
		}
		if err := tx.Get(ctx, "player.1", &p); err != nil || p.HP != 10 {
			t.Errorf("read own write: %+v, %v", p, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh store (no cache) sees it.
	fresh := second(t, env)
	var p player
	if err := fresh.View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "player.1", &p) }); err != nil || p.Name != "ann" {
		t.Fatalf("view: %+v, %v", p, err)
	}
	if err := fresh.Update(ctx, func(tx *kv.Tx) error { return tx.Delete("player.1") }); err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "player.1", &p) })
	// s's cache may be stale; a single-key View is still a valid read of some
	// committed state. A second process-independent check goes to the server.
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		t.Fatal(err)
	}
	if err := second(t, env).View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "player.1", &p) }); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("after delete: %v, want ErrNotFound", err)
	}
}

func TestInvalidInput(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	s := open(t, env, kv.Options{})
	ctx := t.Context()
	tx := s.Begin()
	defer tx.Discard()
	for _, key := range []string{"", "a..b", ".a", "a.", "a b", "a.*", "a.>", "é"} {
		if err := tx.PutBytes(key, nil); !errors.Is(err, bus.ErrInvalidKey) {
			t.Errorf("put %q: %v, want ErrInvalidKey", key, err)
		}
		if _, err := tx.GetBytes(ctx, key); !errors.Is(err, bus.ErrInvalidKey) {
			t.Errorf("get %q: %v, want ErrInvalidKey", key, err)
		}
	}
	for _, subj := range []string{"sb.test.kv.x", "sb.test.done.1", "sb.test.chk", "other.subject", "sb.other.out.s.a"} {
		if err := tx.Publish(nats.NewMsg(subj)); !errors.Is(err, kv.ErrInvalidSubject) {
			t.Errorf("publish %q: %v, want ErrInvalidSubject", subj, err)
		}
	}
	m := nats.NewMsg("sb.test.out.s.abc")
	m.Header.Set(jetstream.MsgRollup, "all")
	if err := tx.Publish(m); !errors.Is(err, kv.ErrInvalidSubject) {
		t.Errorf("publish with rollup header: %v", err)
	}
	ro := s.View(ctx, func(tx *kv.Tx) error { return tx.PutBytes("a", nil) })
	if !errors.Is(ro, kv.ErrReadOnly) {
		t.Errorf("write in View: %v", ro)
	}
}

// TestConflict shows that a commit based on a stale read fails and that
// the error names the key, whether the conflict is seen locally or only
// by the server (another process).
func TestConflict(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		other func(*kv.Store) *kv.Store
	}{
		{"same process", func(s *kv.Store) *kv.Store { return s }},
		{"other process", func(*kv.Store) *kv.Store { return second(t, env) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, env, kv.Options{})
			key := "conflict." + map[bool]string{true: "a", false: "b"}[tc.name == "same process"]
			if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put(key, 1) }); err != nil {
				t.Fatal(err)
			}
			stale := s.Begin()
			var n int
			if err := stale.Get(ctx, key, &n); err != nil {
				t.Fatal(err)
			}
			other := tc.other(s)
			if err := other.Update(ctx, func(tx *kv.Tx) error {
				var m int
				if err := tx.Get(ctx, key, &m); err != nil {
					return err
				}
				return tx.Put(key, m+1)
			}); err != nil {
				t.Fatal(err)
			}
			if err := stale.Put(key, n+10); err != nil {
				t.Fatal(err)
			}
			err := s.Commit(ctx, stale)
			if !errors.Is(err, kv.ErrConflict) {
				t.Fatalf("commit of stale tx: %v, want ErrConflict", err)
			}
			var ce *kv.ConflictError
			if tc.name == "same process" && (!errors.As(err, &ce) || ce.Key != key) {
				t.Fatalf("conflict does not name the key: %v", err)
			}
		})
	}
}

// TestReadOnlyKeysAreChecked: write skew is prevented. Two transactions each
// read both keys and write one; only one may commit.
func TestWriteSkew(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	a, b := open(t, env, kv.Options{}), second(t, env)
	if err := a.Update(ctx, func(tx *kv.Tx) error {
		return errors.Join(tx.Put("doc.x", 1), tx.Put("doc.y", 1))
	}); err != nil {
		t.Fatal(err)
	}
	begin := func(s *kv.Store, write string) *kv.Tx {
		tx := s.Begin()
		var x, y int
		if err := errors.Join(tx.Get(ctx, "doc.x", &x), tx.Get(ctx, "doc.y", &y)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Put(write, x+y-2); err != nil { // "take the last one on call"
			t.Fatal(err)
		}
		return tx
	}
	t1, t2 := begin(a, "doc.x"), begin(b, "doc.y")
	err1, err2 := a.Commit(ctx, t1), b.Commit(ctx, t2)
	if err1 != nil || !errors.Is(err2, kv.ErrConflict) {
		t.Fatalf("write skew not prevented: first %v, second %v", err1, err2)
	}
}

// openCfg opens a store over env holding cfg.a = 1, cfg.b = 2, cfg.c = 3.
func openCfg(t *testing.T, env *natstest.Env) *kv.Store {
	t.Helper()
	s := open(t, env, kv.Options{})
	if err := s.Update(t.Context(), func(tx *kv.Tx) error {
		return errors.Join(tx.Put("cfg.a", 1), tx.Put("cfg.b", 2), tx.Put("cfg.c", 3))
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReadOnlyChecks: a transaction that reads several keys it does not
// write commits (each read checked), alone or grouped with others, and
// fails when any one of them has moved on.
func TestReadOnlyChecks(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s := openCfg(t, env)
	readAll := func(tx *kv.Tx) (int, error) {
		sum := 0
		for _, k := range []string{"cfg.a", "cfg.b", "cfg.c"} {
			var v int
			if err := tx.Get(ctx, k, &v); err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			err := s.Update(ctx, func(tx *kv.Tx) error {
				sum, err := readAll(tx)
				if err != nil {
					return err
				}
				return tx.Put(fmt.Sprintf("out.%d", i), sum)
			})
			if err != nil {
				t.Errorf("task %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	// The checks of a batch are numbered: each check subject holds one
	// message, however many checks the groups carried.
	info, err := env.Stream.Info(ctx, jetstream.WithSubjectFilter(env.World.Check(0)[:len(env.World.Check(0))-1]+">"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) == 0 {
		t.Fatal("no check subject holds a message")
	}
	for subj, n := range info.State.Subjects {
		if n != 1 {
			t.Errorf("%s holds %d messages, want 1", subj, n)
		}
	}
	stale := s.Begin()
	if _, err := readAll(stale); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put("cfg.b", 20) }); err != nil {
		t.Fatal(err)
	}
	if err := stale.Put("out.stale", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, stale); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("commit over a stale read-only key: %v, want a conflict", err)
	}
}

// TestReadChecksRideOnMessages: the check of a key only read rides on an
// outgoing message of the commit, one check each, before it takes a
// message of its own; a check on a message fails the commit as a check
// message does, and none of its messages leaves, in a batch or alone.
func TestReadChecksRideOnMessages(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s := openCfg(t, env)
	out, _ := env.World.Session("s1")
	// state returns the stream's last sequence and the messages on out.
	state := func() (last, onOut uint64) {
		t.Helper()
		info, err := env.Stream.Info(ctx, jetstream.WithSubjectFilter(out))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq, info.State.Subjects[out]
	}
	begin := func(keys []string, msgs int) *kv.Tx {
		t.Helper()
		tx := s.Begin()
		for _, k := range keys {
			var v int
			if err := tx.Get(ctx, k, &v); err != nil {
				t.Fatal(err)
			}
		}
		for range msgs {
			if err := tx.Publish(&nats.Msg{Subject: out, Data: []byte("m")}); err != nil {
				t.Fatal(err)
			}
		}
		return tx
	}
	for _, tc := range []struct {
		keys   []string
		msgs   int
		stored uint64 // messages the commit adds to the stream
	}{
		{[]string{"cfg.a", "cfg.b", "cfg.c"}, 2, 3}, // two ride, one takes a check message
		{[]string{"cfg.a", "cfg.b"}, 2, 2},          // both ride
		{[]string{"cfg.a"}, 1, 1},                   // one message: a plain publish with its check
	} {
		before, _ := state()
		pre := s.Stats().Preopened
		if err := s.Commit(ctx, begin(tc.keys, tc.msgs)); err != nil {
			t.Fatalf("%v: %v", tc.keys, err)
		}
		// A batch opened ahead of its group holds an opener too.
		opener := s.Stats().Preopened - pre
		if after, _ := state(); after-before-opener != tc.stored {
			t.Errorf("%d reads, %d messages: %d stored besides %d opener, want %d", len(tc.keys), tc.msgs, after-before-opener, opener, tc.stored)
		}

		stale := begin(tc.keys, tc.msgs)
		k := tc.keys[len(tc.keys)-1]
		if err := second(t, env).Update(ctx, func(tx *kv.Tx) error { return tx.Put(k, 10) }); err != nil {
			t.Fatal(err)
		}
		_, n := state()
		if err := s.Commit(ctx, stale); !errors.Is(err, kv.ErrConflict) {
			t.Fatalf("%v: commit over a stale %s: %v, want a conflict", tc.keys, k, err)
		}
		if _, got := state(); got != n {
			t.Fatalf("%v: %d messages left with a conflicting commit", tc.keys, got-n)
		}
	}
}

// TestAtomicEffects: writes and messages of a committed transaction all
// appear; those of a conflicting one do not.
func TestAtomicEffects(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s := open(t, env, kv.Options{})
	out, _ := env.World.Session("s1")
	if err := s.Update(ctx, func(tx *kv.Tx) error {
		return errors.Join(tx.Put("a", 1), tx.Put("b", 2), tx.Publish(&nats.Msg{Subject: out, Data: []byte("hi")}))
	}); err != nil {
		t.Fatal(err)
	}
	stale := s.Begin()
	var a int
	if err := stale.Get(ctx, "a", &a); err != nil {
		t.Fatal(err)
	}
	if err := second(t, env).Update(ctx, func(tx *kv.Tx) error { return tx.Put("a", 100) }); err != nil {
		t.Fatal(err)
	}
	_ = stale.Put("a", a+1)
	_ = stale.Put("b", 3)
	_ = stale.Publish(&nats.Msg{Subject: out, Data: []byte("must not leave")})
	if err := s.Commit(ctx, stale); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("want conflict, got %v", err)
	}
	info, err := env.Stream.Info(ctx, jetstream.WithSubjectFilter(out))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects[out]; got != 1 {
		t.Fatalf("%d messages on %s, want 1", got, out)
	}
	var b int
	if err := second(t, env).View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "b", &b) }); err != nil || b != 2 {
		t.Fatalf("b = %d, %v; want 2", b, err)
	}
}

// TestMarker: an event's effects apply once.
func TestMarker(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s := open(t, env, kv.Options{})
	apply := func() error {
		tx := s.Begin()
		_ = tx.Put("m", 1)
		_ = tx.MarkApplied(42)
		return s.Commit(ctx, tx)
	}
	if err := apply(); err != nil {
		t.Fatal(err)
	}
	if err := apply(); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("second apply: %v, want ErrConflict", err)
	}
	if ok, err := s.Applied(ctx, 42); !ok || err != nil {
		t.Fatalf("Applied(42) = %v, %v", ok, err)
	}
	if ok, err := s.Applied(ctx, 43); ok || err != nil {
		t.Fatalf("Applied(43) = %v, %v", ok, err)
	}
}

// TestCounter is acceptance 1 of the core engine: 64 concurrent tasks each
// increment one shared counter 200 times; the result is exactly 12,800.
// Half the tasks run in a second store, so the server's checks are
// exercised as well as the committer's.
func TestCounter(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	counter(t, []*kv.Store{open(t, env, patient), second(t, env, patient)}, second(t, env), 64, 200)
}

// counter runs tasks concurrent increments of one key, each made each
// times, spread over stores, and checks the total through check.
func counter(t *testing.T, stores []*kv.Store, check *kv.Store, tasks, each int) {
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, tasks)
	for i := range tasks {
		s := stores[i%len(stores)]
		wg.Go(func() {
			for range each {
				err := s.Update(ctx, func(tx *kv.Tx) error {
					var n int
					if err := tx.Get(ctx, "counter", &n); err != nil && !errors.Is(err, kv.ErrNotFound) {
						return err
					}
					return tx.Put("counter", n+1)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A replica may lag the leader for an instant; a lost update never
	// catches up.
	var n int
	natstest.Eventually(t, 5*time.Second, func() bool {
		if err := check.View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "counter", &n) }); err != nil {
			t.Fatal(err)
		}
		return n == tasks*each
	}, "counter = %d, want %d", n, tasks*each)
	t.Logf("store 0: %+v", stores[0].Stats())
}

// TestBankKV runs transfers from two stores and checks the invariant; the
// full-path bank test (acceptance 2) lives in package handlers.
func TestBankKV(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	bank(t, []*kv.Store{open(t, env, kv.Options{}), second(t, env)}, second(t, env), 16, 60)
}

// bank runs workers concurrent transfer loops of rounds transfers among 20
// accounts, spread over stores, and checks through check that money was
// neither made nor lost and no account went negative.
func bank(t *testing.T, stores []*kv.Store, check *kv.Store, workers, rounds int) {
	ctx := t.Context()
	const accounts, initial = 20, 100
	if err := stores[0].Update(ctx, func(tx *kv.Tx) error {
		for i := range accounts {
			if err := tx.Put(fmt.Sprintf("acct.%d", i), initial); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for range rounds {
				from, to := rand.IntN(accounts), rand.IntN(accounts)
				if from == to {
					continue
				}
				amount := 1 + rand.IntN(30)
				err := s.Update(ctx, func(tx *kv.Tx) error {
					var a, b int
					fk, tk := fmt.Sprintf("acct.%d", from), fmt.Sprintf("acct.%d", to)
					if err := errors.Join(tx.Get(ctx, fk, &a), tx.Get(ctx, tk, &b)); err != nil {
						return err
					}
					if a < amount {
						return nil // insufficient funds: commit nothing
					}
					return errors.Join(tx.Put(fk, a-amount), tx.Put(tk, b+amount))
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := 0
	err := check.View(ctx, func(tx *kv.Tx) error {
		total = 0
		for i := range accounts {
			var n int
			if err := tx.Get(ctx, fmt.Sprintf("acct.%d", i), &n); err != nil {
				return err
			}
			if n < 0 {
				return fmt.Errorf("account %d is negative: %d", i, n)
			}
			total += n
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total != accounts*initial {
		t.Fatalf("total = %d, want %d", total, accounts*initial)
	}
	t.Logf("stats: %+v / %+v", stores[0].Stats(), stores[1].Stats())
}

// TestCacheFollowsOtherWriters: a process that cached a key sees another
// process's later write without writing the key itself.
func TestCacheFollowsOtherWriters(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	reader, writer := open(t, env, kv.Options{}), second(t, env)
	get := func() string {
		var v string
		if err := reader.View(ctx, func(tx *kv.Tx) error { return tx.Get(ctx, "motd", &v) }); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, v := range []string{"hello", "goodbye"} {
		if err := writer.Update(ctx, func(tx *kv.Tx) error { return tx.Put("motd", v) }); err != nil {
			t.Fatal(err)
		}
		natstest.Eventually(t, 5*time.Second, func() bool { return get() == v }, "reader sees %q", v)
	}
}

func TestClosed(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	s := open(t, env, kv.Options{})
	s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put("x", 1) })
	if !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
}

// TestViewManyKeys reads more keys in one View than the server answers in
// one multi-subject get (1,024): validation must still work, and still
// catch a key that moved.
func TestViewManyKeys(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s := open(t, env, kv.Options{})
	const n = 2500
	for lo := 0; lo < n; lo += 400 {
		if err := s.Update(ctx, func(tx *kv.Tx) error {
			for i := lo; i < min(lo+400, n); i++ {
				if err := tx.Put(fmt.Sprintf("many.%d", i), i); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	sum, runs := 0, 0
	err := s.View(ctx, func(tx *kv.Tx) error {
		runs++
		sum = 0
		for i := range n {
			var v int
			if err := tx.Get(ctx, fmt.Sprintf("many.%d", i), &v); err != nil {
				return err
			}
			sum += v
			if runs == 1 && i == n-1 {
				// Another process moves the first key after it was read.
				if err := second(t, env).Update(ctx, func(tx *kv.Tx) error { return tx.Put("many.0", 0) }); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := n * (n - 1) / 2; sum != want || runs != 2 {
		t.Fatalf("sum %d in %d runs, want %d in 2", sum, runs, want)
	}

	// A cold store prefetches them (and some missing keys) in three round
	// trips; the reads that follow are answered from memory.
	cold := second(t, env)
	keys := make([]string, n+10)
	for i := range keys {
		keys[i] = fmt.Sprintf("many.%d", i)
	}
	err = cold.View(ctx, func(tx *kv.Tx) error {
		if err := tx.Prefetch(ctx, keys...); err != nil {
			return err
		}
		sum = 0
		for _, k := range keys {
			var v int
			if err := tx.Get(ctx, k, &v); err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			sum += v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := cold.Stats(); sum != n*(n-1)/2 || st.CacheHits != uint64(len(keys)) {
		t.Fatalf("prefetched sum %d, stats %+v", sum, st)
	}

	// One key missing from the cache is read by itself, and cached too.
	one := second(t, env)
	err = one.View(ctx, func(tx *kv.Tx) error {
		if err := tx.Prefetch(ctx, "many.3"); err != nil {
			return err
		}
		var v int
		if err := tx.Get(ctx, "many.3", &v); err != nil || v != 3 {
			return fmt.Errorf("get many.3: %d, %v", v, err)
		}
		return nil
	})
	if st := one.Stats(); err != nil || st.Reads != 1 || st.CacheHits != 1 {
		t.Fatalf("one key prefetched: %v, stats %+v", err, st)
	}
}

// TestPeek: a peeked key is committed state and the transaction's own
// writes, and it is never checked: a write of it by another transaction
// since does not fail the commit, as the same read by Get would.
func TestPeek(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	s := open(t, env, kv.Options{})
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put("peek.a", 1) }); err != nil {
		t.Fatal(err)
	}
	tx := s.Begin()
	var n int
	if ok, err := tx.Peek(ctx, "peek.a", &n); err != nil || !ok || n != 1 {
		t.Fatalf("Peek: %d %v %v", n, ok, err)
	}
	if ok, err := tx.Peek(ctx, "peek.none", &n); err != nil || ok {
		t.Fatalf("Peek of a missing key: %v %v", ok, err)
	}
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put("peek.a", 2) }); err != nil {
		t.Fatal(err)
	}
	if err := tx.Put("peek.b", 7); err != nil {
		t.Fatal(err)
	}
	if ok, err := tx.Peek(ctx, "peek.b", &n); err != nil || !ok || n != 7 {
		t.Fatalf("Peek of the transaction's own write: %d %v %v", n, ok, err)
	}
	if err := s.Commit(ctx, tx); err != nil {
		t.Fatalf("commit after a peeked key changed: %v", err)
	}
	// The same with Get conflicts.
	tx = s.Begin()
	if err := tx.Get(ctx, "peek.a", &n); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx *kv.Tx) error { return tx.Put("peek.a", 3) }); err != nil {
		t.Fatal(err)
	}
	if err := tx.Put("peek.b", 8); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, tx); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("commit after a read key changed: %v, want ErrConflict", err)
	}
}
