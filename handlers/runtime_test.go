package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// worker is one worker process: its own connection, store and runtime.
type worker struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	store   *kv.Store
	rt      *handlers.Runtime
	stop    func()
	crashed atomic.Bool
}

// crash cuts the worker off as kill -9 would: its connection closes with
// tasks in flight, and nothing is acknowledged or handed back any more.
func (w *worker) crash() {
	w.crashed.Store(true)
	w.nc.Close()
}

func startWorker(t testing.TB, env *natstest.Env, h handlers.Handler, cfg handlers.Config) *worker {
	t.Helper()
	w := &worker{nc: natstest.Connect(t, env.Server)}
	var err error
	if w.js, err = jetstream.New(w.nc); err != nil {
		t.Fatal(err)
	}
	if w.store, err = kv.Open(context.Background(), w.js, env.World, kv.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.JS, cfg.Handler = w.store, w.js, h
	if w.rt, err = handlers.New(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.rt.Run(ctx) }()
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !w.crashed.Load() {
				t.Errorf("runtime: %v", err)
			}
			w.store.Close()
		})
	}
	t.Cleanup(w.stop)
	return w
}

func publish(t testing.TB, env *natstest.Env, region, part, typ string, data []byte) uint64 {
	t.Helper()
	subj, err := env.World.Event(region, part)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subj)
	m.Header.Set(bus.HeaderType, typ)
	m.Data = data
	ack, err := env.JS.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// messages returns every message stored on subject, in order.
func messages(t testing.TB, env *natstest.Env, subject string) []jetstream.Msg {
	t.Helper()
	ctx := t.Context()
	info, err := env.Stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, n := range info.State.Subjects {
		want += int(n)
	}
	if want == 0 {
		return nil
	}
	c, err := env.Stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < want {
		batch, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
	}
	return out
}

type transfer struct {
	From, To, Amount int
}

