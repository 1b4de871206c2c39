package handlers_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
)

// taskObserver records what a runtime reports.
type taskObserver struct {
	mu     sync.Mutex
	ds     []time.Duration
	waits  []time.Duration
	purges map[string]int // compaction's purges, by kind
}

func (o *taskObserver) ObserveCompaction(kind string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.purges == nil {
		o.purges = map[string]int{}
	}
	if d > 0 {
		o.purges[kind]++
	}
}

func (o *taskObserver) observedPurges() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.purges)
}

func (o *taskObserver) ObserveEventWait(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waits = append(o.waits, d)
}

func (o *taskObserver) observedWaits() []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]time.Duration(nil), o.waits...)
}

func (o *taskObserver) ObserveTask(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ds = append(o.ds, d)
}

func (o *taskObserver) observed() []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]time.Duration(nil), o.ds...)
}

var _ handlers.Observer = (*taskObserver)(nil)

// TestObserver: each committed event is observed once, with its latency
// from delivery to ack, retries included; every attempt is a run. Each
// event's wait on the stream is observed once, at its first delivery.
func TestObserver(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	const timeout = 50 * time.Millisecond
	h := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		if t.Type == "slow" && t.Attempt == 1 {
			<-ctx.Done() // overrun: the deadline aborts this attempt
		}
		return t.Put(t.Type, t.Attempt)
	})
	obs := &taskObserver{}
	w := startWorker(t, env, h, handlers.Config{TaskTimeout: timeout, Observer: obs})
	publish(t, env, "r0", "p", "slow", nil)
	publish(t, env, "r0", "p", "quick", nil)
	natstest.Eventually(t, 10*time.Second, func() bool { return len(obs.observed()) == 2 }, "two tasks observed: %v", obs.observed())
	ds := obs.observed()
	if ds[0] < timeout || ds[1] <= 0 {
		t.Errorf("latencies %v: want the slow task's above its deadline %v (its retry included), the quick one's positive", ds, timeout)
	}
	if ws := obs.observedWaits(); len(ws) != 2 || ws[0] < 0 || ws[1] < 0 || ws[0] > 10*time.Second || ws[1] > 10*time.Second {
		t.Errorf("waits on the stream %v: want two, each between 0 and the test's 10 s", ws)
	}
	if st := w.rt.Stats(); st.Runs != 3 || st.Committed != 2 || st.Deadlines != 1 || st.LastLatency != ds[1] {
		t.Errorf("stats %+v, want 3 runs, 2 committed, 1 deadline, the last latency observed (%v)", st, ds[1])
	}
}

// TestObserverCompaction: compaction reports each purge it makes, by the
// kind of message purged, with the time it took: events and their
// markers once handled events are stored, the other kinds as they come.
func TestObserverCompaction(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	h := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		return t.Put(t.Type, t.Attempt)
	})
	obs := &taskObserver{}
	startWorker(t, env, h, handlers.Config{Observer: obs, CompactInterval: 40 * time.Millisecond})
	publish(t, env, "r0", "p", "a", nil)
	publish(t, env, "r0", "q", "b", nil)
	natstest.Eventually(t, 10*time.Second, func() bool {
		ps := obs.observedPurges()
		return ps["events"] > 0 && ps["markers"] > 0 && env.Stored(t, env.World.EventFilter()) == 0
	}, "events left stored, purges observed: %v", purgesSeen{obs})
	for kind := range obs.observedPurges() {
		switch kind {
		case "events", "alarms", "markers", "checks", "revisions":
		default:
			t.Errorf("purge of kind %q observed", kind)
		}
	}
}

// purgesSeen formats as the purges its observer has seen when printed.
type purgesSeen struct{ o *taskObserver }

func (p purgesSeen) String() string { return fmt.Sprint(p.o.observedPurges()) }
