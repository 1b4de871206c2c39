package edge_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
)

// The process benchmarks keep their clients in a second process, so that
// a CPU profile or a memory figure of the test process is the edge's (and
// the embedded NATS server's and workers'), not the clients'. The test
// binary re-executes itself in the client role: TestMain sees clientRole
// in its environment and runs that instead of the tests. The parent talks
// to it over its stdin and stdout, one command and one answer a line; the
// client process ends when its stdin does.

// clientRole is the environment variable that makes the test binary a
// client process; clientArgs carries its arguments.
const (
	clientRole = "STARBUS_EDGE_BENCH_CLIENT"
	clientArgs = "STARBUS_EDGE_BENCH_ARGS"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(clientRole); role != "" {
		if err := runClients(role, strings.Fields(os.Getenv(clientArgs)), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "client process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// clientProcess is a running client process, seen from the parent.
type clientProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startClients starts a client process in role; it is stopped (its stdin
// closed, then killed if it lingers) when the benchmark ends.
func startClients(tb testing.TB, role string, args ...string) *clientProcess {
	tb.Helper()
	raiseFileLimit(tb)
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), clientRole+"="+role, clientArgs+"="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		in.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	return &clientProcess{cmd: cmd, in: in, out: sc}
}

// ask sends a command and returns the fields of the answer.
func (p *clientProcess) ask(tb testing.TB, command string) []string {
	tb.Helper()
	if _, err := fmt.Fprintln(p.in, command); err != nil {
		tb.Fatalf("client process: %s: %v", command, err)
	}
	return p.line(tb)
}

// line returns the fields of the process's next line.
func (p *clientProcess) line(tb testing.TB) []string {
	tb.Helper()
	if !p.out.Scan() {
		tb.Fatalf("client process: no answer (%v)", p.out.Err())
	}
	return strings.Fields(p.out.Text())
}

// raiseFileLimit lets the process (and the client process, which inherits
// it) hold tens of thousands of sockets.
func raiseFileLimit(tb testing.TB) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	const want = 1 << 16
	if lim.Cur >= want {
		return
	}
	raised := lim
	raised.Cur, raised.Max = want, max(lim.Max, want)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) != nil {
		lim.Cur = lim.Max // not allowed to raise the hard limit: up to it
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// runClients is the client process: it answers the parent's commands on
// in with a line each on out, until in ends.
func runClients(role string, args []string, in io.Reader, out io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("want addr and count, got %q", args)
	}
	addr := args[0]
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	conns, ids, err := loginRaw(addr, role, n)
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	answer := func(format string, args ...any) error {
		fmt.Fprintf(w, format+"\n", args...)
		return w.Flush()
	}
	sc := bufio.NewScanner(in)
	switch role {
	case "idle":
		// Each login earns a welcome from the game's workers: once every
		// client has it, the world has nothing more to do for them.
		for _, c := range conns {
			if err := awaitMessage(c); err != nil {
				return err
			}
		}
		if err := answer("ready %d", len(conns)); err != nil {
			return err
		}
		for sc.Scan() { // until the parent is done
		}
		return nil
	case "fanout":
		if err := answer("sessions %s", strings.Join(ids, " ")); err != nil {
			return err
		}
		r := &receivers{}
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() { r.read(c) })
		}
		defer func() { // the readers end with their connections
			for _, c := range conns {
				c.close()
			}
			wg.Wait()
		}()
		for sc.Scan() {
			cmd := strings.Fields(sc.Text())
			var err error
			switch {
			case len(cmd) == 1 && cmd[0] == "joined":
				err = answer("%d", r.joined.Load())
			case len(cmd) == 2 && cmd[0] == "phase":
				k, _ := strconv.Atoi(cmd[1])
				r.reset(uint32(k))
				err = answer("ok")
			case len(cmd) == 1 && cmd[0] == "stats":
				err = answer("%d %d %d %d", r.got.Load(), r.last.Load(), r.lat.quantile(0.50), r.lat.quantile(0.99))
			default:
				err = answer("unknown %q", sc.Text())
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

// clientConn is a logged-in client connection of the client process: TCP
// (nc, r) or WebSocket (ws).
type clientConn struct {
	nc net.Conn
	r  *bufio.Reader
	ws *websocket.Conn
}

// readFrame reads the edge's next frame.
func (c clientConn) readFrame() (wire.Frame, error) {
	if c.ws == nil {
		return wire.ReadFrame(c.r, 1<<20)
	}
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			return wire.Frame{}, err
		}
		if typ == websocket.MessageBinary && len(b) > 0 {
			return wire.Frame{Op: b[0], Body: b[1:]}, nil
		}
	}
}

func (c clientConn) close() {
	if c.ws != nil {
		_ = c.ws.CloseNow()
		return
	}
	c.nc.Close()
}

// live reports whether c holds a connection.
func (c clientConn) live() bool { return c.nc != nil || c.ws != nil }

// loginRaw logs n clients in to addr (host:port for TCP, a ws:// URL for
// WebSocket), a few at a time, and returns their connections and session
// ids.
func loginRaw(addr, prefix string, n int) ([]clientConn, []string, error) {
	conns := make([]clientConn, n)
	ids := make([]string, n)
	next := atomic.Int64{}
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, id, err := loginOne(addr, fmt.Sprintf("%s%d", prefix, i))
				if err != nil {
					select {
					case errs <- fmt.Errorf("login %d: %w", i, err):
					default:
					}
					next.Store(int64(n))
					return
				}
				conns[i], ids[i] = c, id
			}
		})
	}
	wg.Wait()
	live := conns[:0]
	for _, c := range conns {
		if c.live() {
			live = append(live, c)
		}
	}
	select {
	case err := <-errs:
		return live, nil, err
	default:
		return conns, ids, nil
	}
}