// TestBank is acceptance 2: 32 concurrent workers (two worker processes
// of 16) run 5,000 random transfers among 50 accounts. The total is
// unchanged, no balance goes negative, and the committed transfer log,
// replayed, gives exactly the final balances.
func TestBank(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	const accounts, initial, transfers = 50, 1000, 5000
	acct := func(i int) string { return "acct." + strconv.Itoa(i) }
	ledger, _ := env.World.Channel("ledger")

	bank := handlers.NewMux()
	bank.HandleFunc("transfer", func(ctx context.Context, t *handlers.Task) error {
		var x transfer
		if err := json.Unmarshal(t.Data, &x); err != nil {
			return handlers.Permanent(err)
		}
		var from, to int
		if err := errors.Join(t.Get(ctx, acct(x.From), &from), t.Get(ctx, acct(x.To), &to)); err != nil {
			return err
		}
		if from < x.Amount {
			return nil // refused: nothing changes, nothing is logged
		}
		ch, err := t.Channel(ctx, "ledger")
		if err != nil {
			return err
		}
		return errors.Join(
			t.Put(acct(x.From), from-x.Amount),
			t.Put(acct(x.To), to+x.Amount),
			ch.Send(t.Data),
		)
	})
	setup, err := kv.Open(ctx, env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	if err := setup.Update(ctx, func(tx *kv.Tx) error {
		for i := range accounts {
			if err := tx.Put(acct(i), initial); err != nil {
				return err
			}
		}
		// The ledger: a reliable channel, so that every committed
		// transfer's record is stored with it.
		return tx.Put(bus.ChannelKey("ledger"), map[string]string{"delivery": "reliable"})
	}); err != nil {
		t.Fatal(err)
	}

	workers := []*worker{
		startWorker(t, env, bank, handlers.Config{Concurrency: 16}),
		startWorker(t, env, bank, handlers.Config{Concurrency: 16}),
	}
	for i := range transfers {
		from := rand.IntN(accounts)
		to := (from + 1 + rand.IntN(accounts-1)) % accounts
		data, _ := json.Marshal(transfer{from, to, 1 + rand.IntN(400)})
		publish(t, env, "r0", "t"+strconv.Itoa(i%256), "transfer", data)
	}
	natstest.Eventually(t, 2*time.Minute, func() bool {
		var n uint64
		for _, w := range workers {
			n += w.rt.Stats().Committed
		}
		return n >= transfers
	}, "all transfers handled")

	final := make([]int, accounts)
	if err := setup.View(ctx, func(tx *kv.Tx) error {
		for i := range accounts {
			if err := tx.Get(ctx, acct(i), &final[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	replay := make([]int, accounts)
	for i := range replay {
		replay[i] = initial
	}
	log := messages(t, env, ledger)
	for _, m := range log {
		var x transfer
		if err := json.Unmarshal(m.Data(), &x); err != nil {
			t.Fatal(err)
		}
		replay[x.From] -= x.Amount
		replay[x.To] += x.Amount
	}
	total := 0
	for i := range accounts {
		total += final[i]
		if final[i] < 0 {
			t.Errorf("account %d is negative: %d", i, final[i])
		}
		if final[i] != replay[i] {
			t.Errorf("account %d: balance %d, ledger replay %d", i, final[i], replay[i])
		}
	}
	if total != accounts*initial {
		t.Errorf("total %d, want %d", total, accounts*initial)
	}
	for i, w := range workers {
		if st := w.rt.Stats(); st.DeadLetters != 0 {
			t.Errorf("worker %d dead-lettered %d transfers", i, st.DeadLetters)
		}
		t.Logf("worker %d: %+v; store %+v", i, w.rt.Stats(), w.store.Stats())
	}
	t.Logf("%d transfers committed to the ledger, %d refused", len(log), transfers-len(log))
}

// TestAbortLeavesNothing is acceptance 3: a handler that writes, sends,
// emits and schedules and then fails leaves nothing behind.
func TestAbortLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func() error
	}{
		{"error", func() error { return errors.New("boom") }},
		{"permanent", func() error { return handlers.Permanent(errors.New("boom")) }},
		{"panic", func() error { panic("boom") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := natstest.Start(t, natstest.Options{})
			var runs atomic.Int64
			h := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
				runs.Add(1)
				_, serr := t.After(time.Millisecond, "later", nil)
				err := errors.Join(
					serr,
					t.Put("left.behind", 1),
					t.Send("s1", []byte("must not leave")),
					t.Emit("r0", "other", "follow-up", nil),
				)
				if err != nil {
					return handlers.Permanent(err)
				}
				return tc.end()
			})
			w := startWorker(t, env, h, handlers.Config{MaxErrors: 3})
			publish(t, env, "r0", "p", "work", nil)
			natstest.Eventually(t, 10*time.Second, func() bool { return w.rt.Stats().DeadLetters == 1 }, "dead letter")
			for _, f := range []string{env.World.KeyFilter(), env.World.SessionFilter(), env.World.DoneFilter(), env.World.ScheduleFilter()} {
				if n := env.Stored(t, f); n != 0 {
					t.Errorf("%d messages left on %s", n, f)
				}
			}
			if n := env.Stored(t, env.World.EventFilter()); n != 1 {
				t.Errorf("%d events, want only the original", n)
			}
			if n := env.Stored(t, env.World.DeadLetterFilter()); n != 1 {
				t.Errorf("%d dead letters, want 1", n)
			}
			want := int64(1)
			if tc.name == "error" {
				want = 3
			}
			if got := runs.Load(); got != want {
				t.Errorf("handler ran %d times, want %d", got, want)
			}
		})
	}
}

// TestRedeliveryAfterCommit is acceptance 4: the worker's connection is cut
// between commit and ack. The event is delivered again, to another worker,
// and changes nothing and sends nothing twice.
func TestRedeliveryAfterCommit(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	h := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		var n int
		if err := t.Get(ctx, "hits", &n); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return errors.Join(t.Put("hits", n+1), t.Send("s1", []byte("hit")))
	})
	cfg := handlers.Config{AckWait: time.Second, Consumer: "workers"}
	dying := startWorker(t, env, h, cfg)
	var cut atomic.Bool
	dying.rt.SetAfterCommit(func() {
		cut.Store(true)
		dying.nc.Close() // the ack will never reach the server
	})
	publish(t, env, "r0", "p", "hit", nil)
	natstest.Eventually(t, 10*time.Second, cut.Load, "commit in the dying worker")
	dying.stop()

	survivor := startWorker(t, env, h, cfg)
	natstest.Eventually(t, 20*time.Second, func() bool { return survivor.rt.Stats().Duplicates == 1 }, "redelivery detected")
	if st := survivor.rt.Stats(); st.Committed != 0 {
		t.Fatalf("survivor committed the event again: %+v", st)
	}
	var n int
	if err := survivor.store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "hits", &n) }); err != nil || n != 1 {
		t.Fatalf("hits = %d, %v; want 1", n, err)
	}
	out, _ := env.World.Session("s1")
	if got := env.Stored(t, out); got != 1 {
		t.Fatalf("%d messages sent, want 1", got)
	}
}

// TestServerRestart: the partitions' consumers keep their state in memory,
// so a restart of the server loses them; the next owner of every partition
// replays what is stored and recognises what was applied by its marker.
// Every event is applied once, across the restart.
func TestServerRestart(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	h := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		var n int
		if err := t.Get(ctx, "hits", &n); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return t.Put("hits", n+1)
	})
	cfg := handlers.Config{CompactInterval: -1} // every handled event stays stored: all are replayed
	const before, after = 30, 10
	w := startWorker(t, env, h, cfg)
	for i := range before {
		publish(t, env, "r0", "p"+strconv.Itoa(i%7), "hit", nil)
	}
	natstest.Eventually(t, 20*time.Second, func() bool { return w.rt.Stats().Committed == before }, "events before the restart")
	w.stop()
	env.Server.Shutdown()

	env2 := natstest.Start(t, natstest.Options{Dir: env.Dir})
	w2 := startWorker(t, env2, h, cfg)
	for i := range after {
		publish(t, env2, "r0", "p"+strconv.Itoa(i%7), "hit", nil)
	}
	natstest.Eventually(t, 30*time.Second, func() bool {
		st := w2.rt.Stats()
		return st.Committed+st.Duplicates == before+after
	}, "events replayed and handled after the restart")
	if st := w2.rt.Stats(); st.Committed != after || st.Duplicates != before {
		t.Errorf("after the restart: %d committed, %d recognised as applied; want %d and %d", st.Committed, st.Duplicates, after, before)
	}
	var n int
	if err := w2.store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "hits", &n) }); err != nil || n != before+after {
		t.Fatalf("hits = %d, %v; want %d", n, err, before+after)
	}
}

