package metrics_test

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/metricstest"
	"github.com/starbus/starbus/kv"
	"github.com/starbus/starbus/metrics"
)

// Fakes of the components, returning fixed snapshots.
type (
	fakeStore   struct{ stats kv.Stats }
	fakeRuntime struct {
		stats handlers.Stats
		parts []int
	}
	fakeEdge struct{ stats edge.Stats }
)

func (f fakeStore) Stats() kv.Stats         { return f.stats }
func (f fakeRuntime) Stats() handlers.Stats { return f.stats }
func (f fakeRuntime) Partitions() []int     { return f.parts }
func (f fakeEdge) Stats() edge.Stats        { return f.stats }

// scrape fetches a registry's /metrics over HTTP and parses it.
func scrape(t *testing.T, reg *metrics.Registry) metricstest.Families {
	t.Helper()
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	return metricstest.Scrape(t, srv.URL)
}

// series returns the series of family name whose labels include want.
func series(t *testing.T, mfs metricstest.Families, name string, want map[string]string) *dto.Metric {
	t.Helper()
	m := mfs.Series(name, want)
	if m == nil {
		t.Fatalf("no series %s%v", name, want)
	}
	return m
}

func newRegistry(t *testing.T) *metrics.Registry {
	t.Helper()
	reg, err := metrics.New("w1", nil)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestRegistry: every family is served with its world label, counters and
// gauges read from the components' Stats, histograms from their observers;
// the Go runtime's and the process's metrics come along.
func TestRegistry(t *testing.T) {
	reg := newRegistry(t)
	err := errors.Join(
		reg.RegisterStore(fakeStore{kv.Stats{Commits: 7, Conflicts: 2, Groups: 5, Batches: 3, Reads: 11, CacheHits: 13, Forwards: 1, Forwarded: 4}}),
		reg.RegisterRuntime(fakeRuntime{handlers.Stats{Runs: 9, Committed: 6, Conflicts: 2, Deadlines: 1, Retries: 3, Errors: 1, Unavailable: 1, DeadLetters: 1, Duplicates: 1, StaleAlarms: 1, Unhandled: 4, Acquired: 5, Released: 1, Lost: 1}, []int{0, 3, 7}}),
		reg.RegisterEdge(fakeEdge{edge.Stats{Connections: 2, Sessions: 3, FramesWritten: 40, Writes: 9, SlowConsumers: 1, RateLimited: 8, Logins: 5, LoginFailures: 2, BadLogins: 6, Throttled: 7}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	so, ro, eo := reg.StoreObserver(), reg.RuntimeObserver(), reg.EdgeObserver()
	so.ObserveCommit(2*time.Millisecond, nil)
	so.ObserveCommit(3*time.Millisecond, nil)
	so.ObserveCommit(time.Millisecond, &kv.ConflictError{Key: "k"})
	so.ObserveCommit(time.Second, kv.ErrCommitUnknown)
	so.ObserveGroup(3, 0)
	so.ObserveGroup(2, 9)
	ro.ObserveTask(20 * time.Millisecond)
	ro.ObserveEventWait(3 * time.Millisecond)
	ro.ObserveCompaction("markers", 70*time.Millisecond)
	eo.ObserveReplay(0)
	eo.ObserveReplay(100)
	eo.ObserveDeliveryWait(40 * time.Millisecond)
	eo.ObserveDeliveryWait(200 * time.Millisecond)

	mfs := scrape(t, reg)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"starbus_kv_commits_total", nil, 7},
		{"starbus_kv_conflicts_total", nil, 2},
		{"starbus_kv_commit_groups_total", nil, 5},
		{"starbus_kv_atomic_batches_total", nil, 3},
		{"starbus_kv_reads_total", map[string]string{"source": "server"}, 11},
		{"starbus_kv_reads_total", map[string]string{"source": "cache"}, 13},
		{"starbus_kv_forwarded_groups_total", nil, 1},
		{"starbus_kv_leader_commits_total", nil, 4},
		{"starbus_runtime_task_runs_total", nil, 9},
		{"starbus_runtime_tasks_committed_total", nil, 6},
		{"starbus_runtime_task_conflicts_total", nil, 2},
		{"starbus_runtime_task_deadlines_total", nil, 1},
		{"starbus_runtime_task_retries_total", nil, 3},
		{"starbus_runtime_task_errors_total", nil, 1},
		{"starbus_runtime_task_unavailable_total", nil, 1},
		{"starbus_runtime_dead_letters_total", nil, 1},
		{"starbus_runtime_duplicate_events_total", nil, 1},
		{"starbus_runtime_stale_alarms_total", nil, 1},
		{"starbus_runtime_unhandled_client_events_total", nil, 4},
		{"starbus_runtime_partitions_acquired_total", nil, 5},
		{"starbus_runtime_partitions_released_total", nil, 1},
		{"starbus_runtime_partitions_lost_total", nil, 1},
		{"starbus_runtime_partitions_owned", nil, 3},
		{"starbus_edge_connections", nil, 2},
		{"starbus_edge_sessions", nil, 3},
		{"starbus_edge_frames_written_total", nil, 40},
		{"starbus_edge_writes_total", nil, 9},
		{"starbus_edge_slow_consumer_disconnects_total", nil, 1},
		{"starbus_edge_rate_limited_messages_total", nil, 8},
		{"starbus_edge_logins_total", map[string]string{"result": "ok"}, 5},
		{"starbus_edge_logins_total", map[string]string{"result": "failed"}, 2},
		{"starbus_edge_bad_logins_total", nil, 6},
		{"starbus_edge_throttled_logins_total", nil, 7},
	} {
		labels := map[string]string{"world": "w1"}
		for k, v := range tc.labels {
			labels[k] = v
		}
		m := series(t, mfs, tc.name, labels)
		got := m.GetCounter().GetValue() + m.GetGauge().GetValue()
		if got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}

	for _, tc := range []struct {
		name   string
		labels map[string]string
		count  uint64
		sum    float64
		// le → cumulative count
		buckets map[float64]uint64
	}{
		{"starbus_kv_commit_duration_seconds", map[string]string{"outcome": "committed"}, 2, 0.005, map[float64]uint64{.001: 0, .0025: 1, .005: 2}},
		{"starbus_kv_commit_duration_seconds", map[string]string{"outcome": "conflict"}, 1, 0.001, map[float64]uint64{.001: 1}},
		{"starbus_kv_commit_duration_seconds", map[string]string{"outcome": "error"}, 1, 1, map[float64]uint64{.5: 0, 1: 1}},
		{"starbus_kv_commit_group_transactions", nil, 2, 5, map[float64]uint64{1: 0, 2: 1, 4: 2}},
		{"starbus_kv_atomic_batch_messages", nil, 1, 9, map[float64]uint64{8: 0, 16: 1}},
		{"starbus_runtime_task_duration_seconds", nil, 1, 0.02, map[float64]uint64{.01: 0, .025: 1}},
		{"starbus_edge_replay_messages", nil, 2, 100, map[float64]uint64{0: 1, 64: 1, 256: 2}},
		{"starbus_runtime_event_wait_seconds", nil, 1, 0.003, map[float64]uint64{.0025: 0, .005: 1}},
		{"starbus_runtime_compaction_seconds", map[string]string{"kind": "markers"}, 1, 0.07, map[float64]uint64{.05: 0, .1: 1}},
		{"starbus_edge_delivery_wait_seconds", nil, 2, 0.24, map[float64]uint64{.025: 0, .05: 1, .25: 2}},
	} {
		labels := map[string]string{"world": "w1"}
		for k, v := range tc.labels {
			labels[k] = v
		}
		h := series(t, mfs, tc.name, labels).GetHistogram()
		if h.GetSampleCount() != tc.count || !near(h.GetSampleSum(), tc.sum) {
			t.Errorf("%s%v: count %d sum %v, want %d and %v", tc.name, tc.labels, h.GetSampleCount(), h.GetSampleSum(), tc.count, tc.sum)
		}
		for _, b := range h.GetBucket() {
			if want, ok := tc.buckets[b.GetUpperBound()]; ok && b.GetCumulativeCount() != want {
				t.Errorf("%s%v: bucket le=%v holds %d, want %d", tc.name, tc.labels, b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "go_sched_latencies_seconds"} {
		if mfs[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if mf := mfs["go_sched_latencies_seconds"]; mf != nil && mf.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("go_sched_latencies_seconds is a %v, want a histogram", mf.GetType())
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// TestPartialRegistry: a process exports the families of the components
// it has, and no others; a component is registered once.
func TestPartialRegistry(t *testing.T) {
	reg := newRegistry(t)
	if err := reg.RegisterEdge(fakeEdge{}); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterEdge(fakeEdge{}); err == nil {
		t.Error("an edge registered twice")
	}
	mfs := scrape(t, reg)
	if mfs["starbus_edge_sessions"] == nil || mfs["starbus_edge_replay_messages"] == nil {
		t.Error("edge families missing")
	}
	for _, name := range []string{"starbus_kv_commits_total", "starbus_runtime_task_duration_seconds"} {
		if mfs[name] != nil {
			t.Errorf("%s served by a process without its component", name)
		}
	}
}

// TestValues: the live map's numbers are /metrics' numbers.
func TestValues(t *testing.T) {
	reg := newRegistry(t)
	if err := errors.Join(
		reg.RegisterStore(fakeStore{kv.Stats{Commits: 7, CacheHits: 13}}),
		reg.RegisterRuntime(fakeRuntime{stats: handlers.Stats{Committed: 6}}),
	); err != nil {
		t.Fatal(err)
	}
	reg.RuntimeObserver().ObserveTask(250 * time.Millisecond)
	reg.RuntimeObserver().ObserveTask(750 * time.Millisecond)
	v, err := reg.Values()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"starbus_kv_commits_total":                                      7,
		`starbus_kv_reads_total{source="cache"}`:                        13,
		`starbus_kv_reads_total{source="server"}`:                       0,
		"starbus_runtime_tasks_committed_total":                         6,
		"starbus_runtime_partitions_owned":                              0,
		"starbus_runtime_task_duration_seconds_count":                   2,
		"starbus_runtime_task_duration_seconds_sum":                     1,
		`starbus_kv_commit_duration_seconds_count{outcome="committed"}`: 0,
	} {
		if got, ok := v[name]; !ok || got != want {
			t.Errorf("Values()[%s] = %v (present: %v), want %v", name, got, ok, want)
		}
	}
	if _, ok := v["go_goroutines"]; ok {
		t.Error("Values has the Go runtime's metrics")
	}
}

// TestObserversDoNotAllocate: an observation costs the commit path, the
// workers and the edge no allocation.
func TestObserversDoNotAllocate(t *testing.T) {
	reg := newRegistry(t)
	so, ro, eo := reg.StoreObserver(), reg.RuntimeObserver(), reg.EdgeObserver()
	conflict := error(&kv.ConflictError{Key: "k"})
	allocs := testing.AllocsPerRun(1000, func() {
		so.ObserveCommit(time.Millisecond, nil)
		so.ObserveCommit(time.Millisecond, conflict)
		so.ObserveCommit(time.Millisecond, kv.ErrUnavailable)
		so.ObserveGroup(4, 12)
		ro.ObserveTask(time.Millisecond)
		eo.ObserveReplay(3)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round of observations, want 0", allocs)
	}
}
