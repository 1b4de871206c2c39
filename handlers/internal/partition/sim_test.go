package partition

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// sim runs whole groups on the pure core: a stream that keeps heartbeats
// and records (compare-and-set on a record's sequence), members that plan
// every beat from what the stream shows and carry their plans out at once.
// The watch is perfect: what a member sees is what the stream holds. An
// old owner learns of a takeover from the new record alone (Drop), not
// from the deletion of its consumer, which the I/O also reports: the
// overlap is at its longest.
type sim struct {
	t       *testing.T
	now     time.Time
	seq     uint64
	records []Record
	beats   map[string]time.Time // latest heartbeat stored of each member
	members map[string]*simMember
	takes   int            // epochs won, over the whole run
	overlap map[string]int // "member p": rounds a member has held a partition taken over since
}

type simMember struct {
	name     string
	joined   time.Time
	muted    bool // its heartbeats stop reaching the stream; it goes on working
	leader   string
	held     map[int]Held
	notUntil []time.Time
}

func newSim(t *testing.T, partitions int) *sim {
	return &sim{t: t, now: t0, records: make([]Record, partitions), beats: make(map[string]time.Time), members: make(map[string]*simMember), overlap: make(map[string]int)}
}

func (s *sim) start(name string) {
	s.members[name] = &simMember{name: name, joined: s.now, leader: name, held: make(map[int]Held), notUntil: make([]time.Time, len(s.records))}
	s.beats[name] = s.now
}

// kill ends a member at once: its heartbeats stop, and so does its work.
func (s *sim) kill(name string) { delete(s.members, name) }

// leave stops a member the orderly way: its delete heartbeat, then the
// release of what it held.
func (s *sim) leave(name string) {
	m := s.members[name]
	delete(s.members, name)
	delete(s.beats, name)
	for p, h := range m.held {
		rec := h.Record(name)
		s.cas(p, rec.Released(), rec.Seq)
	}
}

func (s *sim) cas(p int, rec Record, last uint64) bool {
	if s.records[p].Seq != last {
		return false
	}
	s.seq++
	rec.Seq = s.seq
	s.records[p] = rec
	return true
}

// round advances the time by a beat: every member heartbeats, then plans
// and carries its plan out, in name order.
func (s *sim) round() {
	s.now = s.now.Add(Beat(lease))
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range s.members {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		if !s.members[n].muted {
			s.beats[n] = s.now
		}
	}
	for _, n := range names {
		m := s.members[n]
		v := View{
			Board:  Board{Members: make(map[string]time.Time), Records: slices.Clone(s.records), Synced: true},
			Self:   n,
			Now:    s.now,
			Lease:  lease,
			SyncBy: m.joined.Add(lease),
			Leader: m.leader,
			Parts:  make([]Local, len(s.records)),
		}
		for b, at := range s.beats {
			v.Members[b] = at
		}
		for p := range v.Parts {
			if h, ok := m.held[p]; ok {
				v.Parts[p].Held = &h
			}
			v.Parts[p].NotUntil = m.notUntil[p]
		}
		for _, a := range Plan(v) {
			switch a.Op {
			case Lead:
				m.leader = a.Member
			case Drop:
				delete(m.held, a.P)
			case Release:
				delete(m.held, a.P)
				if !s.cas(a.P, a.Record.Released(), a.Record.Seq) {
					m.notUntil[a.P] = s.now.Add(Beat(lease))
				}
			case Acquire:
				next, _ := Next(n, a.Record, nil, 0)
				if !s.cas(a.P, next, a.Record.Seq) {
					m.notUntil[a.P] = s.now.Add(Beat(lease))
					continue
				}
				s.takes++
				m.held[a.P] = Held{Epoch: next.Epoch, RecSeq: s.records[a.P].Seq, Replay: next.Replay}
			}
		}
	}
	// A member holding a partition taken over from it stops at its next
	// plan: the overlap lasts one round at most.
	for n, m := range s.members {
		for p, h := range m.held {
			key := fmt.Sprint(n, " ", p)
			if h.RecSeq == s.records[p].Seq {
				delete(s.overlap, key)
				continue
			}
			if s.overlap[key]++; s.overlap[key] > 1 {
				s.t.Fatalf("%s still holds partition %d (%+v) a round after it was taken over (%s)", n, p, h, s.records[p])
			}
		}
	}
}

