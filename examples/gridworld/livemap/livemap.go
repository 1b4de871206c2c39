package livemap

import (
	_ "embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/kv"
)

//go:embed index.html
var page []byte

// The play page and the browser bundle of the TypeScript client it uses
// (built from clients/js by its `npm run bundle`; its `npm test` checks
// that this copy matches the sources).
var (
	//go:embed play.html
	playPage []byte
	//go:embed starbus-client.js
	clientBundle []byte
)

// Map is the live map's HTTP handler. Set the fields, then serve it.
type Map struct {
	// Game and Store are the world shown. Required.
	Game  *gridworld.Game
	Store *kv.Store
	// Metrics, if set, supplies the platform's counters: the page shows
	// the numbers the process serves on /metrics.
	Metrics Metrics
	// Leaders, if set, supplies the richest players of each kind.
	Leaders *gridworld.Leaderboard
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
}

var _ http.Handler = (*Map)(nil)

// Metrics supplies the current value of the platform's metrics, by the
// name and labels of their Prometheus series (a histogram as its _sum and
// _count); metrics.Registry satisfies it.
type Metrics interface {
	Values() (map[string]float64, error)
}

// ServeHTTP routes a request.
func (m *Map) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/":
		serveFile(w, "text/html; charset=utf-8", page)
	case "/play":
		serveFile(w, "text/html; charset=utf-8", playPage)
	case "/starbus-client.js":
		serveFile(w, "text/javascript; charset=utf-8", clientBundle)
	case "/api/world":
		m.json(w, m.world())
	case "/api/state":
		m.state(w, r)
	case "/api/check":
		rep, err := m.Game.Check(r.Context(), m.Store)
		if err != nil {
			m.fail(w, err)
			return
		}
		m.json(w, rep)
	default:
		http.NotFound(w, r)
	}
}

// serveFile writes one of the embedded files.
func serveFile(w http.ResponseWriter, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// World is the static geometry of the world.
type World struct {
	W     int      `json:"w"`
	H     int      `json:"h"`
	RS    int      `json:"rs"`
	V     int      `json:"v"` // a player's view: the radius of its area of interest
	Walls [][2]int `json:"walls"`
}

func (m *Map) world() World {
	cfg := m.Game.Config()
	w := World{W: cfg.Width(), H: cfg.Height(), RS: cfg.RegionSize, V: cfg.View, Walls: [][2]int{}}
	for y := range w.H {
		for x := range w.W {
			if cfg.Wall(x, y) {
				w.Walls = append(w.Walls, [2]int{x, y})
			}
		}
	}
	return w
}

// State is one poll's answer.
type State struct {
	gridworld.Snapshot
	// Time is when it was read, in Unix milliseconds: the page computes
	// rates from two polls.
	Time int64 `json:"time"`
	// Metrics are Map.Metrics' values, by series (none without it).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Leaders are the players carrying the most of each kind of item.
	Leaders map[string][]gridworld.Leader `json:"leaders,omitempty"`
}

// leadersShown is how many players the page lists per kind.
const leadersShown = 5

func (m *Map) state(w http.ResponseWriter, r *http.Request) {
	snap, err := m.Game.Snapshot(r.Context(), m.Store)
	if err != nil {
		m.fail(w, err)
		return
	}
	st := State{Snapshot: snap, Time: time.Now().UnixMilli()}
	if m.Metrics != nil {
		if st.Metrics, err = m.Metrics.Values(); err != nil {
			m.fail(w, err)
			return
		}
	}
	if m.Leaders != nil {
		st.Leaders = map[string][]gridworld.Leader{}
		for _, kind := range gridworld.Kinds() {
			top, err := m.Leaders.Top(kind, leadersShown)
			if err != nil {
				m.fail(w, err)
				return
			}
			st.Leaders[kind] = top
		}
	}
	m.json(w, st)
}

func (m *Map) json(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		m.log().Debug("live map: write", "err", err)
	}
}

func (m *Map) fail(w http.ResponseWriter, err error) {
	m.log().Warn("live map: read the world", "err", err)
	http.Error(w, "could not read the world: "+err.Error(), http.StatusServiceUnavailable)
}

func (m *Map) log() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Logger
}
