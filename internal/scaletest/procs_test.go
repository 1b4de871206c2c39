package scaletest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/internal/bank"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// bin is the starbus binary, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "starbus-scaletest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "starbus")
	build := exec.Command("go", "build", "-o", bin, "./cmd/starbus")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "GOFLAGS=") // no -race in the processes under test
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is natstest's buffer for a command's output.
type syncBuffer = natstest.SyncBuffer

// proc is a starbus process.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  syncBuffer // stdout and stderr
	done chan struct{}
	err  error // set before done is closed
}

// start runs the starbus binary with args; t.Cleanup stops it.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(withoutStats(p.out.String()), 60))
		}
	})
	return p
}

// stop asks the process to end (SIGTERM) and kills it if it has not
// within grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// kill ends the process at once (SIGKILL) and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// wait waits for the process's output to match re, failing the test if it
// does not within d or if the process exits first.
func (p *proc) wait(t *testing.T, re *regexp.Regexp, d time.Duration) []string {
	t.Helper()
	var m []string
	natstest.Eventually(t, d, func() bool {
		if m = re.FindStringSubmatch(p.out.String()); m != nil {
			return true
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before %q:\n%s", p.name, p.err, re, tail(p.out.String(), 30))
		default:
		}
		return false
	}, "%s: %q in its output:\n%s", p.name, re, tail(p.out.String(), 30))
	return m
}

