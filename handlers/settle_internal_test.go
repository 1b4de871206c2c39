package handlers

import (
	"testing"
	"time"
)

// TestSedimentFloor: the floor is the last sequence seen at least age ago,
// and 0 until the runtime has watched that long.
func TestSedimentFloor(t *testing.T) {
	var p sediment
	t0 := time.Unix(1000, 0)
	age := 3 * time.Second
	for _, c := range []struct {
		at   time.Duration // since t0
		last uint64
		want uint64
	}{
		{0, 10, 0},
		{time.Second, 20, 0},
		{2 * time.Second, 30, 0},
		{3 * time.Second, 40, 10},                  // the first sample is exactly age old
		{3*time.Second + time.Millisecond, 45, 10}, // still the newest that old
		{5 * time.Second, 60, 30},                  // samples at 2 s: the newest at least 3 s old
		{20 * time.Second, 70, 60},                 // a long gap: the last sample before it
		{20*time.Second + time.Millisecond, 75, 60},
	} {
		if got := p.floor(t0.Add(c.at), c.last, age); got != c.want {
			t.Errorf("at %v (last %d): floor %d, want %d", c.at, c.last, got, c.want)
		}
	}
	if len(p.seen) > 3 {
		t.Errorf("%d samples kept, want only those not yet age old and the newest that is", len(p.seen))
	}
}

// TestSedimentBefore: before reads the newest sample at least age old,
// without recording one.
func TestSedimentBefore(t *testing.T) {
	var p sediment
	t0 := time.Unix(1000, 0)
	for i, last := range []uint64{10, 20, 30} {
		p.floor(t0.Add(time.Duration(i)*time.Second), last, time.Minute)
	}
	for _, c := range []struct {
		at   time.Duration
		age  time.Duration
		want uint64
	}{
		{2 * time.Second, time.Second, 20},
		{2*time.Second + time.Millisecond, time.Second, 20},
		{3 * time.Second, time.Second, 30},
		{2 * time.Second, 3 * time.Second, 0},
		{2 * time.Second, 2 * time.Second, 10},
	} {
		if got := p.before(t0.Add(c.at), c.age); got != c.want {
			t.Errorf("before(%v, %v) = %d, want %d", c.at, c.age, got, c.want)
		}
	}
	if len(p.seen) != 3 {
		t.Errorf("%d samples after before, want the 3 recorded", len(p.seen))
	}
}
