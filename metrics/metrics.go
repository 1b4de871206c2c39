package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// Registry holds the metrics of one process: the Go runtime's and the
// process's, and the starbus_ families of the components registered with
// it, each labelled with their world. It is safe for concurrent use.
type Registry struct {
	starbus *prometheus.Registry  // the starbus_ families
	runtime *prometheus.Registry  // go_ and process_
	reg     prometheus.Registerer // starbus, labelled with the world
	log     *slog.Logger

	store   storeObserver
	tasks   runtimeObserver
	replays edgeObserver
}

// Store is what [Registry.RegisterStore] reads; *kv.Store satisfies it.
type Store interface {
	Stats() kv.Stats
}

// Runtime is what [Registry.RegisterRuntime] reads; *handlers.Runtime
// satisfies it.
type Runtime interface {
	Stats() handlers.Stats
	Partitions() []int
}

// Edge is what [Registry.RegisterEdge] reads; *edge.Server satisfies it.
type Edge interface {
	Stats() edge.Stats
}

var (
	_ Store   = (*kv.Store)(nil)
	_ Runtime = (*handlers.Runtime)(nil)
	_ Edge    = (*edge.Server)(nil)
)

// Histogram buckets: durations in seconds from 100µs (a commit on tmpfs) to
// 10 s (past every timeout); sizes in powers of two up to the 1,000
// messages of an atomic batch; replays from none to thousands.
var (
	durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	sizeBuckets     = prometheus.ExponentialBuckets(1, 2, 11)
	replayBuckets   = []float64{0, 1, 4, 16, 64, 256, 1024, 4096}
)

// New returns the registry of a process serving world, with the Go
// runtime's and the process's collectors. log receives the errors of
// scrapes (nil: discard).
func New(world string, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		starbus: prometheus.NewRegistry(),
		runtime: prometheus.NewRegistry(),
		log:     log,
	}
	r.reg = prometheus.WrapRegistererWith(prometheus.Labels{"world": world}, r.starbus)
	if err := errors.Join(
		// The scheduler's metrics include go_sched_latencies_seconds: how
		// long goroutines ready to run waited for a CPU, the plainest sign
		// that a process is CPU-bound (its p90 is a tenth of a millisecond
		// on an idle box, and 10 ms or more when the cores are saturated).
		r.runtime.Register(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler))),
		r.runtime.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	commits := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "starbus_kv_commit_duration_seconds",
		Help:    "Time from a transaction's commit call to its outcome, by outcome (committed, conflict, error).",
		Buckets: durationBuckets,
	}, []string{"outcome"})
	r.store = storeObserver{
		commits:   commits,
		committed: commits.WithLabelValues("committed"),
		conflict:  commits.WithLabelValues("conflict"),
		failed:    commits.WithLabelValues("error"),
		groups: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "starbus_kv_commit_group_transactions",
			Help:    "Transactions per commit group sent to the server.",
			Buckets: sizeBuckets,
		}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "starbus_kv_atomic_batch_messages",
			Help:    "Messages per atomic batch this store sent to the server.",
			Buckets: sizeBuckets,
		}),
	}
	r.tasks = runtimeObserver{
		tasks: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "starbus_runtime_task_duration_seconds",
			Help:    "Time from an event's delivery to a worker to its ack, retries included, of the events whose task committed.",
			Buckets: durationBuckets,
		}),
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "starbus_runtime_event_wait_seconds",
			Help:    "Time from an event's store on the stream (the server's clock) to its first delivery to a worker: the queue's wait.",
			Buckets: durationBuckets,
		}),
		purges: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "starbus_runtime_compaction_seconds",
			Help:    "Time of each purge of compaction, by kind of message purged (events, alarms, markers, checks, revisions): the world's stream holds its commits meanwhile.",
			Buckets: durationBuckets,
		}, []string{"kind"}),
	}
	r.tasks.purgeOf = map[string]prometheus.Observer{}
	for _, kind := range []string{"events", "alarms", "markers", "checks", "revisions"} {
		r.tasks.purgeOf[kind] = r.tasks.purges.WithLabelValues(kind)
	}
	r.replays = edgeObserver{
		replays: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "starbus_edge_replay_messages",
			Help:    "Stored messages replayed to a client on its reconnect.",
			Buckets: replayBuckets,
		}),
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "starbus_edge_delivery_wait_seconds",
			Help:    "Time from a stored message's store on the stream (the server's clock) to the edge's dispatch of it to its clients.",
			Buckets: durationBuckets,
		}),
	}
	return r, nil
}

