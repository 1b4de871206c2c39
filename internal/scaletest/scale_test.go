package scaletest

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
)

var (
	scaleEvents   = flag.Int("scale.events", 4000, "events per run of TestScale")
	scaleWorkers  = flag.String("scale.workers", "1,2", "the numbers of worker processes TestScale compares")
	scaleSessions = flag.Int("scale.sessions", 500, "sessions the load of TestScale is spread over")
	scaleAccounts = flag.String("scale.accounts", "1000", "the numbers of accounts of TestScale's loads (one table each)")
)

// ints parses a comma-separated list of positive numbers.
func ints(t *testing.T, flagName, list string) []int {
	t.Helper()
	var out []int
	for f := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("-%s %q: want positive numbers, comma-separated", flagName, list)
		}
		out = append(out, n)
	}
	return out
}

// selfCPU returns the CPU time this process (the loader) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scaleRow is one run of TestScale.
type scaleRow struct {
	workers, events      int
	wall                 time.Duration
	workerCPU, serverCPU time.Duration
	loaderCPU            time.Duration
	final                []stats // each worker's last stats line
}

// TestScale is acceptance 1 of horizontal scale: the same load (bank
// transfers on many sessions, published as fast as the server takes them)
// handled by 1, 2 (and from scripts/scale, 4) worker processes against one
// NATS process, for each number of accounts given (few accounts: a
// contended load; many: a spread one). It reports throughput and where the
// time goes: the CPU the workers, the server and the loader used, per
// event and against the machine's cores over the wall time; conflicts per
// event; and how the commits were grouped: tasks per atomic batch, and the
// share of commits the commit leader took from the others. It fails if the
// state is not whole afterwards, or if a worker of several handled almost
// nothing (the load was not shared).
func TestScale(t *testing.T) {
	counts := ints(t, "scale.workers", *scaleWorkers)
	accounts := ints(t, "scale.accounts", *scaleAccounts)
	server, url := natsNode(t)
	tables := make([][]scaleRow, len(accounts))
	for ai, na := range accounts {
		for _, k := range counts {
			tables[ai] = append(tables[ai], scaleRun(t, server, url, fmt.Sprintf("scale%d-%d", na, k), k, na))
		}
	}
	t.Logf("%d events on %d sessions, one NATS process (R1, file storage), %d cores", *scaleEvents, *scaleSessions, cores())
	for ai, rows := range tables {
		t.Logf("bank transfers between %d accounts", accounts[ai])
		t.Logf("%-7s %9s %6s %8s | %-30s | %-9s | %-9s | %-13s | %s", "workers", "events/s", "ratio", "wall",
			"CPU µs/event worker/server/load", "CPU busy", "conflicts", "tasks/batch", "commits forwarded to the leader")
		base := float64(rows[0].events) / rows[0].wall.Seconds()
		for _, r := range rows {
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(r.events) }
			busy := float64(r.workerCPU+r.serverCPU+r.loaderCPU) / float64(r.wall) / float64(cores())
			var conflicts, commits, batches, forwarded int
			for _, st := range r.final {
				conflicts += st.counters["conflicts"]
				commits += st.counters["commits"]
				batches += st.counters["batches"]
				forwarded += st.counters["forwarded"]
			}
			// A forwarded commit counts at the leader and at its sender.
			distinct := commits - forwarded
			rate := float64(r.events) / r.wall.Seconds()
			t.Logf("%-7d %9.0f %6.2f %8v | %9.0f / %6.0f / %6.0f        | %8.0f%% | %9.2f | %13.1f | %.0f%%",
				r.workers, rate, rate/base, r.wall.Round(time.Millisecond), per(r.workerCPU), per(r.serverCPU), per(r.loaderCPU),
				100*busy, float64(conflicts)/float64(r.events), float64(distinct)/float64(max(batches, 1)),
				100*float64(forwarded)/float64(max(distinct, 1)))
		}
	}
}

