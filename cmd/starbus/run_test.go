package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/config"
	"github.com/starbus/starbus/edge/sgs/sgsclient"
	"github.com/starbus/starbus/internal/metricstest"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/internal/tlstest"
)

// syncBuffer is natstest's buffer for a command's output.
type syncBuffer = natstest.SyncBuffer

// TestDevAndClient runs `starbus dev`, `starbus client` and `starbus bots`
// as a new user would: dev starts within 5 s with its live map, the client
// logs in and plays the reference world, bots play it and its invariants
// hold.
func TestDevAndClient(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var devOut syncBuffer
	start := time.Now()
	devDone := make(chan error, 1)
	go func() {
		devDone <- run(ctx, []string{"dev", "-data", t.TempDir(), "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-log", "warn"}, nil, &devOut, io.Discard)
	}()
	edgeAddr := regexp.MustCompile(`edge\s+(127\.0\.0\.1:\d+)`)
	mapAddr := regexp.MustCompile(`map\s+http://(127\.0\.0\.1:\d+)/`)
	wsAddr := regexp.MustCompile(`ws\s+(ws://127\.0\.0\.1:\d+/ws)`)
	var addr, web, ws string
	natstest.Eventually(t, 30*time.Second, func() bool {
		if m := edgeAddr.FindStringSubmatch(devOut.String()); m != nil {
			addr = m[1]
		}
		if m := mapAddr.FindStringSubmatch(devOut.String()); m != nil {
			web = m[1]
		}
		if m := wsAddr.FindStringSubmatch(devOut.String()); m != nil {
			ws = m[1]
		}
		return addr != "" && web != "" && ws != ""
	}, "dev ready: %s", devOut.String())
	if ws != "ws://"+web+"/ws" {
		t.Errorf("WebSocket at %s, want /ws on the live map's address %s", ws, web)
	}
	ready := time.Since(start)
	t.Logf("starbus dev ready in %v", ready)
	if ready > 5*time.Second {
		t.Errorf("starbus dev took %v to start, want under 5 s", ready)
	}
	// Its edge and its worker share one store, and so one tail of the
	// state.
	natsURL := regexp.MustCompile(`nats\s+(nats://127\.0\.0\.1:\d+)`).FindStringSubmatch(devOut.String())
	if natsURL == nil {
		t.Fatalf("dev printed no NATS URL: %s", devOut.String())
	}
	if n := stateTails(ctx, t, natsURL[1], "demo"); n != 1 {
		t.Errorf("%d consumers tail the state of starbus dev, want 1", n)
	}

	// The client reads its input from a pipe that the test closes (which
	// logs the client out) once the replies are in.
	var out syncBuffer
	in, typed := io.Pipe()
	clientDone := make(chan error, 1)
	go func() {
		clientDone <- run(ctx, []string{"client", "-addr", addr, "-name", "ann", "-password", "pw"}, in, &out, io.Discard)
	}()
	if _, err := io.WriteString(typed, "look\nsay hello\ninv\nfly\n"); err != nil {
		t.Fatal(err)
	}
	wants := []string{"connected as ann", `"t":"welcome","n":"ann"`, `"t":"look"`, `#chat-r`, `"text":"hello"`, `"t":"inv"`, `"t":"error"`}
	natstest.Eventually(t, 30*time.Second, func() bool {
		for _, want := range wants {
			if !strings.Contains(out.String(), want) {
				return false
			}
		}
		return true
	}, "client output %q lacks one of %q", out.String(), wants)
	typed.Close()
	if err := <-clientDone; err != nil {
		t.Fatalf("client: %v\n%s", err, out.String())
	}
	// The same world over WebSocket, at /ws on the live map's address.
	playClient(ctx, t, &syncBuffer{}, "look", `"t":"look"`, "-ws", ws, "-name", "wsann", "-password", "pw")
	// A wrong password is refused.
	err := run(ctx, []string{"client", "-addr", addr, "-name", "ann", "-password", "nope"}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bad credentials") {
		t.Errorf("wrong password: %v", err)
	}

	// The live map serves the world, and the page to play it in a
	// browser, beside its WebSocket (the page's test is TestPlay in
	// examples/gridworld/livemap).
	if !strings.Contains(devOut.String(), "play    http://"+web+"/play\n") {
		t.Errorf("dev's banner has no play line:\n%s", devOut.String())
	}
	resp, err := http.Get("http://" + web + "/play")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /play: %s", resp.Status)
	}
	resp, err = http.Get("http://" + web + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	var state struct{ W, H int }
	err = json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	if err != nil || state.W != 64 {
		t.Fatalf("live map state: %+v, %v", state, err)
	}

	// Bots play, and the world's invariants hold.
	var botsOut syncBuffer
	err = run(ctx, []string{"bots", "-addr", addr, "-http", web, "-players", "20", "-duration", "2s", "-rate", "5", "-json"}, nil, &botsOut, io.Discard)
	if err != nil {
		t.Fatalf("bots: %v\n%s", err, botsOut.String())
	}
	var sum struct {
		Players       int     `json:"players"`
		ActionsPerSec float64 `json:"actions_per_sec"`
		DeliveriesSec float64 `json:"deliveries_per_sec"`
		P50           float64 `json:"p50_ms"`
		P99           float64 `json:"p99_ms"`
		Errors        uint64  `json:"errors"`
		InvariantsOK  bool    `json:"invariants_ok"`
	}
	if err := json.Unmarshal([]byte(botsOut.String()), &sum); err != nil {
		t.Fatalf("bots -json: %v\n%s", err, botsOut.String())
	}
	// Every reply is a delivery, and so are the positions the players see.
	if sum.Players != 20 || sum.ActionsPerSec <= 0 || sum.DeliveriesSec < sum.ActionsPerSec || sum.P99 < sum.P50 || sum.Errors != 0 || !sum.InvariantsOK {
		t.Errorf("bots summary: %s", botsOut.String())
	}

	// starbus info describes the world's stream: after every player has
	// logged out, no session outbox is left that nothing removes; those
	// left go by their TTL.
	var infoOut syncBuffer
	if err := run(ctx, []string{"info", "-nats", natsURL[1]}, nil, &infoOut, io.Discard); err != nil {
		t.Fatalf("info: %v", err)
	}
	var info worldInfo
	if err := json.Unmarshal([]byte(infoOut.String()), &info); err != nil {
		t.Fatalf("info: %v\n%s", err, infoOut.String())
	}
	if info.Messages == 0 || info.ByKind["state"] == 0 || info.Sessions != 0 || info.Orphans != 0 || info.Expiring != info.Outboxes || info.SessionsError != "" {
		t.Errorf("info after every player logged out: %s", infoOut.String())
	}
	cancel()
	if err := <-devDone; err != nil {
		t.Fatalf("dev: %v", err)
	}
}

