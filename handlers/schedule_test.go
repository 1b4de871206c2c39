package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// firing is what a scheduled test task records when it commits.
type firing struct {
	Runs int
	Due  time.Time
	Ran  time.Time
}

// recordFiring counts the committed runs of a scheduled task under
// "fired.<payload>" and keeps its due and run times.
func recordFiring(ctx context.Context, t *handlers.Task) error {
	key := "fired." + string(t.Data)
	var f firing
	if err := t.Get(ctx, key, &f); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	f.Runs++
	f.Due, f.Ran = t.Due, time.Now()
	return t.Put(key, f)
}

func firings(t *testing.T, s *kv.Store, names []string) map[string]firing {
	t.Helper()
	out := make(map[string]firing, len(names))
	err := s.View(t.Context(), func(tx *kv.Tx) error {
		clear(out)
		for _, n := range names {
			var f firing
			if err := tx.Get(t.Context(), "fired."+n, &f); err == nil {
				out[n] = f
			} else if !errors.Is(err, kv.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScheduleOneShot is acceptance 1 of scheduling: 1,000 tasks with
// delays from 0 to 3 s each run once, none before its time, 99% within
// 100 ms after it.
func TestScheduleOneShot(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	mux := handlers.NewMux()
	mux.HandleFunc("fired", recordFiring)
	mux.HandleFunc("setup", func(ctx context.Context, t *handlers.Task) error {
		var batch []int
		if err := json.Unmarshal(t.Data, &batch); err != nil {
			return handlers.Permanent(err)
		}
		for _, i := range batch {
			delay := time.Duration(i) * 3 * time.Millisecond // 0 to 2.997 s
			if _, err := t.After(delay, "fired", []byte(strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil
	})
	w := startWorker(t, env, mux, handlers.Config{})
	const n = 1000
	names := make([]string, n)
	for i := range n {
		names[i] = strconv.Itoa(i)
	}
	for start := 0; start < n; start += 100 {
		batch := make([]int, 0, 100)
		for i := start; i < start+100; i++ {
			batch = append(batch, i)
		}
		data, _ := json.Marshal(batch)
		publish(t, env, "r0", "setup"+strconv.Itoa(start), "setup", data)
	}
	natstest.Eventually(t, 30*time.Second, func() bool { return len(firings(t, w.store, names)) == n }, "all fired")
	var lateness []time.Duration
	for name, f := range firings(t, w.store, names) {
		if f.Runs != 1 {
			t.Errorf("task %s ran %d times", name, f.Runs)
		}
		if f.Ran.Before(f.Due) {
			t.Errorf("task %s ran %v early", name, f.Due.Sub(f.Ran))
		}
		lateness = append(lateness, f.Ran.Sub(f.Due))
	}
	slices.Sort(lateness)
	p50, p99, worst := lateness[n/2], lateness[n*99/100], lateness[n-1]
	t.Logf("lateness p50 %v, p99 %v, max %v; stats %+v", p50, p99, worst, w.rt.Stats())
	if raceEnabled {
		t.Log("race detector on: the 100 ms bound is asserted by the non-race run (scripts/test)")
	} else if p99 > 100*time.Millisecond {
		t.Errorf("p99 lateness %v, want at most 100ms", p99)
	}
}

// TestSchedulePeriodic is acceptance 2: a task every 100 ms runs 50 ± 2
// times in 5 s, and stops within one period after it is cancelled.
func TestSchedulePeriodic(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	const period = 100 * time.Millisecond
	var runs atomic.Int64
	mux := handlers.NewMux()
	mux.HandleFunc("tick", func(ctx context.Context, t *handlers.Task) error {
		var ticks []time.Time
		if err := t.Get(ctx, "ticks", &ticks); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		runs.Add(1)
		return t.Put("ticks", append(ticks, time.Now()))
	})
	mux.HandleFunc("start", func(ctx context.Context, t *handlers.Task) error {
		id, err := t.Every(period, "tick", nil)
		if err != nil {
			return err
		}
		return errors.Join(t.Put("tick.id", id), t.Put("tick.start", time.Now()))
	})
	var cancelled atomic.Value
	mux.HandleFunc("stop", func(ctx context.Context, t *handlers.Task) error {
		var id handlers.ScheduleID
		if err := t.Get(ctx, "tick.id", &id); err != nil {
			return err
		}
		cancelled.Store(time.Now())
		return t.Cancel(id)
	})
	w := startWorker(t, env, mux, handlers.Config{})
	publish(t, env, "r0", "ctl", "start", nil)
	ticks := func() []time.Time {
		var ts []time.Time
		if err := w.store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "ticks", &ts) }); err != nil && !errors.Is(err, kv.ErrNotFound) {
			t.Fatal(err)
		}
		return ts
	}
	natstest.Eventually(t, 20*time.Second, func() bool { return len(ticks()) >= 55 }, "55 ticks")
	publish(t, env, "r0", "ctl", "stop", nil)
	stale := w.rt.Stats().StaleAlarms
	natstest.Eventually(t, 10*time.Second, func() bool { return w.rt.Stats().StaleAlarms > stale }, "the alarm after cancel finds nothing")

	var start time.Time
	if err := w.store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "tick.start", &start) }); err != nil {
		t.Fatal(err)
	}
	all := ticks()
	in5s := 0
	for _, at := range all {
		if at.Sub(start) <= 5*time.Second {
			in5s++
		}
	}
	if in5s < 48 || in5s > 52 {
		t.Errorf("%d runs in the first 5 s, want 50 ± 2", in5s)
	}
	stop := cancelled.Load().(time.Time)
	for _, at := range all {
		if at.After(stop.Add(period)) {
			t.Errorf("ran at %v, %v after the cancel", at, at.Sub(stop))
		}
	}
	t.Logf("%d runs in 5 s, %d in all; stats %+v", in5s, len(all), w.rt.Stats())
}

// TestScheduleSurvivesRestart is acceptance 3: schedule, stop every worker
// and the embedded server, start again: every due task runs once.
func TestScheduleSurvivesRestart(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	mux := handlers.NewMux()
	mux.HandleFunc("fired", recordFiring)
	const n = 20
	mux.HandleFunc("setup", func(ctx context.Context, t *handlers.Task) error {
		for i := range n {
			if _, err := t.After(time.Second+time.Duration(i)*50*time.Millisecond, "fired", []byte(strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil
	})
	cfg := handlers.Config{AckWait: 2 * time.Second}
	w := startWorker(t, env, mux, cfg)
	publish(t, env, "r0", "setup", "setup", nil)
	natstest.Eventually(t, 10*time.Second, func() bool { return w.rt.Stats().Committed == 1 }, "schedules committed")
	w.stop()
	env.Server.Shutdown()

	env2 := natstest.Start(t, natstest.Options{Dir: env.Dir})
	names := make([]string, n)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	ws := []*worker{startWorker(t, env2, mux, cfg), startWorker(t, env2, mux, cfg)}
	natstest.Eventually(t, 30*time.Second, func() bool { return len(firings(t, ws[0].store, names)) == n }, "all fired after restart")
	for name, f := range firings(t, ws[0].store, names) {
		if f.Runs != 1 {
			t.Errorf("task %s ran %d times", name, f.Runs)
		}
		if f.Ran.Before(f.Due) {
			t.Errorf("task %s ran early", name)
		}
	}
}

// TestInitOnce is acceptance 4: five workers started at once on a new
// world; the init handler ran exactly once.
func TestInitOnce(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	var attempts atomic.Int64
	init := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		attempts.Add(1)
		var n int
		if err := t.Get(ctx, "world.inits", &n); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return errors.Join(t.Put("world.inits", n+1), t.Put("world.spawn", "castle"))
	})
	noop := handlers.HandlerFunc(func(context.Context, *handlers.Task) error { return nil })
	ready := make(chan struct{})
	workers := make([]*worker, 5)
	done := make(chan int)
	for i := range workers {
		go func() {
			<-ready
			workers[i] = startWorker(t, env, noop, handlers.Config{Init: init})
			done <- i
		}()
	}
	close(ready)
	for range workers {
		<-done
	}
	var n int
	natstest.Eventually(t, 10*time.Second, func() bool {
		err := workers[0].store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "world.inits", &n) })
		return err == nil
	}, "init committed")
	// Every worker has passed its init before consuming; give them all a
	// chance by waiting until each has run an event.
	for i := range 5 {
		publish(t, env, "r0", "p"+strconv.Itoa(i), "noop", nil)
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		var c uint64
		for _, w := range workers {
			c += w.rt.Stats().Committed
		}
		return c == 5
	}, "every worker running")
	if err := workers[0].store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "world.inits", &n) }); err != nil || n != 1 {
		t.Fatalf("init committed %d times (%v), want once; %d attempts", n, err, attempts.Load())
	}
}