func loginOne(addr, name string) (clientConn, string, error) {
	login := wire.Encode(wire.Login{Version: wire.Version1, Name: name, Password: "pw"})
	if strings.HasPrefix(addr, "ws://") {
		return loginWebSocket(addr, login)
	}
	nc, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return clientConn{}, "", err
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Write(wire.AppendFrame(nil, login)); err != nil {
		nc.Close()
		return clientConn{}, "", err
	}
	r := bufio.NewReaderSize(nc, 4096)
	for {
		f, err := wire.ReadFrame(r, 1<<20)
		if err != nil {
			nc.Close()
			return clientConn{}, "", err
		}
		if f.Op != wire.OpLoginOK {
			continue
		}
		v, err := wire.Decode(f)
		if err != nil {
			nc.Close()
			return clientConn{}, "", err
		}
		_ = nc.SetDeadline(time.Time{})
		return clientConn{nc: nc, r: r}, v.(wire.LoginOK).Session, nil
	}
}

// loginWebSocket logs in over the WebSocket at url with the LOGIN frame
// login.
func loginWebSocket(url string, login wire.Frame) (clientConn, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wire.WebSocketSubprotocol}})
	if err != nil {
		return clientConn{}, "", err
	}
	ws.SetReadLimit(1 << 20)
	c := clientConn{ws: ws}
	if err := ws.Write(ctx, websocket.MessageBinary, wire.AppendFrame(nil, login)[4:]); err != nil {
		c.close()
		return clientConn{}, "", err
	}
	for {
		f, err := c.readFrame()
		if err != nil {
			c.close()
			return clientConn{}, "", err
		}
		if f.Op != wire.OpLoginOK {
			continue
		}
		v, err := wire.Decode(f)
		if err != nil {
			c.close()
			return clientConn{}, "", err
		}
		return c, v.(wire.LoginOK).Session, nil
	}
}

// awaitMessage reads c until a MESSAGE.
func awaitMessage(c clientConn) error {
	if c.nc != nil {
		_ = c.nc.SetReadDeadline(time.Now().Add(time.Minute))
		defer c.nc.SetReadDeadline(time.Time{})
	}
	for {
		f, err := c.readFrame()
		if err != nil {
			return err
		}
		if f.Op == wire.OpMessage {
			return nil
		}
	}
}

// receivers counts what the client process's connections receive in the
// current phase: channel messages whose payload ends with the phase (u32)
// and the time they were sent (u64, Unix ns; the processes share a clock).
type receivers struct {
	phase  atomic.Uint32
	joined atomic.Int64
	got    atomic.Int64
	last   atomic.Int64 // Unix ns of the last receipt
	lat    histogram
}