func TestUsageAndBadConfig(t *testing.T) {
	ctx := t.Context()
	if err := run(ctx, nil, nil, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("no command: %v", err)
	}
	if err := run(ctx, []string{"fly"}, nil, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("unknown command: %v", err)
	}
	err := run(ctx, []string{"dev", "-world", "a.b", "-data", t.TempDir()}, nil, io.Discard, io.Discard)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "world:") {
		t.Errorf("bad world: %v", err)
	}
	err = run(ctx, []string{"worker", "-http", "9090"}, nil, io.Discard, io.Discard)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "http:") {
		t.Errorf("bad -http: %v", err)
	}
	t.Setenv("STARBUS_LISTEN", "nowhere")
	err = run(ctx, []string{"edge"}, nil, io.Discard, io.Discard)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "edge.listen:") {
		t.Errorf("bad listen from the environment: %v", err)
	}
}

// TestEdgeAndWorker runs `starbus worker` and `starbus edge` as separate
// parts against an external NATS server (over TCP), and a client through
// them.
func TestEdgeAndWorker(t *testing.T) {
	env := natstest.Start(t, natstest.Options{World: "remote"})
	edgeAndWorker(t, env.Server.ClientURL(), "remote", "-http", "127.0.0.1:0")
}

// edgeAndWorker runs `starbus worker` and `starbus edge` against the NATS
// at url, and a client through them; with -http in args, it checks each
// one's /metrics.
func edgeAndWorker(t *testing.T, url, world string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p := startEdgeAndWorker(ctx, t, url, world, args, nil)
	addr := regexp.MustCompile(`edge (127\.0\.0\.1:\d+)`).FindStringSubmatch(p.banner)[1]
	p.play(ctx, t, "zed", "-addr", addr)
	// One process tails the world's state to keep a cache current, the
	// worker: an edge reads state at logins and resumes only, and keeps
	// no cache to tail for.
	if n := stateTails(ctx, t, url, world); n != 1 {
		t.Errorf("%d consumers tail the state, want 1 (the worker's)", n)
	}
	if slices.Contains(args, "-http") {
		// Each serves the metrics of what it runs: the worker its tasks,
		// the edge its logins; not the other's.
		labels := map[string]string{"world": world}
		natstest.Eventually(t, 30*time.Second, func() bool {
			wm, werr := metricstest.TryScrape(p.workerMetrics)
			em, eerr := metricstest.TryScrape(p.edgeMetrics)
			if werr != nil || eerr != nil {
				return false
			}
			committed, _ := wm.Value("starbus_runtime_tasks_committed_total", labels)
			logins, _ := em.Value("starbus_edge_logins_total", map[string]string{"world": world, "result": "ok"})
			return committed > 0 && logins == 1 && wm["starbus_edge_sessions"] == nil && em["starbus_runtime_task_duration_seconds"] == nil
		}, "worker and edge metrics")
	}
	cancel()
	p.wait(t)
}

