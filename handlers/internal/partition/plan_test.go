package partition

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// t0 is the time of every plan in these tests; lease is their lease.
var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

const lease = 3 * time.Second

// planCase is one plan: a member's view, and the actions it must lead to,
// spelled as [Action.String] spells them.
type planCase struct {
	name     string
	self     string
	leader   string                   // the commit leader in use ("": self)
	seen     map[string]time.Duration // how long ago each member's latest heartbeat was seen (absent: never, or left)
	records  []string                 // each partition's record, as Record.String spells it ("": none)
	held     map[int]Held             // the partitions consumed here
	busy     []int                    // partitions with an acquisition or release in flight
	backoff  map[int]time.Duration    // partitions left alone for this long yet (negative: ended)
	unsynced bool                     // the watch has not caught up yet
	syncIn   time.Duration            // SyncBy - Now, for an unsynced board
	want     []string
}

func (c planCase) view(t *testing.T) View {
	t.Helper()
	v := View{
		Board:  Board{Members: make(map[string]time.Time), Synced: !c.unsynced},
		Self:   c.self,
		Now:    t0,
		Lease:  lease,
		SyncBy: t0.Add(c.syncIn),
		Leader: cmp.Or(c.leader, c.self),
		Parts:  make([]Local, len(c.records)),
	}
	for m, age := range c.seen {
		v.Members[m] = t0.Add(-age)
	}
	for _, s := range c.records {
		v.Records = append(v.Records, parseRecord(t, s))
	}
	for p, h := range c.held {
		v.Parts[p].Held = &h
	}
	for _, p := range c.busy {
		v.Parts[p].Busy = true
	}
	for p, d := range c.backoff {
		v.Parts[p].NotUntil = t0.Add(d)
	}
	return v
}

// parseRecord reads a record as Record.String spells it: "a e3 r120 @9",
// "- e3 @9" for no owner; "" is no record at all.
func parseRecord(t testing.TB, s string) Record {
	t.Helper()
	var r Record
	if s == "" {
		return r
	}
	f := strings.Fields(s)
	if f[0] != "-" {
		r.Owner = f[0]
	}
	for _, x := range f[1:] {
		n, err := strconv.ParseUint(x[1:], 10, 64)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		switch x[0] {
		case 'e':
			r.Epoch = n
		case 'r':
			r.Replay = n
		case '@':
			r.Seq = n
		default:
			t.Fatalf("record %q: what is %q?", s, x)
		}
	}
	return r
}

func runPlans(t *testing.T, cases []planCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, a := range Plan(c.view(t)) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("plan of %s:\n got  %q\n want %q", c.self, got, c.want)
			}
		})
	}
}

// four is four partitions with no record yet.
var four = []string{"", "", "", ""}