// StoreObserver returns the observer to set as kv.Options.Observer of the
// store later given to [Registry.RegisterStore]: it feeds the store's
// histograms.
func (r *Registry) StoreObserver() kv.Observer { return &r.store }

// RuntimeObserver returns the observer to set as handlers.Config.Observer
// of the runtime later given to [Registry.RegisterRuntime].
func (r *Registry) RuntimeObserver() handlers.Observer { return &r.tasks }

// EdgeObserver returns the observer to set as edge.Server.Observer of the
// edge given to [Registry.RegisterEdge].
func (r *Registry) EdgeObserver() edge.Observer { return &r.replays }

// RegisterStore exports a store's counters (read from its Stats at each
// scrape) and the histograms its observer feeds. A process registers one
// store.
func (r *Registry) RegisterStore(s Store) error {
	stat := func(f func(kv.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(s.Stats())) }
	}
	return r.register(
		counter("starbus_kv_commits_total", "Transactions committed.", nil,
			stat(func(st kv.Stats) uint64 { return st.Commits })),
		counter("starbus_kv_conflicts_total", "Commits refused for a conflict, by this process's committer or by the server.", nil,
			stat(func(st kv.Stats) uint64 { return st.Conflicts })),
		counter("starbus_kv_commit_groups_total", "Commit groups sent to the server.", nil,
			stat(func(st kv.Stats) uint64 { return st.Groups })),
		counter("starbus_kv_atomic_batches_total", "Atomic batches sent to the server.", nil,
			stat(func(st kv.Stats) uint64 { return st.Batches })),
		counter("starbus_kv_reads_total", "Key reads, by where they were answered: the server or this process's cache.", prometheus.Labels{"source": "server"},
			stat(func(st kv.Stats) uint64 { return st.Reads })),
		counter("starbus_kv_reads_total", "Key reads, by where they were answered: the server or this process's cache.", prometheus.Labels{"source": "cache"},
			stat(func(st kv.Stats) uint64 { return st.CacheHits })),
		counter("starbus_kv_forwarded_groups_total", "Groups of commits forwarded to the commit leader and answered by it.", nil,
			stat(func(st kv.Stats) uint64 { return st.Forwards })),
		counter("starbus_kv_leader_commits_total", "Commits taken from other processes' stores and committed, as their commit leader.", nil,
			stat(func(st kv.Stats) uint64 { return st.Forwarded })),
		r.store.commits, r.store.groups, r.store.batches,
	)
}

