package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/config"
	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/internal/bots"
)

// errInvariants reports a run after which the world's invariants did not
// hold (or could not be checked).
var errInvariants = errors.New("invariants violated or not checked")

// runBots is `starbus bots`: simulated players against an edge, a summary,
// and the world's invariant checks (a violation is an error).
func runBots(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := config.Default()
	fs := flag.NewFlagSet("starbus bots", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", def.Edge.Listen, "edge address")
	players := fs.Int("players", 100, "number of players")
	duration := fs.Duration("duration", 30*time.Second, "how long they play, once logged in")
	rate := fs.Float64("rate", 2, "actions per second of each player (the edge allows 50)")
	prefix := fs.String("prefix", "bot", "players are named <prefix><n>")
	password := fs.String("password", "bots", "password of every player (the first login registers it)")
	logins := fs.Int("logins", 8, "logins in progress at once (the edge hashes passwords with argon2id)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	httpAddr := fs.String("http", def.HTTP, `address of the world's live map, whose /api/check checks the invariants ("off": no check)`)
	natsURL := fs.String("nats", "", "check the invariants by reading the world's state on this NATS instead of -http")
	world := fs.String("world", def.World, "world name (with -nats)")
	seed := fs.Uint64("seed", 1, "seed of the players' choices")
	pprofAddr := pprofFlag(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	stop, err := startPprof(*pprofAddr, stderr)
	if err != nil {
		return err
	}
	defer stop()
	cfg := bots.Config{
		Addr: *addr, Players: *players, Duration: *duration, Rate: *rate, Prefix: *prefix,
		Password: *password, Logins: *logins, Seed: *seed,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	switch {
	case *natsURL != "":
		closeCheck, check, err := natsCheck(ctx, *natsURL, *world)
		if err != nil {
			return err
		}
		defer closeCheck()
		cfg.Check = check
	case *httpAddr != "" && *httpAddr != "off":
		cfg.Check = httpCheck("http://" + *httpAddr + "/api/check")
	}
	if isTerminal(stdout) {
		cfg.Progress = func(p bots.Progress) {
			fmt.Fprintf(stdout, "\r%5.1fs  %d players  %d actions (%.0f/s)  %d errors   ", p.Elapsed.Seconds(), p.Playing, p.Actions, float64(p.Actions)/p.Elapsed.Seconds(), p.Errors)
		}
	}
	fmt.Fprintf(stderr, "starbus bots: logging %d players in to %s, then playing for %v\n", *players, *addr, *duration)
	sum, err := bots.Run(ctx, cfg)
	if cfg.Progress != nil {
		fmt.Fprintln(stdout)
	}
	if err != nil && sum.LoggedIn == 0 {
		return err
	}
	if *asJSON {
		b, jerr := json.Marshal(sum)
		if jerr != nil {
			return jerr
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		printSummary(stdout, sum, cfg.Check != nil)
	}
	if err != nil {
		return err
	}
	if cfg.Check != nil && !sum.InvariantsOK {
		return errInvariants
	}
	return nil
}

// commands are the bots' commands, in the order the summary lists them.
var commands = []string{"move", "look", "say", "shout", "take", "drop", "offer", "accept"}

func printSummary(w io.Writer, s bots.Summary, checked bool) {
	fmt.Fprintf(w, "players        %d logged in of %d, in %.1fs\n", s.LoggedIn, s.Players, s.LoginSeconds)
	fmt.Fprintf(w, "actions        %d in %.1fs: %.0f/s\n", s.Actions, s.Seconds, s.ActionsPerSec)
	fmt.Fprintf(w, "deliveries     %d: %.0f/s (every message the players received)\n", s.Deliveries, s.DeliveriesPerSec)
	fmt.Fprintf(w, "round trip ms  p50 %.1f  p99 %.1f  p999 %.1f  max %.1f\n", s.P50, s.P99, s.P999, s.Max)
	var ops []string
	for _, op := range commands {
		if n := s.ByOp[op]; n > 0 {
			ops = append(ops, fmt.Sprintf("%s %d", op, n))
		}
	}
	fmt.Fprintf(w, "by command     %s\n", strings.Join(ops, ", "))
	for _, op := range commands {
		if l, ok := s.LatencyByOp[op]; ok {
			fmt.Fprintf(w, "  %-12s p50 %.1f  p99 %.1f  max %.1f ms\n", op, l.P50, l.P99, l.Max)
		}
	}
	if len(s.Slowest) > 0 {
		var slow []string
		for _, sl := range s.Slowest[:min(5, len(s.Slowest))] {
			slow = append(slow, fmt.Sprintf("%.0f %s at %.1fs", sl.MS, sl.Op, sl.At))
		}
		fmt.Fprintf(w, "slowest ms     %s (sent at, in seconds of play)\n", strings.Join(slow, ", "))
	}
	fmt.Fprintf(w, "outcomes       %d refused by the rules, %d trades\n", s.Refused, s.Trades)
	why := slices.SortedFunc(maps.Keys(s.RefusedWhy), func(a, b string) int { return cmp.Compare(s.RefusedWhy[b], s.RefusedWhy[a]) })
	for i, k := range why {
		if i == 4 {
			break
		}
		fmt.Fprintf(w, "  refused      %d %s\n", s.RefusedWhy[k], k)
	}
	fmt.Fprintf(w, "errors         %d (timeouts %d, rate limited %d); disconnects %d\n", s.Errors, s.Timeouts, s.RateLimited, s.Disconnects)
	if !checked {
		fmt.Fprintln(w, "invariants     not checked")
		return
	}
	if s.CheckErr != "" {
		fmt.Fprintf(w, "invariants     NOT CHECKED: %s\n", s.CheckErr)
	}
	for i, r := range s.Checks {
		when := []string{"after play", "after logout"}[min(i, 1)]
		verdict := "hold"
		if !r.OK {
			verdict = "VIOLATED"
		}
		fmt.Fprintf(w, "invariants     %s %s: %d players (%d online), items spawned %d = lying %d + carried %d\n",
			verdict, when, r.Players, r.Online, sum(r.Spawned), sum(r.InWorld), sum(r.Carried))
		for _, v := range r.Violations {
			fmt.Fprintf(w, "  - %s\n", v)
		}
	}
}

func sum(it gridworld.Items) int {
	n := 0
	for _, c := range it {
		n += c
	}
	return n
}

// httpCheck asks a world's live map to check its invariants.
func httpCheck(url string) func(ctx context.Context) (gridworld.Report, error) {
	return func(ctx context.Context) (gridworld.Report, error) {
		var rep gridworld.Report
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return rep, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return rep, fmt.Errorf("%w (is the live map on -http? or give -nats)", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return rep, fmt.Errorf("%s: %s %s", url, resp.Status, b)
		}
		return rep, json.NewDecoder(resp.Body).Decode(&rep)
	}
}

// natsCheck reads the world's state directly to check its invariants.
func natsCheck(ctx context.Context, url, world string) (closeFn func(), check func(ctx context.Context) (gridworld.Report, error), err error) {
	cfg := config.Default()
	cfg.NATS.URL, cfg.World = url, world
	wd, closeWorld, err := remoteWorld(ctx, cfg, "starbus bots", bus.RoleAdmin, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return nil, nil, err
	}
	game, err := gridworld.New(gridworld.Default())
	if err != nil {
		closeWorld()
		return nil, nil, err
	}
	return closeWorld, func(ctx context.Context) (gridworld.Report, error) { return game.Check(ctx, wd.store) }, nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
