package livemap_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/examples/gridworld/livemap"
	"github.com/starbus/starbus/internal/worldtest"
)

// Colours of play.html.
var (
	meColour    = color.RGBA{0x64, 0xd2, 0xff, 0xff}
	otherColour = color.RGBA{0xff, 0x37, 0x5f, 0xff} // another player
)

// playCellPx is the side of a cell on the play page.
const playCellPx = 32

// TestPlayPage: /play is served with the client's bundle beside it.
func TestPlayPage(t *testing.T) {
	_, srv, _ := serve(t)
	for _, c := range []struct{ path, ctype, want string }{
		{"/play", "text/html; charset=utf-8", `from "./starbus-client.js"`},
		{"/starbus-client.js", "text/javascript; charset=utf-8", "var Client = class"},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != c.ctype || !bytes.Contains(body, []byte(c.want)) {
			t.Errorf("GET %s: %s, %s, %d bytes; want %s with %q", c.path, resp.Status, resp.Header.Get("Content-Type"), len(body), c.ctype, c.want)
		}
	}
}

// node returns the node binary and clients/js, whose node_modules has
// playwright-core, or skips the test; with STARBUS_REQUIRE_NODE set (as
// scripts/test sets it) it fails instead.
func node(t *testing.T) (bin, js string) {
	t.Helper()
	js, err := filepath.Abs(filepath.Join("..", "..", "..", "clients", "js"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err = exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(js, "node_modules", "playwright-core", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("needs node and clients/js/node_modules (run npm ci in clients/js; scripts/test does): %v", err)
		if os.Getenv("STARBUS_REQUIRE_NODE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin, js
}

// startIn returns the cell where a new player's placement starts, as
// gridworld's Config.start does (an FNV-1a hash of the name).
func startIn(cfg gridworld.Config, name string) (x, y int) {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte{0})
	v := h.Sum64()
	return int(v % uint64(cfg.Width())), int((v >> 32) % uint64(cfg.Height()))
}

// twoInOneRegion picks two player names that start on open cells of one
// region, away from its border and from each other.
func twoInOneRegion(t *testing.T, cfg gridworld.Config) (a, b string) {
	good := func(name string) bool {
		x, y := startIn(cfg, name)
		lx, ly := x%cfg.RegionSize, y%cfg.RegionSize
		return cfg.Open(x, y) && lx >= 2 && ly >= 2 && lx <= cfg.RegionSize-3 && ly <= cfg.RegionSize-3
	}
	for i := range 1000 {
		a = fmt.Sprintf("ann%d", i)
		if !good(a) {
			continue
		}
		ax, ay := startIn(cfg, a)
		for j := range 1000 {
			b = fmt.Sprintf("bob%d", j)
			bx, by := startIn(cfg, b)
			if good(b) && cfg.Region(ax, ay) == cfg.Region(bx, by) && max(ax-bx, bx-ax)+max(ay-by, by-ay) >= 3 {
				return a, b
			}
		}
	}
	t.Fatal("no two names start in one region")
	return "", ""
}

// playResult is what testdata/play.mjs prints.
type playResult struct {
	Kind    string `json:"kind"`
	Players []struct {
		Name   string             `json:"name"`
		Me     struct{ X, Y int } `json:"me"`
		Inv    gridworld.Items    `json:"inv"`
		RS     int                `json:"rs"`
		Others []struct {
			N    string `json:"n"`
			X, Y int
			NPC  bool `json:"npc"`
		} `json:"others"`
		Shot   string   `json:"shot"`
		Status string   `json:"status"`
		Log    []string `json:"log"`
		Who    []string `json:"who"`
		Errors []string `json:"errors"`
	} `json:"players"`
	Steps []string `json:"steps"`
}

// TestPlay plays the world in headless Chromium: two players on the play
// page, through the edge's WebSocket, with the keyboard, see each other
// move, chat, and trade an item one of them walked to and picked up
// (testdata/play.mjs drives the pages with playwright-core). Midway the
// first player's connection is cut: its page resumes the session and
// hears, once, what the other said meanwhile. Then the pages' text and
// screenshots are checked, and the world's invariants.
func TestPlay(t *testing.T) {
	browser := chromium(t)
	nodeBin, js := node(t)
	cfg := gridworld.Default()
	cfg.ItemCap, cfg.SpawnEvery = 128, 50*time.Millisecond // items in every region soon
	w := worldtest.Start(t, cfg)
	mux := http.NewServeMux()
	ws := w.Edge.WebSocketHandler(edge.WebSocketOptions{})
	var conns hijacked
	mux.Handle("/ws", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ws.ServeHTTP(hijackRecorder{rw, &conns}, r)
	}))
	// The script drops the first player's first connection here, as a
	// network would: the page's client must resume it.
	mux.HandleFunc("POST /test/drop", func(rw http.ResponseWriter, _ *http.Request) {
		if err := conns.closeFirst(); err != nil {
			http.Error(rw, err.Error(), http.StatusConflict)
		}
	})
	mux.Handle("/", &livemap.Map{Game: w.Game, Store: w.Store})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	a, b := twoInOneRegion(t, cfg)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join("testdata", "play.mjs"))
	cmd.Env = append(os.Environ(), "PLAY_URL="+srv.URL, "PLAY_NAMES="+a+","+b, "PLAY_OUT="+dir, "STARBUS_JS="+js, "CHROMIUM="+browser)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("play.mjs: %v\n%s", err, stderr.String())
	}
	var res playResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("play.mjs printed %q: %v", out, err)
	}
	t.Logf("play.mjs:\n  %s", strings.Join(res.Steps, "\n  "))
	if len(res.Players) != 2 {
		t.Fatalf("%d players", len(res.Players))
	}
	pa, pb := res.Players[0], res.Players[1]

	// What the pages say.
	for _, c := range []struct {
		who, other  string
		status      string
		log, errors []string
		whoList     []string
		otherAt     struct{ X, Y int }
		heard       string
	}{
		{a, b, pa.Status, pa.Log, pa.Errors, pa.Who, pb.Me, b + ": hi " + a + ", trade?"},
		{b, a, pb.Status, pb.Log, pb.Errors, pb.Who, pa.Me, a + ": hello " + b},
	} {
		if c.status != "online as "+c.who {
			t.Errorf("%s's status: %q", c.who, c.status)
		}
		if len(c.errors) > 0 {
			t.Errorf("%s's page had errors: %q", c.who, c.errors)
		}
		if want := fmt.Sprintf("%s at %d,%d", c.other, c.otherAt.X, c.otherAt.Y); !contains(c.whoList, want) {
			t.Errorf("%s sees %q, want %q among them", c.who, c.whoList, want)
		}
		if !contains(c.log, c.heard) {
			t.Errorf("%s's log %q lacks %q", c.who, c.log, c.heard)
		}
	}
	if n := count(pa.Log, b+": while you were away"); n != 1 {
		t.Errorf("%s heard what %s said while its connection was down %d times: %q", a, b, n, pa.Log)
	}
	if !anyHasPrefix(pa.Log, "resumed after ") {
		t.Errorf("%s's log has no resumption: %q", a, pa.Log)
	}
	if !contains(pb.Log, fmt.Sprintf("traded with %s: you carry 1 %s", a, res.Kind)) || pb.Inv[res.Kind] != 1 {
		t.Errorf("%s after the trade: inv %v, log %q", b, pb.Inv, pb.Log)
	}

	// The world agrees, and holds together.
	rep, err := w.Game.Check(t.Context(), w.Store)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Online != 2 {
		t.Errorf("check: %+v", rep)
	}

	// The picture: a's page draws a's region, a in its colour, b in the
	// other players', and is not blank.
	img := decodePNG(t, pa.Shot)
	rs := pa.RS
	if b := img.Bounds(); b.Dx() < rs*playCellPx || b.Dy() < rs*playCellPx {
		t.Fatalf("screenshot is %v", b)
	}
	body := func(x, y int) color.Color {
		return img.At(x%rs*playCellPx+playCellPx/2, y%rs*playCellPx+playCellPx/2+1)
	}
	if c := body(pa.Me.X, pa.Me.Y); !near(c, meColour) {
		t.Errorf("%s at %v: pixel %v, want %v", a, pa.Me, c, meColour)
	}
	if c := body(pb.Me.X, pb.Me.Y); !near(c, otherColour) {
		t.Errorf("%s at %v on %s's page: pixel %v, want %v", b, pb.Me, a, c, otherColour)
	}
	if n := colours(img, image.Rect(0, 0, rs*playCellPx, rs*playCellPx)); n < 5 {
		t.Errorf("the map has %d colours: blank?", n)
	}
	if t.Failed() || os.Getenv("LIVEMAP_KEEP") != "" {
		for _, p := range res.Players {
			keep := filepath.Join(os.TempDir(), fmt.Sprintf("play-%s-%d.png", p.Name, time.Now().UnixNano()))
			if b, err := os.ReadFile(p.Shot); err == nil && os.WriteFile(keep, b, 0o644) == nil {
				t.Logf("screenshot kept at %s", keep)
			}
		}
	}
}

func contains(list []string, s string) bool { return count(list, s) > 0 }

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func anyHasPrefix(list []string, prefix string) bool {
	for _, v := range list {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}

// hijacked records the connections the WebSocket handler takes over.
type hijacked struct {
	mu    sync.Mutex
	conns []net.Conn
}

// closeFirst closes the first connection taken over, abruptly.
func (h *hijacked) closeFirst() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns) == 0 {
		return fmt.Errorf("no WebSocket connection yet")
	}
	return h.conns[0].Close()
}

// hijackRecorder is a ResponseWriter whose Hijack records the connection.
type hijackRecorder struct {
	http.ResponseWriter
	h *hijacked
}

func (r hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.h.mu.Lock()
		r.h.conns = append(r.h.conns, c)
		r.h.mu.Unlock()
	}
	return c, rw, err
}

func (r hijackRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// colours counts the distinct colours in r.
func colours(img image.Image, r image.Rectangle) int {
	seen := map[color.RGBA]bool{}
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}] = true
		}
	}
	return len(seen)
}
