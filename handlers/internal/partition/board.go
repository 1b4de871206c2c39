package partition

import (
	"maps"
	"slices"
	"time"
)

// Board is what a member has learned of its group from the group's
// subjects: when each member's heartbeat was last seen, and the latest
// record of each partition. Its caller feeds it what its watch delivers;
// a Board is not safe for concurrent use.
type Board struct {
	Members map[string]time.Time // when each member's latest heartbeat was seen
	Records []Record             // each partition's latest record known (Seq 0: none)
	Synced  bool                 // a watch has caught up with what was stored when it started
}

// NewBoard returns an empty board of a group sharing the given number of
// partitions.
func NewBoard(partitions int) Board {
	return Board{Members: make(map[string]time.Time), Records: make([]Record, partitions)}
}

// Heartbeat records member's heartbeat, seen now and stored at stored (the
// stream's timestamp). Until the watch has caught up with what was stored
// when it started, a heartbeat counts as old as it is: a member dead for a
// while must not look alive because its last heartbeat was delivered late.
// A heartbeat never makes a member's last sighting older.
func (b *Board) Heartbeat(member string, now, stored time.Time, caughtUp bool) {
	at := now
	if !caughtUp && stored.Before(at) {
		at = stored
	}
	if at.After(b.Members[member]) {
		b.Members[member] = at
	}
}

// Leave forgets member: it published its delete heartbeat, leaving the
// group, and is dead at once rather than after a lease.
func (b *Board) Leave(member string) {
	delete(b.Members, member)
}

// Learn makes rec partition p's record if it was stored after the one
// known (by stream sequence: every change of ownership is a
// compare-and-set on the record before it, so a higher sequence is a
// later change), and reports whether it did.
func (b *Board) Learn(p int, rec Record) bool {
	if p < 0 || p >= len(b.Records) || rec.Seq <= b.Records[p].Seq {
		return false
	}
	b.Records[p] = rec
	return true
}

// Clone returns a copy of the board that shares nothing with it.
func (b Board) Clone() Board {
	b.Members = maps.Clone(b.Members)
	b.Records = slices.Clone(b.Records)
	return b
}