// TestPlanMembership: partition p goes to the (p mod n)-th of the n live
// members, sorted by name; members join, leave and go silent.
func TestPlanMembership(t *testing.T) {
	// a and b shared four partitions (a: 0, 2; b: 1, 3); c joins.
	shared := []string{"a e1 @10", "b e1 @11", "a e1 @12", "b e1 @13"}
	abc := map[string]time.Duration{"a": 0, "b": 0, "c": 0}
	runPlans(t, []planCase{{
		name: "the first member takes every free partition",
		self: "a", seen: map[string]time.Duration{"a": 0}, records: four,
		want: []string{"acquire 0 (- e0 @0)", "acquire 1 (- e0 @0)", "acquire 2 (- e0 @0)", "acquire 3 (- e0 @0)"},
	}, {
		name: "a member joins: a holder releases what is now the joiner's",
		self: "a", leader: "a", seen: abc, records: shared,
		held: map[int]Held{0: {Epoch: 1, RecSeq: 10}, 2: {Epoch: 1, RecSeq: 12}},
		want: []string{"release 2 (a e1 @12)"}, // 0→a 1→b 2→c 3→a; 3 is b's to release
	}, {
		name: "a member joins: the other holder releases too",
		self: "b", leader: "a", seen: abc, records: shared,
		held: map[int]Held{1: {Epoch: 1, RecSeq: 11}, 3: {Epoch: 1, RecSeq: 13}},
		want: []string{"release 3 (b e1 @13)"},
	}, {
		name: "a member joins: it waits while a live owner holds its partition",
		self: "c", leader: "a", seen: abc, records: shared,
		want: nil,
	}, {
		name: "a member joins: it takes its partition once released",
		self: "c", leader: "a", seen: abc,
		records: []string{"a e1 @10", "b e1 @11", "- e1 @20", "b e1 @13"},
		want:    []string{"acquire 2 (- e1 @20)"},
	}, {
		name: "a member joins: a holder keeps the partitions still its own",
		self: "a", leader: "a", seen: abc,
		records: []string{"a e1 @10", "b e1 @11", "- e1 @20", "a e2 @21"},
		held:    map[int]Held{0: {Epoch: 1, RecSeq: 10}, 3: {Epoch: 2, RecSeq: 21}},
		want:    nil,
	}, {
		// b left: its delete heartbeat removed it from the board, and its
		// release of 3 landed but not yet that of 1.
		name: "a member leaves: its partitions go to the others at once",
		self: "c", leader: "a", seen: map[string]time.Duration{"a": 0, "c": 0},
		records: []string{"a e1 @10", "b e1 @11", "c e1 @12", "- e1 @20"},
		held:    map[int]Held{2: {Epoch: 1, RecSeq: 12}},
		want:    []string{"acquire 1 (b e1 @11)", "release 2 (c e1 @12)", "acquire 3 (- e1 @20)"}, // 0→a 1→c 2→a 3→c
	}, {
		name: "lease expiry: a member silent for more than a lease is dead and its partitions are taken over",
		self: "a", seen: map[string]time.Duration{"a": 0, "b": lease + time.Millisecond}, records: shared,
		held: map[int]Held{0: {Epoch: 1, RecSeq: 10}, 2: {Epoch: 1, RecSeq: 12}},
		want: []string{"acquire 1 (b e1 @11)", "acquire 3 (b e1 @13)"},
	}, {
		name: "lease expiry: a member heard from a lease ago is still alive",
		self: "a", seen: map[string]time.Duration{"a": 0, "b": lease}, records: shared,
		held: map[int]Held{0: {Epoch: 1, RecSeq: 10}, 2: {Epoch: 1, RecSeq: 12}},
		want: nil,
	}, {
		name: "stale view: a member that has not seen its own heartbeat for half a lease takes nothing from a silent owner",
		self: "a", seen: map[string]time.Duration{"a": lease/2 + time.Millisecond, "b": 2 * lease},
		records: []string{"a e1 @10", "b e1 @11", "a e1 @12", "- e1 @20"},
		held:    map[int]Held{0: {Epoch: 1, RecSeq: 10}, 2: {Epoch: 1, RecSeq: 12}},
		want:    []string{"acquire 3 (- e1 @20)"}, // a free partition is taken all the same
	}, {
		name: "stale view: fresh up to half a lease",
		self: "a", seen: map[string]time.Duration{"a": lease / 2, "b": 2 * lease},
		records: []string{"a e1 @10", "b e1 @11", "a e1 @12", "- e1 @20"},
		held:    map[int]Held{0: {Epoch: 1, RecSeq: 10}, 2: {Epoch: 1, RecSeq: 12}},
		want:    []string{"acquire 1 (b e1 @11)", "acquire 3 (- e1 @20)"},
	}, {
		name: "stale view: a member that never saw its own heartbeat takes nothing from a silent owner",
		self: "a", seen: map[string]time.Duration{"b": 2 * lease}, records: []string{"b e1 @11"},
		want: nil,
	}, {
		name: "a stale member still counts itself live: it keeps what it holds",
		self: "a", seen: map[string]time.Duration{"a": 10 * lease, "b": 0}, records: shared,
		held: map[int]Held{0: {Epoch: 1, RecSeq: 10}, 2: {Epoch: 1, RecSeq: 12}},
		want: nil,
	}, {
		name: "not synced: no plan at all, not even the commit leader",
		self: "b", leader: "b", seen: map[string]time.Duration{"a": 0, "b": 0}, records: four,
		unsynced: true, syncIn: time.Millisecond,
		want: nil,
	}, {
		name: "not synced, at the forced sync deadline: still nothing",
		self: "b", leader: "b", seen: map[string]time.Duration{"a": 0, "b": 0}, records: four,
		unsynced: true, syncIn: 0,
		want: nil,
	}, {
		name: "not synced, past the forced sync deadline: the partial view is acted on",
		self: "a", seen: map[string]time.Duration{"a": 0, "b": 2 * lease}, records: shared,
		held:     map[int]Held{0: {Epoch: 1, RecSeq: 10}, 2: {Epoch: 1, RecSeq: 12}},
		unsynced: true, syncIn: -time.Millisecond,
		want: []string{"acquire 1 (b e1 @11)", "acquire 3 (b e1 @13)"},
	}, {
		name: "not synced, past the forced sync deadline, stale: free partitions only",
		self: "a", seen: map[string]time.Duration{"b": 2 * lease},
		records:  []string{"", "b e1 @11"},
		unsynced: true, syncIn: -time.Millisecond,
		want: []string{"acquire 0 (- e0 @0)"},
	}})
}