// cpu returns the CPU time the process has used so far (Linux only; 0
// elsewhere).
func (p *proc) cpu() time.Duration {
	if p.cmd.ProcessState != nil {
		return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command (which is in parentheses and may hold
	// spaces): state is field 3, utime and stime are fields 14 and 15, in
	// clock ticks of 1/100 s on Linux.
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// withoutStats drops the stats lines but the last.
func withoutStats(s string) string {
	var keep []string
	last := ""
	for l := range strings.SplitSeq(s, "\n") {
		if strings.HasPrefix(l, "stats ") {
			last = l
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(append(keep, last), "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n TCP ports free on loopback now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

var readyRe = regexp.MustCompile(`node \S+ ready`)

// natsNode starts one `starbus nats` node alone and returns its URL.
func natsNode(t *testing.T) (*proc, string) {
	t.Helper()
	port := freePorts(t, 1)[0]
	p := start(t, "nats", "nats", "-data", t.TempDir(), "-port", strconv.Itoa(port), "-name", "n0")
	p.wait(t, readyRe, time.Minute)
	return p, "nats://127.0.0.1:" + strconv.Itoa(port)
}

// natsCluster starts three `starbus nats` nodes as a cluster and returns
// them (named n0, n1, n2) and their URLs, comma-separated.
func natsCluster(t *testing.T) ([]*proc, string) {
	t.Helper()
	ports := freePorts(t, 6)
	var routes, urls []string
	for i := range 3 {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(ports[3+i]))
		urls = append(urls, "nats://127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	var nodes []*proc
	for i := range 3 {
		nodes = append(nodes, start(t, "n"+strconv.Itoa(i), "nats", "-data", t.TempDir(), "-port", strconv.Itoa(ports[i]),
			"-name", "n"+strconv.Itoa(i), "-cluster", strings.TrimPrefix(routes[i], "nats://"), "-routes", strings.Join(routes, ",")))
	}
	for _, n := range nodes {
		n.wait(t, readyRe, time.Minute)
	}
	return nodes, strings.Join(urls, ",")
}

// worker starts `starbus worker -game bank` as member name.
func worker(t *testing.T, url, world, name string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"worker", "-game", "bank", "-nats", url, "-world", world, "-member", name,
		"-stats", "100ms", "-log", "info"}, extra...)
	return start(t, name, args...)
}

// stats is one of a worker's stats lines.
type stats struct {
	at         time.Time
	counters   map[string]int
	partitions []int
}

var statsRe = regexp.MustCompile(`^(?:stats|final) t=(\d+) (.*) partitions=([\d,]*)$`)

// lastStats returns the worker's latest stats line, if any. It reads the
// output from its end: the tests poll it while the output grows.
func (p *proc) lastStats() (stats, bool) {
	out := strings.TrimRight(p.out.String(), "\n")
	for out != "" {
		i := strings.LastIndexByte(out, '\n')
		if st, ok := parseStats(out[i+1:]); ok {
			return st, true
		}
		if i < 0 {
			break
		}
		out = out[:i]
	}
	return stats{}, false
}

// allStats returns every stats line the worker has printed.
func (p *proc) allStats() []stats {
	var out []stats
	for line := range strings.SplitSeq(p.out.String(), "\n") {
		if st, ok := parseStats(line); ok {
			out = append(out, st)
		}
	}
	return out
}

// parseStats parses one stats line.
func parseStats(line string) (stats, bool) {
	m := statsRe.FindStringSubmatch(line)
	if m == nil {
		return stats{}, false
	}
	ms, _ := strconv.ParseInt(m[1], 10, 64)
	st := stats{at: time.UnixMilli(ms), counters: map[string]int{}}
	for kv := range strings.FieldsSeq(m[2]) {
		k, v, _ := strings.Cut(kv, "=")
		st.counters[k], _ = strconv.Atoi(v)
	}
	for f := range strings.SplitSeq(m[3], ",") {
		if n, err := strconv.Atoi(f); err == nil {
			st.partitions = append(st.partitions, n)
		}
	}
	return st, true
}

// settled waits until the workers' latest stats show every partition
// owned, each by one of them, and each worker owning at least one.
func settled(t *testing.T, ws []*proc, within time.Duration) {
	t.Helper()
	natstest.Eventually(t, within, func() bool {
		owned := map[int]bool{}
		for _, w := range ws {
			st, ok := w.lastStats()
			if !ok || len(st.partitions) == 0 {
				return false
			}
			for _, p := range st.partitions {
				if owned[p] {
					return false
				}
				owned[p] = true
			}
		}
		return len(owned) == bus.Partitions
	}, "the workers share the partitions")
}

// client is the test's own connection to the world: the loader and the
// checker.
type client struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	w     bus.World
	store *kv.Store
}

func connect(t *testing.T, url, world string, replicas int) *client {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c := &client{nc: nc}
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if c.w, err = bus.NewWorld(world); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := bus.Provision(ctx, c.js, c.w, bus.StreamConfig{Replicas: replicas}); err != nil {
		t.Fatal(err)
	}
	// The test's store only checks at the end: no cache, so that it does
	// not tail every state write during the load as a worker does.
	if c.store, err = kv.Open(ctx, c.js, c.w, kv.Options{CacheSize: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.store.Close() })
	return c
}

// loader publishes bank transfers on its sessions as an edge would: each
// session's events numbered from 1, one event of a session in flight at a
// time (so a retried publish cannot overtake the next), retried with the
// same deduplication id until the server acknowledges it.
type loader struct {
	c        *client
	accounts int // transfers move money between the first accounts accounts
	sessions []string
	region   func(session string, seq int) string
	next     map[string]int // the next sequence number of each session
	accepted map[string]int // the last one the server acknowledged
	retries  int
}

func newLoader(c *client, sessions, accounts int) *loader {
	l := &loader{c: c, accounts: accounts, next: map[string]int{}, accepted: map[string]int{},
		region: func(string, int) string { return "r0" }}
	for i := range sessions {
		s := "s" + strconv.Itoa(i)
		l.sessions = append(l.sessions, s)
		l.next[s] = 1
	}
	return l
}

// round publishes one event on each session and waits until all are
// acknowledged.
func (l *loader) round(ctx context.Context) error {
	type pending struct {
		m *nats.Msg
		f jetstream.PubAckFuture
	}
	var ps []pending
	for _, s := range l.sessions {
		seq := l.next[s]
		m, err := bank.Event(l.c.w, l.region(s, seq), s, seq, bank.Random(l.accounts))
		if err != nil {
			return err
		}
		f, err := l.c.js.PublishMsgAsync(m)
		if err != nil {
			f = nil
		}
		ps = append(ps, pending{m, f})
	}
	// An ack lost with a node that died never comes, and an async publish
	// has no deadline of its own: give up on the round's missing acks
	// after a while, all at once, and retry them (the same id: a stored
	// copy is not stored twice). Waiting a while for each in turn took
	// minutes when a kill caught a round's 200 publishes in flight.
	giveUp := time.NewTimer(5 * time.Second)
	defer giveUp.Stop()
	expired := false
	for _, p := range ps {
		ok := false
		switch {
		case p.f == nil:
		case expired:
			select {
			case <-p.f.Ok():
				ok = true
			default:
			}
		default:
			select {
			case <-p.f.Ok():
				ok = true
			case <-p.f.Err():
			case <-giveUp.C:
				expired = true
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for !ok { // retry alone, with the same id: the server drops a copy it already has
			l.retries++
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := l.c.js.PublishMsg(pctx, p.m)
			cancel()
			if err == nil {
				ok = true
			} else if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		s := p.m.Header.Get(bus.HeaderSession)
		l.accepted[s] = l.next[s]
		l.next[s]++
	}
	return nil
}

// total returns the events accepted so far.
func (l *loader) total() int {
	n := 0
	for _, v := range l.accepted {
		n += v
	}
	return n
}

// check fails the test unless the world's state holds every accepted event
// applied once, in order, and the money whole.
func (l *loader) check(t *testing.T) bank.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := bank.Check(ctx, l.c.store, l.accepted, l.accounts)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range r.Problems {
		if i == 10 {
			t.Errorf("... and %d more", len(r.Problems)-10)
			break
		}
		t.Error(p)
	}
	if r.Applied != l.total() {
		t.Errorf("%d events applied, %d accepted", r.Applied, l.total())
	}
	return r
}

// waitApplied waits until every accepted event has been applied.
func (l *loader) waitApplied(t *testing.T, within time.Duration) {
	t.Helper()
	want := l.total()
	natstest.Eventually(t, within, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := bank.Applied(ctx, l.c.store, l.sessions)
		return err == nil && got >= want
	}, "all %d accepted events applied", want)
}

// cores returns the number of CPUs the processes share.
func cores() int { return runtime.NumCPU() }