// scaleRun runs TestScale's load once, on a world of its own, with k
// workers and transfers between the first accounts accounts.
func scaleRun(t *testing.T, server *proc, url, world string, k, accounts int) scaleRow {
	c := connect(t, url, world, 1)
	var ws []*proc
	for i := range k {
		ws = append(ws, worker(t, url, world, "w"+strconv.Itoa(i)))
	}
	settled(t, ws, time.Minute)
	l := newLoader(c, *scaleSessions, accounts)
	rounds := max(*scaleEvents / *scaleSessions, 1)
	cpu := func() (workers, srv time.Duration) {
		for _, w := range ws {
			workers += w.cpu()
		}
		return workers, server.cpu()
	}
	w0, s0 := cpu()
	l0 := selfCPU()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	for range rounds {
		if err := l.round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	total := l.total()
	committed := func() int {
		n := 0
		for _, w := range ws {
			if st, ok := w.lastStats(); ok {
				n += st.counters["committed"]
			}
		}
		return n
	}
	natstest.Eventually(t, 5*time.Minute, func() bool { return committed() >= total }, "%d events handled", total)
	wall := time.Since(start)
	w1, s1 := cpu()
	r := scaleRow{workers: k, events: total, wall: wall, workerCPU: w1 - w0, serverCPU: s1 - s0, loaderCPU: selfCPU() - l0}
	for _, w := range ws {
		w.stop(10 * time.Second)
		st, _ := w.lastStats()
		r.final = append(r.final, st)
	}
	l.check(t)
	if k > 1 {
		for i, st := range r.final {
			if n := st.counters["committed"]; n < total/(5*k) {
				t.Errorf("%d workers: worker %d handled %d of %d events: the load was not shared", k, i, n, total)
			}
		}
	}
	return r
}

// TestKillWorker is acceptance 2: three worker processes under a steady
// load; one, the commit leader, is killed with SIGKILL. Afterwards the money is whole, every
// accepted event was applied exactly once and every session's events in
// order; the test reports how long after the kill each of the dead
// worker's partitions made progress again (the failover time).
func TestKillWorker(t *testing.T) {
	_, url := natsNode(t)
	c := connect(t, url, "kill", 1)
	ws := []*proc{worker(t, url, "kill", "w0"), worker(t, url, "kill", "w1"), worker(t, url, "kill", "w2")}
	settled(t, ws, time.Minute)
	const sessions, rounds, perSecond = 200, 60, 10 // 12,000 events over about 6 s
	l := newLoader(c, sessions, 1000)
	l.region = func(session string, seq int) string { return "r" + strconv.Itoa(seq/10%4) } // sessions move between regions
	// The victim is the commit leader (the first by name): the others'
	// commits go through it.
	victim := ws[0]
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var killed time.Time
	var victimParts []int
	var progress chan map[int]time.Time
	pace := time.NewTicker(time.Second / perSecond)
	defer pace.Stop()
	for r := range rounds {
		if r == rounds/3 {
			st, _ := victim.lastStats()
			victimParts = st.partitions
			before := partitionEpochs(ctx, t, c.js, c.w.Stream())
			victim.kill()
			killed = time.Now()
			progress = make(chan map[int]time.Time, 1)
			go func() { progress <- watchProgress(ctx, c.js, c.w.Stream(), victimParts, before) }()
		}
		if err := l.round(ctx); err != nil {
			t.Fatal(err)
		}
		<-pace.C
	}
	l.waitApplied(t, 2*time.Minute)
	r := l.check(t)
	got := <-progress
	var worst time.Duration
	var each []string
	for _, p := range victimParts {
		at, ok := got[p]
		if !ok {
			t.Errorf("partition %d of the killed worker made no progress", p)
			continue
		}
		d := at.Sub(killed)
		worst = max(worst, d)
		each = append(each, fmt.Sprintf("p%d %v", p, d.Round(10*time.Millisecond)))
	}
	t.Logf("%d events on %d sessions (moving between 4 regions), %d publish retries; killed w0, the commit leader (partitions %v), with SIGKILL",
		r.Applied, sessions, l.retries, victimParts)
	t.Logf("failover (kill to the first event acknowledged by the new owner; lease 3 s): worst %v; %s", worst.Round(10*time.Millisecond), strings.Join(each, ", "))
	for _, w := range []*proc{ws[1], ws[2]} {
		w.stop(10 * time.Second)
		st, _ := w.lastStats()
		t.Logf("%s: committed %d, replayed events found already applied %d (acknowledged past the ack floor, or committed and not acknowledged, by the killed worker), partitions taken %d",
			w.name, st.counters["committed"], st.counters["duplicates"], st.counters["acquired"])
	}
	if worst > 15*time.Second {
		t.Errorf("failover took %v, want a few seconds", worst)
	}
}

// partitionEpochs returns the highest epoch of each partition's consumers.
func partitionEpochs(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) map[int]uint64 {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]uint64{}
	for ci := range s.ListConsumers(ctx).Info() {
		if p, e, ok := parseConsumer(ci.Name); ok && e > out[p] {
			out[p] = e
		}
	}
	return out
}

// parseConsumer parses the name of a partition's consumer.
func parseConsumer(name string) (p int, e uint64, ok bool) {
	return handlers.ParseConsumerName("workers", name)
}