func (r *receivers) reset(phase uint32) {
	r.phase.Store(phase)
	r.got.Store(0)
	r.last.Store(0)
	r.lat.reset()
}

func (r *receivers) read(c clientConn) {
	for {
		f, err := c.readFrame()
		if err != nil {
			return
		}
		switch f.Op {
		case wire.OpChannelJoin:
			r.joined.Add(1)
		case wire.OpChannelMessage:
			p := f.Body
			if len(p) < 12 || binary.BigEndian.Uint32(p[len(p)-12:]) != r.phase.Load() {
				continue
			}
			now := time.Now().UnixNano()
			r.lat.add(time.Duration(now - int64(binary.BigEndian.Uint64(p[len(p)-8:]))))
			r.got.Add(1)
			if now > r.last.Load() {
				r.last.Store(now) // racy max: close enough for a rate
			}
		}
	}
}

// histogram counts latencies in buckets of about 1.5%, without locks.
type histogram struct {
	b [4096]atomic.Int64
}

// bucket maps microseconds to a bucket: below 128 one each, then 64 per
// power of two.
func bucket(us uint64) int {
	if us < 128 {
		return int(us)
	}
	e := bits.Len64(us) - 7
	return min(e*64+int(us>>e), 4095)
}

// bucketValue is the smallest value (µs) of bucket i.
func bucketValue(i int) uint64 {
	if i < 128 {
		return uint64(i)
	}
	e := i/64 - 1
	return uint64(i-e*64) << e
}

func (h *histogram) add(d time.Duration) { h.b[bucket(uint64(max(d, 0)/time.Microsecond))].Add(1) }

func (h *histogram) reset() {
	for i := range h.b {
		h.b[i].Store(0)
	}
}

// quantile returns the q quantile in µs.
func (h *histogram) quantile(q float64) uint64 {
	var total int64
	for i := range h.b {
		total += h.b[i].Load()
	}
	want := int64(q * float64(total))
	var seen int64
	for i := range h.b {
		if seen += h.b[i].Load(); seen > want {
			return bucketValue(i)
		}
	}
	return 0
}

// BenchmarkFanoutProcess measures channel fan-out from one edge to 1,000
// clients in another process, over TCP or WebSocket: a sender stores "say"
// events at a paced demand, in deliveries per second (messages per second
// times members); each becomes a task that sends its payload to a channel,
// and the edge delivers it to every member's socket. The client process
// timestamps each receipt; the payload carries the send time. Each demand
// runs for 3 s, then the clock runs until the last delivery (or 1 s
// without one).
//
// Sub-benchmarks: <channels>x<members>/<transport>/<delivery>/demand=<k>k,
// transport tcp or websocket, reporting deliveries/s received, sent/s (the
// demand met by the sender: a world that cannot take its events slows it),
// p50/p99 latency from send to receipt, and lost-% on the best-effort path;
// then .../saturation, the highest deliveries/s received at any demand.
//
// The machine is shared: compare rows of one run, not figures across runs.
//
//	go test -run '^$' -bench BenchmarkFanoutProcess -benchtime 1x ./edge/
//
// With -short it checks itself in seconds instead, at small sizes (1x20
// and 4x5, one demand, 0.5 s): its figures then mean nothing.
func BenchmarkFanoutProcess(b *testing.B) {
	phase := 3 * time.Second
	demands := []int{40_000, 80_000, 120_000, 200_000}
	type fanoutShape struct{ channels, members int }
	shapes := []fanoutShape{{1, 1000}, {100, 10}}
	if testing.Short() {
		phase, demands, shapes = 500*time.Millisecond, []int{2_000}, []fanoutShape{{1, 20}, {4, 5}}
	}
	for _, shape := range shapes {
		for _, transport := range []string{"tcp", "websocket"} {
			for _, d := range []handlers.Delivery{handlers.Reliable, handlers.BestEffort} {
				name := "reliable"
				if d == handlers.BestEffort {
					name = "best-effort"
				}
				b.Run(fmt.Sprintf("%dx%d/%s/%s", shape.channels, shape.members, transport, name), func(b *testing.B) {
					fp := startFanoutProcess(b, shape.channels, shape.members, transport, d)
					best := 0.0
					for i, demand := range demands {
						b.Run(fmt.Sprintf("demand=%dk", demand/1000), func(b *testing.B) {
							got := fp.run(b, uint32(i+1), demand, phase, d == handlers.BestEffort)
							best = max(best, got)
						})
					}
					b.Run("saturation", func(b *testing.B) {
						b.ReportMetric(best, "deliveries/s")
						b.ReportMetric(0, "ns/op")
					})
				})
			}
		}
	}
}