// stateTails counts the consumers of world's stream at url that follow
// every state write.
func stateTails(ctx context.Context, t *testing.T, url, world string) int {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	w, err := bus.NewWorld(world)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, w.Stream())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for info := range st.ListConsumers(ctx).Info() {
		if info.Config.FilterSubject == w.KeyFilter() || slices.Contains(info.Config.FilterSubjects, w.KeyFilter()) {
			n++
		}
	}
	return n
}

// TestEdgeTLSAndWebSocket runs `starbus edge` with TLS and a WebSocket
// listener, and the terminal client through both: TLS over TCP, and wss.
func TestEdgeTLSAndWebSocket(t *testing.T) {
	env := natstest.Start(t, natstest.Options{World: "secure"})
	cert := tlstest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p := startEdgeAndWorker(ctx, t, env.Server.ClientURL(), "secure", nil,
		[]string{"-websocket", "127.0.0.1:0", "-tls-cert", cert.CertFile, "-tls-key", cert.KeyFile})
	m := regexp.MustCompile(`edge (127\.0\.0\.1:\d+) \(tls\), ws (wss://127\.0\.0\.1:\d+/ws)`).FindStringSubmatch(p.banner)
	if m == nil {
		t.Fatalf("edge banner %q", p.banner)
	}
	p.play(ctx, t, "tls", "-addr", m[1], "-ca", cert.CertFile)
	p.play(ctx, t, "wss", "-ws", m[2], "-ca", cert.CertFile)
	// Without trusting the certificate, the client refuses the edge.
	if err := run(ctx, []string{"client", "-addr", m[1], "-name", "eve"}, strings.NewReader(""), io.Discard, io.Discard); err == nil {
		t.Error("a client that does not trust the edge's certificate logged in")
	}
	cancel()
	p.wait(t)
}