// TestDeadline is acceptance 5: a task that overruns its deadline is
// aborted and retried; its partial effects never appear.
func TestDeadline(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	h := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		err := errors.Join(
			t.Put("result", t.Attempt),
			t.Send("s1", []byte(fmt.Sprintf("attempt %d", t.Attempt))),
		)
		if err != nil {
			return err
		}
		if t.Attempt == 1 {
			<-ctx.Done() // overrun: keep working past the deadline
		}
		return nil
	})
	w := startWorker(t, env, h, handlers.Config{TaskTimeout: 50 * time.Millisecond})
	publish(t, env, "r0", "p", "slow", nil)
	natstest.Eventually(t, 10*time.Second, func() bool { return w.rt.Stats().Committed == 1 }, "commit")
	if st := w.rt.Stats(); st.Deadlines != 1 {
		t.Fatalf("stats %+v, want one deadline", st)
	}
	var result int
	if err := w.store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "result", &result) }); err != nil || result != 2 {
		t.Fatalf("result = %d, %v; want the second attempt's", result, err)
	}
	out, _ := env.World.Session("s1")
	msgs := messages(t, env, out)
	if len(msgs) != 1 || string(msgs[0].Data()) != "attempt 2" {
		t.Fatalf("sent %d messages, want only attempt 2's", len(msgs))
	}
}

// TestOrderPerKey: events with one ordering key are handled in the order
// they were published, even with many workers and other keys in between.
func TestOrderPerKey(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	h := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		key := "seen." + t.Part
		var seen []int
		if err := t.Get(ctx, key, &seen); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		n, _ := strconv.Atoi(string(t.Data))
		return t.Put(key, append(seen, n))
	})
	w := startWorker(t, env, h, handlers.Config{Concurrency: 32})
	const sessions, each = 8, 50
	for i := range each {
		for s := range sessions {
			publish(t, env, "r0", "s"+strconv.Itoa(s), "msg", []byte(strconv.Itoa(i)))
		}
	}
	natstest.Eventually(t, time.Minute, func() bool { return w.rt.Stats().Committed == sessions*each }, "all handled")
	for s := range sessions {
		var seen []int
		if err := w.store.View(t.Context(), func(tx *kv.Tx) error {
			return tx.Get(t.Context(), "seen.s"+strconv.Itoa(s), &seen)
		}); err != nil {
			t.Fatal(err)
		}
		for i, n := range seen {
			if n != i {
				t.Fatalf("session %d: order %v", s, seen)
			}
		}
		if len(seen) != each {
			t.Fatalf("session %d: %d events, want %d", s, len(seen), each)
		}
	}
}

// errorCounter is a slog handler that counts records at ERROR and above.
type errorCounter struct{ n atomic.Int64 }

func (h *errorCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *errorCounter) Handle(context.Context, slog.Record) error    { h.n.Add(1); return nil }
func (h *errorCounter) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *errorCounter) WithGroup(string) slog.Handler                { return h }

// TestClientInputWithoutHandler: messages and channel messages of clients
// that the game has no handler for are dropped and counted (Unhandled),
// neither dead-lettered nor logged as errors, however many a client
// sends; an event of another type without a handler is still
// dead-lettered.
func TestClientInputWithoutHandler(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	mux := handlers.NewMux()
	mux.HandleFunc("known", func(context.Context, *handlers.Task) error { return nil })
	errs := &errorCounter{}
	w := startWorker(t, env, mux, handlers.Config{Logger: slog.New(errs)})
	const n = 50
	for i := range n {
		typ := bus.EventChannel
		if i%2 == 0 {
			typ = bus.EventMessage
		}
		publish(t, env, "r0", "s1", typ, []byte("hi"))
	}
	natstest.Eventually(t, 20*time.Second, func() bool { return w.rt.Stats().Unhandled == n }, "%d unhandled: %+v", n, w.rt.Stats())
	if st := w.rt.Stats(); st.DeadLetters != 0 || errs.n.Load() != 0 {
		t.Fatalf("%d dead letters, %d error lines, want none", st.DeadLetters, errs.n.Load())
	}
	publish(t, env, "r0", "s1", "unknown", nil)
	natstest.Eventually(t, 20*time.Second, func() bool { return w.rt.Stats().DeadLetters == 1 }, "the unknown event dead-lettered")
}
