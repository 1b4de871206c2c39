package livemap_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/examples/gridworld/livemap"
	"github.com/starbus/starbus/internal/worldtest"
	"github.com/starbus/starbus/metrics"
)

// Colours of index.html.
var (
	playerColour = color.RGBA{0xff, 0x37, 0x5f, 0xff}
	background   = color.RGBA{0x0b, 0x13, 0x20, 0xff}
	areaColour   = color.RGBA{0x64, 0xd2, 0xff, 0xff}
)

// cellPx is the side of a cell on the page for a 64×64 world (640 px).
const cellPx = 10

func serve(t *testing.T, players ...string) (*worldtest.World, *httptest.Server, map[string][2]int) {
	t.Helper()
	cfg := gridworld.Default()
	cfg.NPCs, cfg.ItemCap = 0, 0
	w := worldtest.Start(t, cfg)
	at := map[string][2]int{}
	for _, name := range players {
		p := w.Login(t, name)
		at[name] = [2]int{*p.Welcome.X, *p.Welcome.Y}
	}
	leaders, err := gridworld.OpenLeaderboard(t.Context(), w.Env.JS, w.Env.World)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leaders.Close() })
	reg, err := metrics.New(w.Env.World.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(reg.RegisterStore(w.Store), reg.RegisterRuntime(w.Runtime), reg.RegisterEdge(w.Edge)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&livemap.Map{Game: w.Game, Store: w.Store, Metrics: reg, Leaders: leaders})
	t.Cleanup(srv.Close)
	return w, srv, at
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestAPI(t *testing.T) {
	_, srv, at := serve(t, "ann", "bob")
	var st livemap.State
	getJSON(t, srv.URL+"/api/state", &st)
	if len(st.Players) != 2 || st.W != 64 || len(st.Leaders) != 3 {
		t.Fatalf("state: %+v", st)
	}
	// The platform's counters are the metrics' series.
	if st.Metrics["starbus_runtime_tasks_committed_total"] == 0 || st.Metrics["starbus_kv_commits_total"] == 0 ||
		st.Metrics["starbus_edge_sessions"] != 2 {
		t.Fatalf("metrics: %v", st.Metrics)
	}
	for _, p := range st.Players {
		if at[p.N] != [2]int{p.X, p.Y} {
			t.Errorf("%s shown at %d,%d, is at %v", p.N, p.X, p.Y, at[p.N])
		}
	}
	var wd livemap.World
	getJSON(t, srv.URL+"/api/world", &wd)
	if wd.W != 64 || len(wd.Walls) != 16*20 {
		t.Fatalf("world: %d×%d, %d walls", wd.W, wd.H, len(wd.Walls))
	}
	var rep gridworld.Report
	getJSON(t, srv.URL+"/api/check", &rep)
	if !rep.OK || rep.Online != 2 {
		t.Fatalf("check: %+v", rep)
	}
	resp, err := http.Post(srv.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", resp.Status)
	}
}

// chromium returns the headless browser to drive, or skips the test.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on PATH: scripts/install-chromium installs it (Debian package chromium)")
	return ""
}

// TestScreenshot loads the page in headless Chromium and checks the
// picture: players are drawn in the player colour at their cells, an
// empty cell is background, and the focused player's area of interest is
// outlined.
func TestScreenshot(t *testing.T) {
	browser := chromium(t)
	_, srv, at := serve(t, "ann", "bob", "cat")
	dir := t.TempDir()
	shot := filepath.Join(dir, "map.png")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
		"--no-first-run", "--disable-extensions", "--disable-background-networking",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--force-device-scale-factor=1", "--window-size=1000,700",
		"--virtual-time-budget=3000", "--screenshot="+shot, srv.URL+"/?focus=ann")
	out, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() == nil {
		// Chromium has been seen to crash once on a fresh machine (its font
		// caches being built): one more try.
		t.Logf("chromium: %v; trying again", err)
		cmd = exec.CommandContext(ctx, cmd.Args[0], cmd.Args[1:]...)
		out, err = cmd.CombinedOutput()
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	img := decodePNG(t, shot)
	if b := img.Bounds(); b.Dx() < 64*cellPx || b.Dy() < 64*cellPx {
		t.Fatalf("screenshot is %v", b)
	}
	centre := func(x, y int) color.Color { return img.At(x*cellPx+cellPx/2, y*cellPx+cellPx/2) }
	for name, p := range at {
		if c := centre(p[0], p[1]); !near(c, playerColour) {
			t.Errorf("%s at %v: pixel %v, want the player colour %v", name, p, c, playerColour)
		}
	}
	// A cell nobody stands on, away from walls.
	empty := [2]int{0, 0}
	for _, p := range at {
		if p == empty {
			empty = [2]int{0, 1}
		}
	}
	if c := centre(empty[0], empty[1]); !near(c, background) {
		t.Errorf("empty cell %v: pixel %v, want the background %v", empty, c, background)
	}
	// ann's square: its left side if it is on the map, else its right.
	a, v := at["ann"], gridworld.Default().View
	edge := (a[0] - v) * cellPx
	if a[0]-v < 0 {
		edge = (a[0] + v + 1) * cellPx
	}
	if c := img.At(edge+1, a[1]*cellPx+cellPx/2); !near(c, areaColour) {
		t.Errorf("ann's area at x=%d: pixel %v, want the area colour %v", edge+1, c, areaColour)
	}
	if t.Failed() || os.Getenv("LIVEMAP_KEEP") != "" {
		keep := filepath.Join(os.TempDir(), fmt.Sprintf("livemap-%d.png", time.Now().UnixNano()))
		if b, err := os.ReadFile(shot); err == nil && os.WriteFile(keep, b, 0o644) == nil {
			t.Logf("screenshot kept at %s", keep)
		}
	}
}

// near reports whether two colours match within a little rounding.
func near(a, b color.Color) bool {
	r1, g1, b1, _ := a.RGBA()
	r2, g2, b2, _ := b.RGBA()
	d := func(x, y uint32) bool { return max(x, y)-min(x, y) <= 8<<8 }
	return d(r1, r2) && d(g1, g2) && d(b1, b2)
}
