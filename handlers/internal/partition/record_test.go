package partition

import (
	"testing"
	"time"
)

// TestNext: the next epoch starts after the lowest ack floor of the
// earlier epochs' consumers and replays up to the highest sequence they
// delivered.
func TestNext(t *testing.T) {
	for _, c := range []struct {
		name    string
		rec     string
		earlier []Consumer
		last    uint64
		want    string
		start   uint64
	}{
		{"the first epoch: from the first stored, replaying everything stored", "", nil, 500, "a e1 r500 @0", 0},
		{"no earlier consumer left (lost with a restart): the same", "b e3 r40 @10", nil, 500, "a e4 r500 @0", 0},
		{"no earlier consumer, a record's bound above the stream's last", "b e3 r600 @10", nil, 500, "a e4 r600 @0", 0},
		{"one earlier epoch: after its ack floor, replaying what it delivered", "b e3 @10", []Consumer{{AckFloor: 100, Delivered: 120}}, 0, "a e4 r120 @0", 101},
		{"several earlier epochs: the lowest floor, the highest delivered", "b e3 @10",
			[]Consumer{{AckFloor: 100, Delivered: 120}, {AckFloor: 90, Delivered: 95}}, 0, "a e4 r120 @0", 91},
		{"the record's own bound, if higher, is kept", "b e3 r150 @10", []Consumer{{AckFloor: 100, Delivered: 120}}, 0, "a e4 r150 @0", 101},
		{"nothing acknowledged yet: from the first event", "b e3 @10", []Consumer{{AckFloor: 0, Delivered: 7}}, 0, "a e4 r7 @0", 1},
		{"an earlier consumer that delivered nothing", "- e3 r9 @10", []Consumer{{}}, 0, "a e4 r9 @0", 1},
		{"the stream's last sequence is not looked at when earlier consumers tell", "b e3 @10", []Consumer{{AckFloor: 100, Delivered: 120}}, 999, "a e4 r120 @0", 101},
		{"taking back a record of its own", "a e7 r3 @10", []Consumer{{AckFloor: 50, Delivered: 60}}, 0, "a e8 r60 @0", 51},
	} {
		t.Run(c.name, func(t *testing.T) {
			next, start := Next("a", parseRecord(t, c.rec), c.earlier, c.last)
			if next.String() != c.want || start != c.start {
				t.Errorf("Next = %s from %d; want %s from %d", next, start, c.want, c.start)
			}
		})
	}
}

// TestMayBeApplied: which events get the applied-marker check before
// they run.
func TestMayBeApplied(t *testing.T) {
	for _, c := range []struct {
		name                    string
		seq, deliveries, replay uint64
		want                    bool
	}{
		{"first delivery past the replay bound", 121, 1, 120, false},
		{"first delivery at the replay bound", 120, 1, 120, true},
		{"first delivery below the replay bound", 101, 1, 120, true},
		{"a redelivery past the replay bound", 125, 2, 120, true},
		{"no replay bound (a partition's first epoch, or an alarm)", 1, 1, 0, false},
		{"no replay bound, redelivered", 1, 3, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := MayBeApplied(c.seq, c.deliveries, c.replay); got != c.want {
				t.Errorf("MayBeApplied(%d, %d, %d) = %v, want %v", c.seq, c.deliveries, c.replay, got, c.want)
			}
		})
	}
}

// TestLateCommitOfAnOldEpoch walks the planning side of an old owner's
// late commit: a held partition 0 at epoch 3 and had delivered up to event
// 120, acknowledged up to 100, when b (thinking a dead) took it over.
func TestLateCommitOfAnOldEpoch(t *testing.T) {
	old := parseRecord(t, "a e3 r0 @10")
	next, start := Next("b", old, []Consumer{{AckFloor: 100, Delivered: 120}}, 0)
	if next.Epoch != 4 || start != 101 || next.Replay != 120 {
		t.Fatalf("b's epoch: %s from %d; want epoch 4 from 101 replaying up to 120", next, start)
	}
	// Stored at 15, b's record reaches a's board: a drops the partition.
	next.Seq = 15
	v := View{
		Board: Board{Members: map[string]time.Time{"a": t0, "b": t0}, Records: []Record{next}, Synced: true},
		Self:  "a", Now: t0, Lease: lease, Leader: "a",
		Parts: []Local{{Held: &Held{Epoch: 3, RecSeq: 10}}},
	}
	if got := Plan(v); len(got) != 1 || got[0].Op != Drop {
		t.Fatalf("a's plan: %v; want the partition dropped", got)
	}
	// Meanwhile a may still commit event 110, which it had received: b
	// replays 101..120 with the marker check first, so whichever of them
	// commits 110 second finds its marker and applies nothing.
	for seq := start; seq <= 120; seq++ {
		if !MayBeApplied(seq, 1, next.Replay) {
			t.Fatalf("event %d, which a may have committed, runs at b without the marker check", seq)
		}
	}
	if MayBeApplied(121, 1, next.Replay) {
		t.Error("event 121, never delivered to a, is checked for nothing")
	}
}

