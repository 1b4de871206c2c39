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

	"github.com/starbus/starbus/config"
	"github.com/starbus/starbus/internal/metricstest"
	"github.com/starbus/starbus/internal/natstest"
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
	var addr, web string
	natstest.Eventually(t, 30*time.Second, func() bool {
		if m := edgeAddr.FindStringSubmatch(devOut.String()); m != nil {
			addr = m[1]
		}
		if m := mapAddr.FindStringSubmatch(devOut.String()); m != nil {
			web = m[1]
		}
		return addr != "" && web != ""
	}, "dev ready: %s", devOut.String())
	ready := time.Since(start)
	t.Logf("starbus dev ready in %v", ready)
	if ready > 5*time.Second {
		t.Errorf("starbus dev took %v to start, want under 5 s", ready)
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
	// A wrong password is refused.
	err := run(ctx, []string{"client", "-addr", addr, "-name", "ann", "-password", "nope"}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bad credentials") {
		t.Errorf("wrong password: %v", err)
	}

	// The live map serves the world.
	resp, err := http.Get("http://" + web + "/api/state")
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
	// logged out, no session outbox is left without its session.
	natsURL := regexp.MustCompile(`nats\s+(nats://127\.0\.0\.1:\d+)`).FindStringSubmatch(devOut.String())
	if natsURL == nil {
		t.Fatalf("dev printed no NATS URL: %s", devOut.String())
	}
	var infoOut syncBuffer
	if err := run(ctx, []string{"info", "-nats", natsURL[1]}, nil, &infoOut, io.Discard); err != nil {
		t.Fatalf("info: %v", err)
	}
	var info worldInfo
	if err := json.Unmarshal([]byte(infoOut.String()), &info); err != nil {
		t.Fatalf("info: %v\n%s", err, infoOut.String())
	}
	if info.Messages == 0 || info.ByKind["state"] == 0 || info.Sessions != 0 || info.Orphans != 0 || info.SessionsError != "" {
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
	var workerOut, edgeOut, logs syncBuffer
	done := make(chan error, 2)
	go func() {
		done <- run(ctx, append([]string{"worker", "-nats", url, "-world", world, "-log", "warn"}, args...), nil, &workerOut, &logs)
	}()
	go func() {
		done <- run(ctx, append([]string{"edge", "-nats", url, "-world", world, "-listen", "127.0.0.1:0", "-log", "warn"}, args...), nil, &edgeOut, &logs)
	}()
	edgeAddr := regexp.MustCompile(`edge (127\.0\.0\.1:\d+)`)
	metricsURL := regexp.MustCompile(`metrics (http://127\.0\.0\.1:\d+/metrics)`)
	var addr, workerMetrics, edgeMetrics string
	served := slices.Contains(args, "-http")
	natstest.Eventually(t, 30*time.Second, func() bool {
		if m := edgeAddr.FindStringSubmatch(edgeOut.String()); m != nil {
			addr = m[1]
		}
		if m := metricsURL.FindStringSubmatch(edgeOut.String()); m != nil {
			edgeMetrics = m[1]
		}
		if m := metricsURL.FindStringSubmatch(workerOut.String()); m != nil {
			workerMetrics = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("worker or edge: %v\n%s", err, logs.String())
		default:
		}
		return addr != "" && (edgeMetrics != "" && workerMetrics != "") == served
	}, "edge and worker ready:\n%s", logs.String())
	var out syncBuffer
	in, typed := io.Pipe()
	clientDone := make(chan error, 1)
	go func() {
		clientDone <- run(ctx, []string{"client", "-addr", addr, "-name", "zed"}, in, &out, io.Discard)
	}()
	// The client reads its input only once logged in; if it gives up
	// first, nothing reads the pipe, so the write must not block the test.
	typedErr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(typed, "inv\n")
		typedErr <- err
	}()
	natstest.Eventually(t, 30*time.Second, func() bool {
		select {
		case err := <-clientDone:
			t.Fatalf("client ended: %v\noutput:\n%s\nlogs:\n%s", err, out.String(), logs.String())
		default:
		}
		return strings.Contains(out.String(), `"t":"inv"`)
	}, "client output:\n%s", out.String())
	if err := <-typedErr; err != nil {
		t.Fatal(err)
	}
	typed.Close()
	if err := <-clientDone; err != nil {
		t.Fatal(err)
	}
	// Each serves the metrics of what it runs: the worker its tasks, the
	// edge its logins; not the other's.
	labels := map[string]string{"world": world}
	natstest.Eventually(t, 30*time.Second, func() bool {
		if !served {
			return true
		}
		wm, werr := metricstest.TryScrape(workerMetrics)
		em, eerr := metricstest.TryScrape(edgeMetrics)
		if werr != nil || eerr != nil {
			return false
		}
		committed, _ := wm.Value("starbus_runtime_tasks_committed_total", labels)
		logins, _ := em.Value("starbus_edge_logins_total", map[string]string{"world": world, "result": "ok"})
		return committed > 0 && logins == 1 && wm["starbus_edge_sessions"] == nil && em["starbus_runtime_task_duration_seconds"] == nil
	}, "worker and edge metrics")
	cancel()
	for range 2 {
		if err := <-done; err != nil {
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