// TestPlanOwnership: the records decide between claimants; failed
// operations back off; what a failed acquisition leaves is cleaned up.
func TestPlanOwnership(t *testing.T) {
	ab := map[string]time.Duration{"a": 0, "b": 0}
	runPlans(t, []planCase{{
		// a's heartbeats stopped reaching b (TestStaleOwner); b, fresh,
		// took 0 over by compare-and-set on a's record.
		name: "split brain: the claimant whose record was superseded drops",
		self: "a", seen: map[string]time.Duration{"a": 10 * lease, "b": 0}, records: []string{"b e4 @12"},
		held: map[int]Held{0: {Epoch: 3, RecSeq: 10}},
		want: []string{"drop 0: taken over by b (b e4 @12)"},
	}, {
		name: "split brain: the claimant whose record is the latest keeps",
		self: "b", seen: map[string]time.Duration{"b": 0}, records: []string{"b e4 @12"},
		held: map[int]Held{0: {Epoch: 4, RecSeq: 12}},
		want: nil,
	}, {
		name: "split brain: a superseded holder drops even if the partition is still its own",
		self: "a", seen: ab, records: []string{"b e4 @12", ""},
		held: map[int]Held{0: {Epoch: 3, RecSeq: 10}},
		want: []string{"drop 0: taken over by b (b e4 @12)"},
	}, {
		// Another process under the same name (a misconfiguration), or
		// this one's earlier life, took it.
		name: "a later record of this member's own name at another epoch is a takeover too",
		self: "a", seen: ab, records: []string{"a e5 @14", ""},
		held: map[int]Held{0: {Epoch: 4, RecSeq: 12}},
		want: []string{"drop 0: taken over by a (a e5 @14)"},
	}, {
		name: "its own record not seen yet: an older record is no reason to drop",
		self: "a", seen: ab, records: []string{"- e3 @10", "b e1 @5"},
		held: map[int]Held{0: {Epoch: 4, RecSeq: 12}},
		want: nil,
	}, {
		// Views that disagree: each thinks the other dead. Both plan a
		// compare-and-set on the record at 10; the server lets one win.
		name: "two claimants from one record: a plans the compare-and-set on its sequence",
		self: "a", seen: map[string]time.Duration{"a": 0, "b": 2 * lease}, records: []string{"- e3 @10"},
		want: []string{"acquire 0 (- e3 @10)"},
	}, {
		name: "two claimants from one record: b plans the same compare-and-set",
		self: "b", seen: map[string]time.Duration{"a": 2 * lease, "b": 0}, records: []string{"- e3 @10"},
		want: []string{"acquire 0 (- e3 @10)"},
	}, {
		name: "two claimants: the loser, having learned the winner's record, waits while the winner lives",
		self: "a", seen: ab, records: []string{"b e4 @12", "b e4 @13"},
		want: nil,
	}, {
		name: "two claimants: the winner hands the partition to the loser, now that they agree",
		self: "b", leader: "a", seen: ab, records: []string{"b e4 @12", "b e4 @13"},
		held: map[int]Held{0: {Epoch: 4, RecSeq: 12}, 1: {Epoch: 4, RecSeq: 13}},
		want: []string{"release 0 (b e4 @12)"},
	}, {
		// The new owner's record carries the replay bound (TestNext): the
		// old owner's late commits are caught by the applied markers
		// (TestLateCommitOfAnOldEpoch).
		name: "an old epoch's owner drops when the new epoch's record shows",
		self: "a", seen: ab, records: []string{"a e1 @1", "", "b e4 r120 @15", ""},
		held: map[int]Held{0: {Epoch: 1, RecSeq: 1}, 2: {Epoch: 3, RecSeq: 10}},
		want: []string{"drop 2: taken over by b (b e4 r120 @15)"},
	}, {
		name: "backoff after a failed acquisition: the partition is left alone",
		self: "a", seen: ab, records: []string{"- e3 @10", ""},
		backoff: map[int]time.Duration{0: 100 * time.Millisecond},
		want:    nil,
	}, {
		name: "backoff after a failed acquisition: tried again once it ends",
		self: "a", seen: ab, records: []string{"- e3 @10", ""},
		backoff: map[int]time.Duration{0: 0},
		want:    []string{"acquire 0 (- e3 @10)"},
	}, {
		name: "backoff after a failed release: the record is left alone",
		self: "a", seen: ab, records: []string{"a e1 @3", "a e2 @9"},
		held:    map[int]Held{0: {Epoch: 1, RecSeq: 3}},
		backoff: map[int]time.Duration{1: time.Second},
		want:    nil,
	}, {
		name: "an acquisition or release in flight: left alone",
		self: "a", seen: ab, records: []string{"- e3 @10", "a e2 @9"},
		busy: []int{0, 1},
		want: nil,
	}, {
		name: "a record left by a failed acquisition is released when the partition is another's",
		self: "a", seen: ab, records: []string{"", "a e2 @9"},
		want: []string{"acquire 0 (- e0 @0)", "release 1 (a e2 @9)"},
	}, {
		name: "a record left by a failed acquisition is taken at the next epoch when the partition is still this member's",
		self: "a", seen: ab, records: []string{"a e2 @9", ""},
		want: []string{"acquire 0 (a e2 @9)"},
	}, {
		name: "a release clears the record held, not an older one on the board",
		self: "a", seen: ab, records: []string{"", "- e1 @5"},
		held: map[int]Held{1: {Epoch: 2, RecSeq: 9, Replay: 50}},
		want: []string{"acquire 0 (- e0 @0)", "release 1 (a e2 r50 @9)"},
	}})
}