// TestDeliveries: a gap in the consumer's delivery sequence ends a
// subscription.
func TestDeliveries(t *testing.T) {
	for _, c := range []struct {
		name  string
		cseqs []uint64
		taken int    // deliveries taken before the first gap
		prev  uint64 // at the gap
	}{
		{"in order", []uint64{1, 2, 3, 4}, 4, 0},
		{"a consumer starting past 1", []uint64{7, 8, 9}, 3, 0},
		{"one lost", []uint64{1, 2, 4, 5}, 2, 2},
		{"lost at once", []uint64{5, 7}, 1, 5},
		{"one repeated", []uint64{1, 2, 2}, 2, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			var d Deliveries
			taken := 0
			for _, s := range c.cseqs {
				prev, ok := d.Take(s)
				if !ok {
					if prev != c.prev {
						t.Errorf("gap at %d after %d, want after %d", s, prev, c.prev)
					}
					break
				}
				taken++
			}
			if taken != c.taken {
				t.Errorf("%d deliveries taken, want %d", taken, c.taken)
			}
		})
	}
}

// TestRecordEncoding pins the stored form of a record: the records of a
// running group's stream must still read after an upgrade.
func TestRecordEncoding(t *testing.T) {
	for _, c := range []struct {
		rec  string
		json string
	}{
		{"a e3 r120 @9", `{"owner":"a","epoch":3,"replay":120}`},
		{"- e3 r120 @9", `{"epoch":3,"replay":120}`},
		{"a e1 @9", `{"owner":"a","epoch":1}`},
		{"- e0 @9", `{"epoch":0}`},
	} {
		rec := parseRecord(t, c.rec)
		if got := string(rec.Encode()); got != c.json {
			t.Errorf("%s encodes as %s, want %s", rec, got, c.json)
		}
		back, err := DecodeRecord([]byte(c.json), 9)
		if err != nil || back != rec {
			t.Errorf("%s decodes as %s, %v; want %s", c.json, back, err, rec)
		}
	}
	if rec := parseRecord(t, "a e3 r120 @9"); rec.Released() != parseRecord(t, "- e3 r120 @0") {
		t.Errorf("%s released is %s", rec, rec.Released())
	}
	if _, err := DecodeRecord([]byte(`{"epoch":"x"}`), 1); err == nil {
		t.Error("a malformed record decodes")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"owner":"a","epoch":3,"replay":120}`), uint64(9))
	f.Add([]byte(`{"epoch":0}`), uint64(0))
	f.Add([]byte(`{"owner":"","epoch":18446744073709551615}`), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, seq uint64) {
		rec, err := DecodeRecord(data, seq)
		if err != nil {
			return
		}
		if rec.Seq != seq {
			t.Fatalf("decoded at %d: %s", seq, rec)
		}
		back, err := DecodeRecord(rec.Encode(), seq)
		if err != nil || back != rec {
			t.Fatalf("%s round-trips as %s, %v", rec, back, err)
		}
	})
}

// TestFollow: a holder follows its record stored again, and nothing else.
func TestFollow(t *testing.T) {
	held := Held{Epoch: 4, RecSeq: 10, Replay: 7}
	for _, c := range []struct {
		name string
		rec  string
		want uint64 // RecSeq after
	}{
		{"its record stored again", "a e4 r7 @30", 30},
		{"the record it holds by, seen again", "a e4 r7 @10", 10},
		{"an older record", "a e4 r7 @5", 10},
		{"taken over by another", "b e5 r9 @30", 10},
		{"its own, at a later epoch (not this subscription's)", "a e5 r7 @30", 10},
		{"released", "- e4 r7 @30", 10},
		{"the same epoch with another replay bound", "a e4 r8 @30", 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := held
			followed := h.Follow("a", parseRecord(t, c.rec))
			if h.RecSeq != c.want || followed != (c.want != held.RecSeq) || h.Epoch != held.Epoch || h.Replay != held.Replay {
				t.Errorf("Follow(%s) = %v: %+v; want RecSeq %d", c.rec, followed, h, c.want)
			}
		})
	}
}