// fanoutProcess is a world with an edge, and a client process whose
// clients, over transport (tcp or websocket), are members of its channels.
type fanoutProcess struct {
	w                 *world
	clients           *clientProcess
	channels, members int
}

func startFanoutProcess(b *testing.B, channels, members int, transport string, d handlers.Delivery) *fanoutProcess {
	b.Helper()
	w := startWorldWith(b, fanoutGame(d), func(s *edge.Server) {
		s.Auth = edge.AuthFunc(acceptAll)
	})
	addr := w.addr
	if transport == "websocket" {
		addr = serveWebSocket(b, w.edge, edge.WebSocketOptions{}, nil)
	}
	n := channels * members
	p := startClients(b, "fanout", addr, strconv.Itoa(n))
	ids := p.line(b) // once every client has logged in
	if len(ids) != n+1 || ids[0] != "sessions" {
		b.Fatalf("client process: got %d fields, want sessions and %d ids", len(ids), n)
	}
	ids = ids[1:]
	fp := &fanoutProcess{w: w, clients: p, channels: channels, members: members}
	for ch := range channels {
		for lo := 0; lo < members; lo += 100 {
			fp.publish(b, "setup", "join", fmt.Appendf(nil, "c%d\n%s", ch, strings.Join(ids[ch*members+lo:ch*members+min(lo+100, members)], " ")))
		}
	}
	natstest.Eventually(b, time.Minute, func() bool {
		a := p.ask(b, "joined")
		return len(a) == 1 && a[0] == strconv.Itoa(n)
	}, "every member told of its join")
	return fp
}

// publish stores an event for the workers, waiting for room among the
// publishes in flight. It reports false if there was none in time.
func (fp *fanoutProcess) publish(tb testing.TB, part, typ string, data []byte) bool {
	m := nats.NewMsg(mustEvent(tb, fp.w.env.World, "r0", part))
	m.Header.Set(bus.HeaderType, typ)
	m.Data = data
	_, err := fp.w.env.JS.PublishMsgAsync(m)
	if errors.Is(err, nats.ErrTimeout) || err != nil && strings.Contains(err.Error(), "stalled") {
		return false
	}
	if err != nil {
		tb.Fatal(err)
	}
	return true
}

// run runs one phase at demand deliveries/s and reports it; it returns the
// deliveries/s received.
func (fp *fanoutProcess) run(b *testing.B, phase uint32, demand int, length time.Duration, lossy bool) float64 {
	if a := fp.clients.ask(b, fmt.Sprintf("phase %d", phase)); len(a) != 1 || a[0] != "ok" {
		b.Fatalf("client process: phase: %q", a)
	}
	perSec := demand / fp.members // messages per second, over all channels
	every := time.Second / time.Duration(perSec)
	total := int(length / every)
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for i := range total {
		time.Sleep(time.Until(start.Add(time.Duration(i) * every))) // pacing the load, not waiting on a result
		payload := binary.BigEndian.AppendUint32(fmt.Appendf(nil, "c%d\n", i%fp.channels), phase)
		payload = binary.BigEndian.AppendUint64(payload, uint64(time.Now().UnixNano()))
		if fp.publish(b, fmt.Sprintf("s%d", i%64), "say", payload) {
			sent++
		}
	}
	sendEnd := time.Now()
	want := int64(sent * fp.members)
	var got, last, p50, p99 int64
	lastChange, seen := time.Now(), int64(-1)
	natstest.Eventually(b, time.Minute, func() bool {
		a := fp.clients.ask(b, "stats")
		if len(a) != 4 {
			b.Fatalf("client process: stats: %q", a)
		}
		got, _ = strconv.ParseInt(a[0], 10, 64)
		last, _ = strconv.ParseInt(a[1], 10, 64)
		p50, _ = strconv.ParseInt(a[2], 10, 64)
		p99, _ = strconv.ParseInt(a[3], 10, 64)
		if got != seen {
			seen, lastChange = got, time.Now()
		}
		idle := time.Since(lastChange)
		return got >= want || lossy && idle > time.Second || idle > 10*time.Second
	}, "deliveries")
	b.StopTimer()
	if !lossy && got < want {
		b.Errorf("%d of %d deliveries", got, want)
	}
	end := time.Unix(0, last)
	if end.Before(sendEnd) {
		end = sendEnd
	}
	rate := float64(got) / end.Sub(start).Seconds()
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(float64(sent*fp.members)/sendEnd.Sub(start).Seconds(), "sent/s")
	b.ReportMetric(float64(p50)/1000, "p50-ms")
	b.ReportMetric(float64(p99)/1000, "p99-ms")
	if lossy {
		b.ReportMetric(100*float64(want-got)/float64(max(want, 1)), "lost-%")
	}
	b.ReportMetric(0, "ns/op")
	return rate
}

