package bots_test

import (
	"context"
	"testing"
	"time"

	"github.com/starbus/starbus/examples/gridworld"
	"github.com/starbus/starbus/internal/bots"
	"github.com/starbus/starbus/internal/worldtest"
)

// TestBots plays a world with 50 players for 3 seconds over TCP: every
// player logs in and plays, nothing fails, and the invariants hold after
// play and after logout.
func TestBots(t *testing.T) {
	cfg := gridworld.Default()
	cfg.ItemCap = 200 // plenty to pick up and trade
	w := worldtest.Start(t, cfg)
	sum, err := bots.Run(t.Context(), bots.Config{
		Addr: w.Addr, Players: 50, Duration: 3 * time.Second, Rate: 5,
		Check: func(ctx context.Context) (gridworld.Report, error) { return w.Game.Check(ctx, w.Store) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary: %+v", sum)
	if sum.LoggedIn != 50 || sum.Actions < 100 || sum.Errors != 0 || sum.Disconnects != 0 {
		t.Errorf("summary: %+v", sum)
	}
	if !sum.InvariantsOK {
		t.Errorf("invariants: %+v (%s)", sum.Checks, sum.CheckErr)
	}
	if sum.ByOp["move"] == 0 || sum.P50 <= 0 || sum.P99 < sum.P50 {
		t.Errorf("actions by op %v, p50 %v p99 %v", sum.ByOp, sum.P50, sum.P99)
	}
	// Each command's round trip is reported, and the slowest of them is
	// the slowest of all.
	var slowest float64
	for op := range sum.ByOp {
		l, ok := sum.LatencyByOp[op]
		if !ok || l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 {
			t.Errorf("latency of %s: %+v", op, l)
		}
		slowest = max(slowest, l.Max)
	}
	if len(sum.LatencyByOp) != len(sum.ByOp) || slowest != sum.Max {
		t.Errorf("latency by op %+v, by op %v, max %v", sum.LatencyByOp, sum.ByOp, sum.Max)
	}
	// The slowest round trip of each second of the 3 s of play (4 at
	// most: the last may have begun), slowest first, the first of them
	// the max, each of a command played, no two in the same second.
	if n := len(sum.Slowest); n < 3 || n > 4 || sum.Slowest[0].MS != sum.Max {
		t.Errorf("slowest %+v, want one for each of 3 or 4 seconds, the first %v ms", sum.Slowest, sum.Max)
	}
	seconds := map[int]bool{}
	for i, s := range sum.Slowest {
		if i > 0 && s.MS > sum.Slowest[i-1].MS || sum.ByOp[s.Op] == 0 || s.At < 0 || s.At > sum.Seconds+0.001 || seconds[int(s.At)] {
			t.Errorf("slowest[%d] = %+v: out of order, of a command not played, sent outside the %.1f s of play, or a second listed twice", i, s, sum.Seconds)
		}
		seconds[int(s.At)] = true
	}
}
