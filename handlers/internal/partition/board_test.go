package partition

import (
	"testing"
	"time"
)

// TestBoardHeartbeat: when a heartbeat counts as seen.
func TestBoardHeartbeat(t *testing.T) {
	never := time.Duration(-1)
	for _, c := range []struct {
		name     string
		before   time.Duration // how long ago the member was last seen (never: not at all)
		stored   time.Duration // how long ago the heartbeat was stored (negative: ahead of the local clock)
		caughtUp bool
		want     time.Duration // how long ago the member counts as seen
	}{
		{"a heartbeat after the watch caught up: seen now", never, 5 * time.Second, true, 0},
		{"a heartbeat stored before the watch caught up: as old as it is", never, 5 * time.Second, false, 5 * time.Second},
		{"a heartbeat stamped ahead of the local clock, before catching up: seen now", never, -5 * time.Second, false, 0},
		{"an older heartbeat never makes a member look older", time.Second, 4 * time.Second, false, time.Second},
		{"a newer heartbeat makes it younger", 2 * time.Second, time.Second, false, time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewBoard(1)
			if c.before != never {
				b.Members["a"] = t0.Add(-c.before)
			}
			b.Heartbeat("a", t0, t0.Add(-c.stored), c.caughtUp)
			if got := t0.Sub(b.Members["a"]); got != c.want {
				t.Errorf("seen %v ago, want %v", got, c.want)
			}
		})
	}
}

// TestBoardLeave: a member's delete heartbeat makes it dead at once, and
// a heartbeat after it (a member that came back) makes it alive again.
func TestBoardLeave(t *testing.T) {
	b := NewBoard(2)
	b.Heartbeat("a", t0, t0, true)
	b.Heartbeat("b", t0, t0, true)
	b.Leave("b")
	b.Synced = true
	v := View{Board: b, Self: "a", Now: t0, Lease: lease, Leader: "a"}
	if got := Plan(v); len(got) != 2 || got[1].Op != Acquire || got[1].P != 1 {
		t.Fatalf("plan after b left: %v; want a to take both partitions", got)
	}
	b.Heartbeat("b", t0, t0, true)
	if _, ok := b.Members["b"]; !ok {
		t.Fatal("b's heartbeat after it left is not seen")
	}
}

// TestBoardLearn: records are ordered by their stream sequence, the order
// of the compare-and-sets that wrote them, whatever the order in which
// they are seen (a watch, and a read after a failed compare-and-set).
func TestBoardLearn(t *testing.T) {
	for _, c := range []struct {
		name  string
		known string
		p     int
		rec   string
		want  string // partition 0's record afterwards
		ok    bool
	}{
		{"a first record", "", 0, "a e1 @3", "a e1 @3", true},
		{"a later record replaces the known one", "a e1 @10", 0, "b e2 @12", "b e2 @12", true},
		{"an earlier record, seen late, is ignored", "b e2 @12", 0, "a e1 @10", "b e2 @12", false},
		{"the same record again", "b e2 @12", 0, "b e2 @12", "b e2 @12", false},
		{"a release after the take it ends", "b e2 @12", 0, "- e2 @14", "- e2 @14", true},
		{"another partition's record", "b e2 @12", 1, "a e1 @20", "b e2 @12", true},
		{"a partition out of range", "b e2 @12", 2, "a e1 @20", "b e2 @12", false},
		{"a negative partition", "b e2 @12", -1, "a e1 @20", "b e2 @12", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewBoard(2)
			b.Records[0] = parseRecord(t, c.known)
			ok := b.Learn(c.p, parseRecord(t, c.rec))
			if ok != c.ok || b.Records[0].String() != parseRecord(t, c.want).String() {
				t.Errorf("Learn = %v, record 0 %s; want %v, %s", ok, b.Records[0], c.ok, c.want)
			}
		})
	}
}

func TestBoardClone(t *testing.T) {
	b := NewBoard(1)
	b.Heartbeat("a", t0, t0, true)
	c := b.Clone()
	b.Heartbeat("b", t0, t0, true)
	b.Learn(0, Record{Owner: "a", Epoch: 1, Seq: 1})
	if len(c.Members) != 1 || c.Records[0].Seq != 0 {
		t.Errorf("the clone shares with its board: %v %v", c.Members, c.Records)
	}
}

// TestRewatch: a watch that has not shown this member its own heartbeat
// for a lease is replaced, once it has had a lease to.
func TestRewatch(t *testing.T) {
	for _, c := range []struct {
		name          string
		seen, started time.Duration // how long ago
		never         bool          // own heartbeat never seen
		want          bool
	}{
		{"own heartbeat seen lately", lease / 6, 10 * lease, false, false},
		{"own heartbeat seen a lease ago", lease, 10 * lease, false, false},
		{"own heartbeat missing for more than a lease", lease + time.Millisecond, 10 * lease, false, true},
		{"never seen, on a watch older than a lease", 0, lease + time.Millisecond, true, true},
		{"never seen, on a watch not a lease old", 0, lease, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			seen := t0.Add(-c.seen)
			if c.never {
				seen = time.Time{}
			}
			if got := Rewatch(t0, seen, t0.Add(-c.started), lease); got != c.want {
				t.Errorf("Rewatch = %v, want %v", got, c.want)
			}
		})
	}
}

func TestTimes(t *testing.T) {
	for _, c := range []struct {
		lease, beat, ttl time.Duration
	}{
		{3 * time.Second, 500 * time.Millisecond, 6 * time.Second},
		{time.Second, time.Second / 6, 2 * time.Second},
		{600 * time.Millisecond, 100 * time.Millisecond, time.Second},
		{1700 * time.Millisecond, 1700 * time.Millisecond / 6, 3 * time.Second},
	} {
		if b, ttl := Beat(c.lease), HeartbeatTTL(c.lease); b != c.beat || ttl != c.ttl {
			t.Errorf("lease %v: beat %v, TTL %v; want %v, %v", c.lease, b, ttl, c.beat, c.ttl)
		}
	}
}
