package partition

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Record is a partition's ownership record, as stored on the partition's
// subject of the group (sb.<w>.grp.<g>.p.<p>). It is encoded here and
// nowhere else ([Record.Encode], [DecodeRecord]).
type Record struct {
	Owner  string `json:"owner,omitempty"`  // "" once released
	Epoch  uint64 `json:"epoch"`            // names the consumer of this ownership
	Replay uint64 `json:"replay,omitempty"` // events at or below it may already be applied
	Seq    uint64 `json:"-"`                // stream sequence of the record; 0 when there is none
}

// Encode returns the record as stored (without Seq, which the stream
// assigns).
func (r Record) Encode() []byte {
	b, _ := json.Marshal(r) // strings and integers always encode
	return b
}

// DecodeRecord decodes a record stored at stream sequence seq.
func DecodeRecord(data []byte, seq uint64) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("partition: record at %d: %w", seq, err)
	}
	r.Seq = seq
	return r, nil
}

// Released returns the record that hands r's partition back to the group:
// no owner, the same epoch (the next owner takes the one after it), and
// the same replay bound (the events an earlier epoch may have applied are
// still checked by whoever comes next).
func (r Record) Released() Record {
	return Record{Epoch: r.Epoch, Replay: r.Replay}
}

// String shows the record as "owner e<epoch> r<replay> @<seq>", with "-"
// for no owner and the replay bound only when there is one.
func (r Record) String() string {
	owner := r.Owner
	if owner == "" {
		owner = "-"
	}
	s := owner + " e" + strconv.FormatUint(r.Epoch, 10)
	if r.Replay != 0 {
		s += " r" + strconv.FormatUint(r.Replay, 10)
	}
	return s + " @" + strconv.FormatUint(r.Seq, 10)
}

// Held is a partition this member consumes: the epoch it consumes and what
// the record that made the partition its own says.
type Held struct {
	Epoch  uint64 // the epoch consumed
	RecSeq uint64 // stream sequence of the record that made the partition this member's
	Replay uint64 // events at or below it get the applied-marker check first
}

// Record returns the record by which member self holds h.
func (h Held) Record(self string) Record {
	return Record{Owner: self, Epoch: h.Epoch, Replay: h.Replay, Seq: h.RecSeq}
}

// Follow takes in rec, the latest record of the partition h is, held by
// self: if rec is the record that made the partition self's, stored again
// (same owner and epoch, a later sequence), h follows it, so that its
// release's compare-and-set is on the record as it now stands. It reports
// whether it did. Records are stored again, unchanged, so that the
// stream's old blocks can go (a record never rewritten would keep the
// first of them, and with it every block after, for as long as its owner
// holds it).
func (h *Held) Follow(self string, rec Record) bool {
	if rec.Owner != self || rec.Epoch != h.Epoch || rec.Seq <= h.RecSeq || rec.Replay != h.Replay {
		return false
	}
	h.RecSeq = rec.Seq
	return true
}

// Consumer is what an earlier epoch's consumer of a partition, still on the
// server when the partition is taken, says about the events it handed out.
type Consumer struct {
	AckFloor  uint64 // stream sequence at and below which every event was acknowledged
	Delivered uint64 // stream sequence of the last event it delivered
}

// Next returns the record by which self takes the partition whose record
// is rec (epoch rec.Epoch+1; it is written by compare-and-set on rec.Seq),
// and the stream sequence the new epoch's consumer starts at.
//
// The new epoch starts after the lowest ack floor of the earlier epochs'
// consumers still on the server, so that it delivers every event not
// acknowledged, in stream order, before any later one; its replay bound is
// the highest sequence any of them delivered (or the record's own, if
// higher): those events may have been applied by an old owner, and are
// checked against their applied markers before they run.
//
// With no earlier consumer (start 0: the consumer delivers everything
// stored), nothing tells what was handled, so the replay bound covers
// everything stored so far: last is the stream's last sequence, and is not
// looked at when there are earlier consumers.
func Next(self string, rec Record, earlier []Consumer, last uint64) (next Record, start uint64) {
	next = Record{Owner: self, Epoch: rec.Epoch + 1, Replay: rec.Replay}
	if len(earlier) == 0 {
		next.Replay = max(next.Replay, last)
		return next, 0
	}
	floor := earlier[0].AckFloor
	for _, c := range earlier {
		floor = min(floor, c.AckFloor)
		next.Replay = max(next.Replay, c.Delivered)
	}
	return next, floor + 1
}

// MayBeApplied reports whether the event stored at seq, delivered for the
// deliveries-th time through a subscription whose replay bound is replay,
// may have been applied already, so that its applied marker is checked
// before it runs: a redelivery (a worker may have committed it and died
// before its ack), or an event an earlier epoch delivered (its owner may
// have committed it, or may still be about to: its commit then fails on the
// marker the new owner's commit wrote).
func MayBeApplied(seq, deliveries, replay uint64) bool {
	return deliveries > 1 || seq <= replay
}

// Deliveries follows the consumer sequences of one subscription's
// deliveries. Every delivery, first or repeated, takes the consumer's next
// sequence. A gap is a delivery lost on its way (the connection to a node
// that died with it in flight): the server redelivers it only after the
// ack wait, and meanwhile delivers the partition's later events, which
// would then run before it. So a gap ends the subscription; the
// partition's next epoch starts at its ack floor and delivers the lost
// event first. The zero value is ready for a subscription's first
// delivery, whatever its sequence.
type Deliveries struct{ last uint64 }

// Take records the delivery of consumer sequence c and reports whether it
// follows the one before (the first always does); prev is the sequence of
// the delivery before, 0 if none. After a gap, Take records nothing.
func (d *Deliveries) Take(c uint64) (prev uint64, ok bool) {
	prev = d.last
	if prev != 0 && c != prev+1 {
		return prev, false
	}
	d.last = c
	return prev, true
}