// RegisterRuntime exports a worker runtime's counters (read from its Stats
// at each scrape), the partitions it owns, and the task latency histogram
// its observer feeds.
func (r *Registry) RegisterRuntime(rt Runtime) error {
	stat := func(f func(handlers.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(rt.Stats())) }
	}
	return r.register(
		counter("starbus_runtime_task_runs_total", "Task attempts: handler runs, alarms included.", nil,
			stat(func(st handlers.Stats) uint64 { return st.Runs })),
		counter("starbus_runtime_tasks_committed_total", "Events whose task committed (or had nothing to commit).", nil,
			stat(func(st handlers.Stats) uint64 { return st.Committed })),
		counter("starbus_runtime_task_conflicts_total", "Task attempts that ended in a conflict.", nil,
			stat(func(st handlers.Stats) uint64 { return st.Conflicts })),
		counter("starbus_runtime_task_deadlines_total", "Task attempts that ran past their deadline.", nil,
			stat(func(st handlers.Stats) uint64 { return st.Deadlines })),
		counter("starbus_runtime_task_retries_total", "Task attempts re-run after a conflict or a deadline.", nil,
			stat(func(st handlers.Stats) uint64 { return st.Retries })),
		counter("starbus_runtime_task_errors_total", "Task attempts that ended in an error (retried up to a limit).", nil,
			stat(func(st handlers.Stats) uint64 { return st.Errors })),
		counter("starbus_runtime_task_unavailable_total", "Task attempts that found the server unavailable (retried without limit).", nil,
			stat(func(st handlers.Stats) uint64 { return st.Unavailable })),
		counter("starbus_runtime_dead_letters_total", "Events dead-lettered.", nil,
			stat(func(st handlers.Stats) uint64 { return st.DeadLetters })),
		counter("starbus_runtime_duplicate_events_total", "Redelivered events found already applied.", nil,
			stat(func(st handlers.Stats) uint64 { return st.Duplicates })),
		counter("starbus_runtime_stale_alarms_total", "Alarms of cancelled schedules or of due times already run.", nil,
			stat(func(st handlers.Stats) uint64 { return st.StaleAlarms })),
		counter("starbus_runtime_unhandled_client_events_total", "Client messages the game has no handler for, dropped (not dead-lettered).", nil,
			stat(func(st handlers.Stats) uint64 { return st.Unhandled })),
		counter("starbus_runtime_partitions_acquired_total", "Partitions this worker took.", nil,
			stat(func(st handlers.Stats) uint64 { return st.Acquired })),
		counter("starbus_runtime_partitions_released_total", "Partitions this worker handed back to its group.", nil,
			stat(func(st handlers.Stats) uint64 { return st.Released })),
		counter("starbus_runtime_partitions_lost_total", "Partitions taken over by another worker, or whose consumer went away.", nil,
			stat(func(st handlers.Stats) uint64 { return st.Lost })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "starbus_runtime_partitions_owned",
			Help: "Partitions of the world's events this worker consumes now.",
		}, func() float64 { return float64(len(rt.Partitions())) }),
		r.tasks.tasks, r.tasks.waits, r.tasks.purges,
	)
}

// RegisterEdge exports an edge's counters and gauges (read from its Stats
// at each scrape) and the replay histogram its observer feeds.
func (r *Registry) RegisterEdge(e Edge) error {
	stat := func(f func(edge.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(e.Stats())) }
	}
	gauge := func(name, help string, f func(edge.Stats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f(e.Stats())) })
	}
	return r.register(
		gauge("starbus_edge_connections", "Client connections open now.",
			func(st edge.Stats) int { return st.Connections }),
		gauge("starbus_edge_sessions", "Sessions held now, connected or in their reconnect grace.",
			func(st edge.Stats) int { return st.Sessions }),
		counter("starbus_edge_frames_written_total", "Frames written to clients: messages, replies and errors.", nil,
			stat(func(st edge.Stats) uint64 { return st.FramesWritten })),
		counter("starbus_edge_writes_total", "Writes to client connections, each of one or more frames.", nil,
			stat(func(st edge.Stats) uint64 { return st.Writes })),
		counter("starbus_edge_slow_consumer_disconnects_total", "Clients disconnected for falling behind their outbound queue.", nil,
			stat(func(st edge.Stats) uint64 { return st.SlowConsumers })),
		counter("starbus_edge_rate_limited_messages_total", "Client messages dropped over the rate limit.", nil,
			stat(func(st edge.Stats) uint64 { return st.RateLimited })),
		counter("starbus_edge_logins_total", "Logins, by result: ok (a session opened) or failed.", prometheus.Labels{"result": "ok"},
			stat(func(st edge.Stats) uint64 { return st.Logins })),
		counter("starbus_edge_logins_total", "Logins, by result: ok (a session opened) or failed.", prometheus.Labels{"result": "failed"},
			stat(func(st edge.Stats) uint64 { return st.LoginFailures })),
		counter("starbus_edge_bad_logins_total", "Logins refused for a wrong name or password: alert on a surge (password guessing).", nil,
			stat(func(st edge.Stats) uint64 { return st.BadLogins })),
		counter("starbus_edge_throttled_logins_total", "Logins refused unchecked, after too many failures from their address or for their name.", nil,
			stat(func(st edge.Stats) uint64 { return st.Throttled })),
		r.replays.replays, r.replays.waits,
	)
}