// TestEdgeSGS runs `starbus edge -sgs`: a Darkstar client logs in to the
// reference world over SimpleSgsProtocol and is welcomed; at the end the
// edge drains (no other edge to relocate to) and stops.
func TestEdgeSGS(t *testing.T) {
	env := natstest.Start(t, natstest.Options{World: "dark"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p := startEdgeAndWorker(ctx, t, env.Server.ClientURL(), "dark", nil, []string{"-sgs", "127.0.0.1:0"})
	m := regexp.MustCompile(`, sgs (127\.0\.0\.1:\d+)`).FindStringSubmatch(p.banner)
	if m == nil {
		t.Fatalf("edge banner %q", p.banner)
	}
	c, err := sgsclient.Dial(ctx, m[1], "duke", "starbus")
	if err != nil {
		t.Fatalf("login over SimpleSgs: %v\n%s", err, p.logs.String())
	}
	defer c.Close()
	welcomed := false
	for e := range c.Events() {
		if welcomed = e.Kind == sgsclient.Message && strings.Contains(string(e.Payload), `"t":"welcome"`); welcomed {
			break
		}
	}
	if !welcomed {
		t.Fatalf("no welcome: %v\n%s", c.Err(), p.logs.String())
	}
	cancel()
	p.wait(t)
}

// edgeAndWorkerRun is a `starbus worker` and a `starbus edge` running.
type edgeAndWorkerRun struct {
	banner                     string // what the edge printed
	workerMetrics, edgeMetrics string // their /metrics URLs, with -http
	logs                       *syncBuffer
	done                       chan error
}

// startEdgeAndWorker starts `starbus worker` and `starbus edge` against the
// NATS at url, with args for both and edgeArgs for the edge, until ctx
// ends; it returns once the edge is ready (and, with -http, both serve
// their metrics).
func startEdgeAndWorker(ctx context.Context, t *testing.T, url, world string, args, edgeArgs []string) *edgeAndWorkerRun {
	t.Helper()
	var workerOut, edgeOut syncBuffer
	p := &edgeAndWorkerRun{logs: &syncBuffer{}, done: make(chan error, 2)}
	go func() {
		p.done <- run(ctx, append([]string{"worker", "-nats", url, "-world", world, "-log", "warn"}, args...), nil, &workerOut, p.logs)
	}()
	edgeCmd := append([]string{"edge", "-nats", url, "-world", world, "-listen", "127.0.0.1:0", "-log", "warn"}, args...)
	go func() { p.done <- run(ctx, append(edgeCmd, edgeArgs...), nil, &edgeOut, p.logs) }()
	metricsURL := regexp.MustCompile(`metrics (http://127\.0\.0\.1:\d+/metrics)`)
	served := slices.Contains(args, "-http")
	natstest.Eventually(t, 30*time.Second, func() bool {
		select {
		case err := <-p.done:
			t.Fatalf("worker or edge: %v\n%s", err, p.logs.String())
		default:
		}
		p.banner = edgeOut.String()
		if m := metricsURL.FindStringSubmatch(p.banner); m != nil {
			p.edgeMetrics = m[1]
		}
		if m := metricsURL.FindStringSubmatch(workerOut.String()); m != nil {
			p.workerMetrics = m[1]
		}
		return strings.HasSuffix(p.banner, "\n") && (p.edgeMetrics != "" && p.workerMetrics != "") == served
	}, "edge ready:\n%s", p.logs.String())
	return p
}

// play runs the terminal client as name with args, asks for its inventory,
// waits for the answer, and logs out.
func (p *edgeAndWorkerRun) play(ctx context.Context, t *testing.T, name string, args ...string) {
	t.Helper()
	playClient(ctx, t, p.logs, "inv", `"t":"inv"`, append([]string{"-name", name}, args...)...)
}

// playClient runs the terminal client with args, types line, waits for
// want in its output, and logs out; logs are shown on failure.
func playClient(ctx context.Context, t *testing.T, logs *syncBuffer, line, want string, args ...string) {
	t.Helper()
	var out syncBuffer
	in, typed := io.Pipe()
	clientDone := make(chan error, 1)
	go func() {
		clientDone <- run(ctx, append([]string{"client"}, args...), in, &out, io.Discard)
	}()
	// The client reads its input only once logged in; if it gives up
	// first, nothing reads the pipe, so the write must not block the test.
	typedErr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(typed, line+"\n")
		typedErr <- err
	}()
	natstest.Eventually(t, 30*time.Second, func() bool {
		select {
		case err := <-clientDone:
			t.Fatalf("client ended: %v\noutput:\n%s\nlogs:\n%s", err, out.String(), logs.String())
		default:
		}
		return strings.Contains(out.String(), want)
	}, "client output:\n%s", out.String())
	if err := <-typedErr; err != nil {
		t.Fatal(err)
	}
	typed.Close()
	if err := <-clientDone; err != nil {
		t.Fatal(err)
	}
}

// wait waits for the worker and the edge, once their context has ended.
func (p *edgeAndWorkerRun) wait(t *testing.T) {
	t.Helper()
	for range 2 {
		if err := <-p.done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestNATSCluster runs three `starbus nats` nodes as a cluster on loopback,
// then a worker and an edge against them with the world replicated on all
// three.
func TestNATSCluster(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const n = 3
	var routes []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, "nats://"+l.Addr().String())
		l.Close()
	}
	outs := make([]*syncBuffer, n)
	done := make(chan error, n)
	for i := range n {
		outs[i] = &syncBuffer{}
		args := []string{"nats", "-data", t.TempDir(), "-port", "-1", "-name", "n" + strconv.Itoa(i),
			"-cluster", strings.TrimPrefix(routes[i], "nats://"), "-routes", strings.Join(routes, ",")}
		go func() { done <- run(ctx, args, nil, outs[i], io.Discard) }()
	}
	clientURL := regexp.MustCompile(`clients (nats://127\.0\.0\.1:\d+)`)
	var urls []string
	natstest.Eventually(t, time.Minute, func() bool {
		urls = urls[:0]
		for _, o := range outs {
			m := clientURL.FindStringSubmatch(o.String())
			if m == nil || !strings.Contains(o.String(), "ready") {
				return false
			}
			urls = append(urls, m[1])
		}
		return true
	}, "three nodes ready")
	url := strings.Join(urls, ",")
	edgeAndWorker(t, url, "triple", "-replicas", "3")

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "SB_triple")
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream %+v, cluster %+v: want 3 replicas", info.Config, info.Cluster)
	}
	cancel()
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestPprof(t *testing.T) {
	var stderr syncBuffer
	stop, err := startPprof("127.0.0.1:0", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	_, url, ok := strings.Cut(strings.TrimSpace(stderr.String()), "pprof on ")
	if !ok {
		t.Fatalf("no address announced: %q", stderr.String())
	}
	res, err := http.Get(url + "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %scmdline: %s", url, res.Status)
	}
	if stop, err := startPprof("", &stderr); err != nil {
		t.Fatal(err)
	} else {
		stop() // nothing to stop
	}
}