// idleHeapProfileEnv names a file for a heap profile of
// BenchmarkIdleSessions taken while the sessions are open (-memprofile
// writes its profile after they are gone).
const idleHeapProfileEnv = "STARBUS_IDLE_HEAPPROFILE"

func writeHeapProfile(tb testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

// idleSessionsEnv overrides the number of sessions of
// BenchmarkIdleSessions (default 20,000).
const idleSessionsEnv = "STARBUS_IDLE_SESSIONS"

// BenchmarkIdleSessions reports the memory one idle logged-in session
// costs the edge's process (its connection, goroutines and buffers, its
// session, and the NATS server's and workers' share: in `starbus dev` they
// are one process), with the clients in another process. The number of
// sessions is STARBUS_IDLE_SESSIONS (default 20,000); b.N is not used, so
// run it once:
//
//	STARBUS_IDLE_SESSIONS=5000 go test -run '^$' -bench BenchmarkIdleSessions -benchtime 1x ./edge/
//
// It reports, after garbage collection and returning freed memory to the
// system, the growth per session of the process's resident set
// (rss-bytes/session) and of the Go heap in use plus goroutine stacks
// (heap+stack-bytes/session, of which stack-bytes/session).
func BenchmarkIdleSessions(b *testing.B) {
	n := 20_000
	if v := os.Getenv(idleSessionsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q: not a count", idleSessionsEnv, v)
		}
	}
	raiseFileLimit(b)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(n)+1024 > lim.Cur {
		b.Fatalf("%d sessions need as many sockets, and RLIMIT_NOFILE is %d (its hard limit could not be raised): set %s lower", n, lim.Cur, idleSessionsEnv)
	}
	b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
		w := startWorld(b, func(s *edge.Server) { s.Auth = edge.AuthFunc(acceptAll) })
		before := measureMemory()
		p := startClients(b, "idle", w.addr, strconv.Itoa(n))
		if a := p.line(b); len(a) != 2 || a[0] != "ready" || a[1] != strconv.Itoa(n) {
			b.Fatalf("client process: %q", a)
		}
		if got := w.edge.Sessions(); got != n {
			b.Fatalf("edge holds %d sessions, want %d", got, n)
		}
		after := measureMemory()
		if path := os.Getenv(idleHeapProfileEnv); path != "" {
			writeHeapProfile(b, path)
		}
		b.ReportMetric(float64(after.rss-before.rss)/float64(n), "rss-bytes/session")
		b.ReportMetric(float64(after.heap+after.stack-before.heap-before.stack)/float64(n), "heap+stack-bytes/session")
		b.ReportMetric(float64(after.stack-before.stack)/float64(n), "stack-bytes/session")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/session")
		b.ReportMetric(0, "ns/op")
	})
}

// memory is what the process holds.
type memory struct {
	rss, heap, stack uint64
	goroutines       int
}

func measureMemory() memory {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memory{heap: ms.HeapInuse, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			m.rss = pages * uint64(os.Getpagesize())
		}
	}
	return m
}
