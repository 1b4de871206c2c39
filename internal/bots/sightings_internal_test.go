package bots

import (
	"fmt"
	"slices"
	"testing"
)

// TestNear: a bot offers trades to the players it saw last, within view,
// each once, and to none that logged out.
func TestNear(t *testing.T) {
	p := &player{x: 10, y: 10, view: 8}
	p.seen.add("ann", 12, 12)
	p.seen.add("bob", 30, 10) // out of view
	p.seen.add("ann", 11, 12) // seen again
	p.seen.add("cy", 2, 18)   // at the corner of the view
	if got, want := p.near(), []string{"ann", "cy"}; !slices.Equal(got, want) {
		t.Errorf("near() = %q, want %q", got, want)
	}
	p.seen.forget("ann")
	if got, want := p.near(), []string{"cy"}; !slices.Equal(got, want) {
		t.Errorf("after ann logged out: near() = %q, want %q", got, want)
	}
	// Sightings are a ring: the oldest give way.
	for i := range len(p.seen.at) {
		p.seen.add(fmt.Sprintf("p%02d", i), 10, 10)
	}
	got := p.near()
	if len(got) != len(p.seen.at) || slices.Contains(got, "cy") {
		t.Errorf("after %d more sightings: near() = %q, want only the %d newest", len(p.seen.at), got, len(p.seen.at))
	}
	p.seen = sightings{} // a new region
	if got := p.near(); len(got) != 0 {
		t.Errorf("in a new region: near() = %q, want none", got)
	}
}