// settled reports whether every partition is held by the member the
// assignment gives among those, and every one of them uses the first as
// its commit leader; it describes what is held otherwise.
func (s *sim) settled(members ...string) (bool, string) {
	slices.Sort(members)
	var b strings.Builder
	ok := true
	for p := range s.records {
		var holders []string
		for n, m := range s.members {
			if _, held := m.held[p]; held {
				holders = append(holders, n)
			}
		}
		if want := members[p%len(members)]; len(holders) != 1 || holders[0] != want {
			ok = false
		}
		fmt.Fprintf(&b, " %d:%v", p, holders)
	}
	for _, n := range members {
		if s.members[n].leader != members[0] {
			ok = false
			fmt.Fprintf(&b, " %s leads via %s", n, s.members[n].leader)
		}
	}
	return ok, b.String()
}

// settle runs rounds until the group has settled on members, and fails
// unless it does within the given time.
func (s *sim) settle(within time.Duration, members ...string) time.Duration {
	s.t.Helper()
	from := s.now
	for s.now.Sub(from) <= within {
		if ok, _ := s.settled(members...); ok {
			return s.now.Sub(from)
		}
		s.round()
	}
	_, state := s.settled(members...)
	s.t.Fatalf("not settled on %v within %v:%s", members, within, state)
	return 0
}

// TestSimGroup runs a group of workers through joins, a crash, a stale
// member and a departure, and checks that each time it settles on the
// assignment (p to the (p mod n)-th live member by name) within the time
// the protocol promises, with one epoch per change of ownership.
func TestSimGroup(t *testing.T) {
	s := newSim(t, 16)
	s.start("b")
	s.settle(lease, "b")
	s.start("a")
	s.start("c")
	s.settle(lease, "a", "b", "c")
	s.settle(0, "a", "b", "c") // and stays

	takes := s.takes
	s.start("d")
	s.settle(lease, "a", "b", "c", "d")
	if got := s.takes - takes; got != 10 {
		t.Errorf("d's joining took %d epochs; want 10, one per partition that changes owner (all but 0, 1, 2, 12, 13, 14)", got)
	}

	// A crash: b's partitions move once it has been silent for a lease.
	s.kill("b")
	d := s.settle(2*lease, "a", "c", "d")
	t.Logf("a crashed member's partitions moved after %v (lease %v)", d, lease)
	if d <= lease {
		t.Errorf("b's partitions moved %v after its crash, within its lease %v", d, lease)
	}

	// A stale member: a goes on working, but its heartbeats stop reaching
	// the stream. The others take its partitions over after a lease, and
	// it drops them (its own view is stale, so it takes nothing back).
	s.members["a"].muted = true
	s.settleWithout(3*lease, "a", "c", "d")
	for range 12 {
		s.round()
		if len(s.members["a"].held) != 0 {
			t.Fatalf("the stale member took partitions back: %v", s.members["a"].held)
		}
	}
	s.kill("a")

	// An orderly departure: c's partitions move at once.
	s.leave("c")
	if d := s.settle(lease/2, "d"); d > Beat(lease) {
		t.Errorf("c's partitions moved %v after it left; want within a beat", d)
	}
}

// settleWithout is settle with a stale member: the others settle among
// themselves while it holds nothing (it still thinks itself the leader).
func (s *sim) settleWithout(within time.Duration, stale string, members ...string) {
	s.t.Helper()
	from := s.now
	for s.now.Sub(from) <= within {
		if ok, _ := s.settled(members...); ok && len(s.members[stale].held) == 0 {
			return
		}
		s.round()
	}
	_, state := s.settled(members...)
	s.t.Fatalf("not settled on %v without %s within %v:%s", members, stale, within, state)
}