func counter(name, help string, labels prometheus.Labels, f func() float64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f)
}

// register registers every collector, or none of them.
func (r *Registry) register(cs ...prometheus.Collector) error {
	for i, c := range cs {
		if err := r.reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				r.reg.Unregister(done)
			}
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

// Handler serves every metric in the Prometheus text format (or another
// format the scraper asks for); mount it on /metrics.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.gatherers(), promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Gatherer returns what [Registry.Handler] serves.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.gatherers() }

func (r *Registry) gatherers() prometheus.Gatherers {
	return prometheus.Gatherers{r.starbus, r.runtime}
}

// Values returns the current value of every starbus_ series, by its name
// and its labels other than world in the text format's notation
// (starbus_kv_reads_total{source="cache"}); a histogram is given as its
// _sum and _count. It is what the live map shows: the same numbers as
// /metrics.
func (r *Registry) Values() (map[string]float64, error) {
	mfs, err := r.starbus.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := seriesLabels(m)
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()+labels] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()+labels] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_sum"+labels] = m.GetHistogram().GetSampleSum()
				out[mf.GetName()+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out, nil
}

// seriesLabels writes a series' labels but world as {name="value",...}, or
// "" when it has none. The registry keeps them sorted by name.
func seriesLabels(m *dto.Metric) string {
	var b strings.Builder
	for _, lp := range m.GetLabel() {
		if lp.GetName() == "world" {
			continue
		}
		if b.Len() == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", lp.GetName(), lp.GetValue())
	}
	if b.Len() > 0 {
		b.WriteByte('}')
	}
	return b.String()
}

// storeObserver feeds a store's histograms.
type storeObserver struct {
	commits                     *prometheus.HistogramVec
	committed, conflict, failed prometheus.Observer // its series, resolved once
	groups, batches             prometheus.Histogram
}

func (o *storeObserver) ObserveCommit(d time.Duration, err error) {
	switch {
	case err == nil:
		o.committed.Observe(d.Seconds())
	case errors.Is(err, kv.ErrConflict):
		o.conflict.Observe(d.Seconds())
	default:
		o.failed.Observe(d.Seconds())
	}
}

func (o *storeObserver) ObserveGroup(txs, batchMsgs int) {
	o.groups.Observe(float64(txs))
	if batchMsgs > 0 {
		o.batches.Observe(float64(batchMsgs))
	}
}

// runtimeObserver feeds a runtime's histograms.
type runtimeObserver struct {
	tasks, waits prometheus.Histogram
	purges       *prometheus.HistogramVec
	purgeOf      map[string]prometheus.Observer // the kinds the runtime reports, resolved once
}

func (o *runtimeObserver) ObserveTask(d time.Duration)      { o.tasks.Observe(d.Seconds()) }
func (o *runtimeObserver) ObserveEventWait(d time.Duration) { o.waits.Observe(d.Seconds()) }
func (o *runtimeObserver) ObserveCompaction(kind string, d time.Duration) {
	h, ok := o.purgeOf[kind]
	if !ok {
		h = o.purges.WithLabelValues(kind)
	}
	h.Observe(d.Seconds())
}

// edgeObserver feeds an edge's histograms.
type edgeObserver struct{ replays, waits prometheus.Histogram }

func (o *edgeObserver) ObserveReplay(n int)                 { o.replays.Observe(float64(n)) }
func (o *edgeObserver) ObserveDeliveryWait(d time.Duration) { o.waits.Observe(d.Seconds()) }
