package edge

import (
	"testing"

	"github.com/starbus/starbus/bus"
)

// interestItemAt is the notice of a session's interest in "near" moving
// from prev to (x, y).
func interestItemAt(seq uint64, prev *bus.Interest, x, y float64) outItem {
	in := bus.Interest{Area: "near", X: x, Y: y, Radius: 8, Cell: 8, Delivery: bus.DeliveryReliable}
	return outItem{seq: seq, kind: itemInterest, channel: "near", interest: &bus.InterestNotice{Interest: in, Prev: prev}}
}

// TestAreaIndex walks a session's square over the plane and checks that
// the edge's index holds it in exactly the cells its square touches.
func TestAreaIndex(t *testing.T) {
	s := &Server{}
	s.init()
	ss := &session{areas: map[string]bus.Interest{}, cells: map[cellKey]struct{}{}}
	var prev *bus.Interest
	for i, p := range [][2]float64{{0, 0}, {1, 0}, {8, 0}, {8, 9}, {-20, 100}, {-20, 100}} {
		it := interestItemAt(uint64(i+1), prev, p[0], p[1])
		ss.mu.Lock()
		_, tell := s.applyInterest(ss, it)
		ss.mu.Unlock()
		if tell != (i == 0) {
			t.Errorf("step %d: told the client %v", i, tell)
		}
		want := map[cellKey]bool{}
		r := it.interest.Cells()
		for x := r.X0; x <= r.X1; x++ {
			for y := r.Y0; y <= r.Y1; y++ {
				want[cellKey{"near", x, y}] = true
			}
		}
		if len(s.cells) != len(want) || len(ss.cells) != len(want) {
			t.Fatalf("step %d at %v: index %d cells, session %d, want %d", i, p, len(s.cells), len(ss.cells), len(want))
		}
		for k := range want {
			l := s.cells[k]
			if l == nil {
				t.Errorf("step %d: no cell %+v in the index", i, k)
				continue
			}
			if _, ok := l.members[ss]; !ok {
				t.Errorf("step %d: not indexed at %+v", i, k)
			}
		}
		prev = &it.interest.Interest
	}
	drop := interestItemAt(9, prev, prev.X, prev.Y)
	drop.interest.Drop = true
	ss.mu.Lock()
	left, tell := s.applyInterest(ss, drop)
	ss.mu.Unlock()
	if !tell || left.kind != itemLeave || len(s.cells) != 0 || len(ss.cells) != 0 {
		t.Fatalf("after the drop: told %v (%v), %d cells indexed", tell, left.kind, len(s.cells))
	}
}

// BenchmarkApplyInterest measures the edge's cost of a move of a
// session's square (radius 8, cells of 8): the notice applied, the index
// changed when the square crosses a cell border (one step in eight).
func BenchmarkApplyInterest(b *testing.B) {
	s := &Server{}
	s.init()
	ss := &session{areas: map[string]bus.Interest{}, cells: map[cellKey]struct{}{}}
	var prev *bus.Interest
	items := make([]outItem, 64)
	for i := range items {
		items[i] = interestItemAt(uint64(i+1), prev, float64(i), 0)
		prev = &items[i].interest.Interest
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ss.mu.Lock()
		s.applyInterest(ss, items[i%len(items)])
		ss.mu.Unlock()
	}
}
