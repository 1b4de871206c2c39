// Package metrics exports what a Starbus process measures in the
// Prometheus format, with github.com/prometheus/client_golang: a
// [Registry] per process (never Prometheus' global one), holding the Go
// runtime's and the process's collectors and the starbus_ families of the
// components registered with it, each series labelled with its world.
//
// # Where the numbers come from
//
// Counters and gauges are read, at each scrape, from the Stats snapshot of
// the component ([kv.Store.Stats], [handlers.Runtime.Stats],
// [edge.Server.Stats]): the atomics the components keep anyway, so nothing
// is counted twice and the hot paths do no more work. Histograms need
// every observation: the components take an optional observer, one
// interface call per observation with no allocation, nil when unused.
// Build the registry first, pass its observers to the components, then
// register them:
//
//	reg, _ := metrics.New(world, log)
//	store, _ := kv.Open(ctx, js, w, kv.Options{Observer: reg.StoreObserver()})
//	rt, _ := handlers.New(handlers.Config{Store: store, JS: js, Handler: h, Observer: reg.RuntimeObserver()})
//	_ = reg.RegisterStore(store)
//	_ = reg.RegisterRuntime(rt)
//	mux.Handle("/metrics", reg.Handler()) // mux: the process's own http.ServeMux
//
// # Families
//
// kv (a process's store): starbus_kv_commits_total, _conflicts_total,
// _commit_groups_total, _atomic_batches_total, _reads_total{source="server"|"cache"},
// _forwarded_groups_total (sent to the commit leader), _leader_commits_total
// (taken from other workers as their leader); histograms
// starbus_kv_commit_duration_seconds{outcome="committed"|"conflict"|"error"}
// (from the Commit call to its outcome), starbus_kv_commit_group_transactions
// and starbus_kv_atomic_batch_messages.
//
// runtime (a worker): starbus_runtime_task_runs_total (attempts),
// _tasks_committed_total, _task_conflicts_total, _task_deadlines_total,
// _task_retries_total, _task_errors_total, _task_unavailable_total,
// _dead_letters_total, _duplicate_events_total, _stale_alarms_total,
// _partitions_acquired_total, _partitions_released_total,
// _partitions_lost_total; gauge starbus_runtime_partitions_owned; histogram
// starbus_runtime_task_duration_seconds (from an event's delivery to the
// worker to its ack, retries included).
//
// edge: gauges starbus_edge_connections and starbus_edge_sessions;
// starbus_edge_frames_written_total, _writes_total (frames per write is
// their ratio), _slow_consumer_disconnects_total,
// _rate_limited_messages_total, _logins_total{result="ok"|"failed"};
// histogram starbus_edge_replay_messages (messages replayed on a
// reconnect).
//
// The round trip of a player's action (from a client's send to the reply)
// is not measured here: the edge cannot tie a reply to the event that
// caused it without work on its delivery path. `starbus bots` reports it
// from the clients' side.
//
// [Registry.Values] gives the starbus_ series as numbers by name, for
// pages that show a few of them (the gridworld live map).
//
// # Goroutines
//
// None. Collection runs in the goroutine of the HTTP request that asks for
// it.
package metrics