// watchProgress polls the partitions' consumers and returns when each of
// parts first had an event acknowledged through a consumer of a later
// epoch than before (a new owner's).
func watchProgress(ctx context.Context, js jetstream.JetStream, stream string, parts []int, before map[int]uint64) map[int]time.Time {
	out := map[int]time.Time{}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return out
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(out) < len(parts) {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		for ci := range s.ListConsumers(lctx).Info() {
			p, e, ok := parseConsumer(ci.Name)
			if !ok || e <= before[p] || !slices.Contains(parts, p) {
				continue
			}
			if _, done := out[p]; !done && ci.AckFloor.Stream >= ci.Config.OptStartSeq && ci.AckFloor.Stream > 0 {
				out[p] = time.Now()
			}
		}
		cancel()
	}
	return out
}

// TestKillLeader is acceptance 3: three NATS nodes (processes) as a
// cluster, the world replicated on all three, two worker processes, a
// steady load; the node leading the world's stream is killed with SIGKILL.
// Afterwards nothing committed is lost (every accepted event applied once,
// in order, the money whole: a commit acknowledged to its task and then
// lost would show as a session missing an event or out of order), and
// the test reports how long the workers made no progress.
func TestKillLeader(t *testing.T) {
	nodes, urls := natsCluster(t)
	c := connect(t, urls, "lead", 3)
	ws := []*proc{worker(t, urls, "lead", "w0", "-replicas", "3"), worker(t, urls, "lead", "w1", "-replicas", "3")}
	settled(t, ws, 2*time.Minute)
	const sessions, rounds, perSecond = 200, 80, 10 // 16,000 events over about 8 s
	l := newLoader(c, sessions, 1000)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	var killed time.Time
	var leader string
	pace := time.NewTicker(time.Second / perSecond)
	defer pace.Stop()
	for r := range rounds {
		if r == rounds/4 {
			s, err := c.js.Stream(ctx, c.w.Stream())
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil || info.Cluster == nil {
				t.Fatalf("stream info: %v", err)
			}
			leader = info.Cluster.Leader
			i := slices.IndexFunc(nodes, func(n *proc) bool { return n.name == leader })
			if i < 0 {
				t.Fatalf("leader %q is none of the nodes", leader)
			}
			nodes[i].kill()
			killed = time.Now()
		}
		if err := l.round(ctx); err != nil {
			t.Fatal(err)
		}
		<-pace.C
	}
	loaded := time.Now()
	l.waitApplied(t, 3*time.Minute)
	r := l.check(t)
	s, err := c.js.Stream(ctx, c.w.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pause, at := longestPause(ws, killed.Add(-time.Second), loaded)
	t.Logf("%d events on %d sessions, %d publish retries; killed the stream leader %s; new leader %s",
		r.Applied, sessions, l.retries, leader, info.Cluster.Leader)
	t.Logf("longest time without a commit from %v before the kill to the end of the load: %v, from %v after the kill",
		time.Second, pause.Round(10*time.Millisecond), at.Sub(killed).Round(10*time.Millisecond))
	for _, w := range ws {
		w.stop(10 * time.Second)
		st, _ := w.lastStats()
		t.Logf("%s: committed %d, already applied %d, conflicts %d, errors %d, partitions taken %d lost %d",
			w.name, st.counters["committed"], st.counters["duplicates"], st.counters["conflicts"], st.counters["errors"],
			st.counters["acquired"], st.counters["lost"])
	}
}

// longestPause returns the longest interval in [from, to] during which the
// workers' total of committed events did not grow, as their stats lines
// (every 100 ms) tell, and when it began.
func longestPause(ws []*proc, from, to time.Time) (time.Duration, time.Time) {
	type point struct {
		at time.Time
		w  int
		n  int
	}
	var pts []point
	for i, w := range ws {
		for _, st := range w.allStats() {
			pts = append(pts, point{st.at, i, st.counters["committed"]})
		}
	}
	slices.SortFunc(pts, func(a, b point) int { return a.at.Compare(b.at) })
	last := make([]int, len(ws))
	total, lastGrowth := 0, from
	var worst time.Duration
	var worstAt time.Time
	for _, p := range pts {
		total += p.n - last[p.w]
		grew := p.n > last[p.w]
		last[p.w] = p.n
		if p.at.Before(from) || p.at.After(to) || !grew {
			continue
		}
		if d := p.at.Sub(lastGrowth); d > worst {
			worst, worstAt = d, lastGrowth
		}
		lastGrowth = p.at
	}
	_ = total
	return worst, worstAt
}