// TestAbortedSchedulerSchedulesNothing is acceptance 5.
func TestAbortedSchedulerSchedulesNothing(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	mux := handlers.NewMux()
	mux.HandleFunc("fired", recordFiring)
	mux.HandleFunc("doomed", func(ctx context.Context, t *handlers.Task) error {
		_, err1 := t.After(10*time.Millisecond, "fired", []byte("doomed-once"))
		_, err2 := t.Every(20*time.Millisecond, "fired", []byte("doomed-every"))
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return handlers.Permanent(errors.New("abort after scheduling"))
	})
	mux.HandleFunc("sentinel", func(ctx context.Context, t *handlers.Task) error {
		_, err := t.After(300*time.Millisecond, "fired", []byte("sentinel"))
		return err
	})
	w := startWorker(t, env, mux, handlers.Config{})
	publish(t, env, "r0", "a", "doomed", nil)
	publish(t, env, "r0", "a", "sentinel", nil) // same key: runs after doomed
	natstest.Eventually(t, 10*time.Second, func() bool {
		return len(firings(t, w.store, []string{"sentinel"})) == 1
	}, "sentinel fired")
	if got := firings(t, w.store, []string{"doomed-once", "doomed-every"}); len(got) != 0 {
		t.Fatalf("aborted task's schedules ran: %+v", got)
	}
	if st := w.rt.Stats(); st.DeadLetters != 1 {
		t.Fatalf("stats %+v, want the doomed event dead-lettered", st)
	}
}
