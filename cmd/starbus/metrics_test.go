package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/starbus/starbus/internal/metricstest"
	"github.com/starbus/starbus/internal/natstest"
)

// TestDevMetrics runs `starbus dev`, lets a few bots play, and reads its
// /metrics as Prometheus would: every family of the kv store, the runtime
// and the edge is there, labelled with the world, and the counters and
// histograms have moved; /healthz answers.
func TestDevMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var devOut syncBuffer
	devDone := make(chan error, 1)
	go func() {
		devDone <- run(ctx, []string{"dev", "-data", t.TempDir(), "-world", "metered", "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-log", "warn"}, nil, &devOut, io.Discard)
	}()
	edgeAddr := regexp.MustCompile(`edge\s+(127\.0\.0\.1:\d+)`)
	metricsURL := regexp.MustCompile(`metrics\s+(http://127\.0\.0\.1:\d+/metrics)`)
	var addr, url string
	natstest.Eventually(t, 30*time.Second, func() bool {
		if m := edgeAddr.FindStringSubmatch(devOut.String()); m != nil {
			addr = m[1]
		}
		if m := metricsURL.FindStringSubmatch(devOut.String()); m != nil {
			url = m[1]
		}
		return addr != "" && url != ""
	}, "dev ready: %s", devOut.String())

	const players = 5
	var botsOut syncBuffer
	err := run(ctx, []string{"bots", "-addr", addr, "-http", "off", "-players", "5", "-duration", "1s", "-rate", "5", "-json"}, nil, &botsOut, io.Discard)
	if err != nil {
		t.Fatalf("bots: %v\n%s", err, botsOut.String())
	}

	world := map[string]string{"world": "metered"}
	moved := []struct {
		name    string
		labels  map[string]string
		atLeast float64
	}{
		{"starbus_runtime_tasks_committed_total", nil, 1},
		{"starbus_runtime_task_runs_total", nil, 1},
		{"starbus_runtime_task_duration_seconds", nil, 1}, // a histogram: its count
		{"starbus_runtime_partitions_owned", nil, 16},
		{"starbus_kv_commits_total", nil, 1},
		{"starbus_kv_commit_groups_total", nil, 1},
		{"starbus_kv_commit_duration_seconds", map[string]string{"outcome": "committed"}, 1},
		{"starbus_kv_commit_group_transactions", nil, 1},
		{"starbus_edge_frames_written_total", nil, players},
		{"starbus_edge_logins_total", map[string]string{"result": "ok"}, players},
	}
	var mfs metricstest.Families
	natstest.Eventually(t, 30*time.Second, func() bool {
		if mfs, err = metricstest.TryScrape(url); err != nil {
			return false
		}
		for _, m := range moved {
			labels := map[string]string{"world": "metered"}
			for k, v := range m.labels {
				labels[k] = v
			}
			if v, ok := mfs.Value(m.name, labels); !ok || v < m.atLeast {
				return false
			}
		}
		return true
	}, "metrics did not move: %v", err)
	for _, name := range []string{
		"starbus_kv_conflicts_total", "starbus_kv_atomic_batches_total", "starbus_kv_reads_total",
		"starbus_kv_forwarded_groups_total", "starbus_kv_leader_commits_total", "starbus_kv_atomic_batch_messages",
		"starbus_runtime_task_conflicts_total", "starbus_runtime_task_deadlines_total", "starbus_runtime_task_retries_total",
		"starbus_runtime_task_errors_total", "starbus_runtime_task_unavailable_total", "starbus_runtime_dead_letters_total",
		"starbus_runtime_duplicate_events_total", "starbus_runtime_stale_alarms_total", "starbus_runtime_partitions_acquired_total",
		"starbus_runtime_partitions_released_total", "starbus_runtime_partitions_lost_total",
		"starbus_edge_connections", "starbus_edge_sessions", "starbus_edge_slow_consumer_disconnects_total",
		"starbus_edge_rate_limited_messages_total", "starbus_edge_replay_messages",
	} {
		if mfs.Series(name, world) == nil {
			t.Errorf("no %s{world=metered}", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if mfs[name] == nil {
			t.Errorf("no %s", name)
		}
	}

	resp, err := http.Get(url[:len(url)-len("/metrics")] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %s", resp.Status)
	}
	cancel()
	if err := <-devDone; err != nil {
		t.Fatalf("dev: %v", err)
	}
}