// TestPlanLeader: the commit leader is the first live member by name.
func TestPlanLeader(t *testing.T) {
	runPlans(t, []planCase{{
		name: "the first live member by name",
		self: "c", leader: "a", seen: map[string]time.Duration{"a": 2 * lease, "b": 0, "c": 0},
		want: []string{"lead b"},
	}, {
		name: "already in use: nothing to do",
		self: "c", leader: "b", seen: map[string]time.Duration{"a": 2 * lease, "b": 0, "c": 0},
		want: nil,
	}, {
		name: "this member, when it sorts first",
		self: "a", leader: "b", seen: map[string]time.Duration{"a": 0, "b": 0},
		want: []string{"lead a"},
	}, {
		name: "a member that left leads no more",
		self: "b", leader: "a", seen: map[string]time.Duration{"b": 0},
		want: []string{"lead b"},
	}, {
		name: "a stale member counts itself live",
		self: "a", leader: "b", seen: map[string]time.Duration{"a": 10 * lease, "b": 0},
		want: []string{"lead a"},
	}, {
		name: "the leader comes first in the plan",
		self: "b", leader: "b", seen: map[string]time.Duration{"a": 0, "b": 0}, records: []string{"", ""},
		want: []string{"lead a", "acquire 1 (- e0 @0)"},
	}})
}

func TestRecordString(t *testing.T) {
	for _, s := range []string{"- e0 @0", "a e1 @10", "b e4 r120 @15", "- e3 r7 @9"} {
		if got := parseRecord(t, s).String(); got != s {
			t.Errorf("%q reads back as %q", s, got)
		}
	}
}
