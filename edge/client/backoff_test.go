package client

import (
	"testing"
	"time"
)

// TestBackoff: the wait before each attempt doubles from min up to max,
// and is drawn between half of that and all of it.
func TestBackoff(t *testing.T) {
	const lo, hi = 50 * time.Millisecond, 2 * time.Second
	least := func(int64) int64 { return 0 }
	most := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct {
		attempt       int
		short, longer time.Duration
	}{
		{1, 25 * time.Millisecond, 50 * time.Millisecond},
		{2, 50 * time.Millisecond, 100 * time.Millisecond},
		{3, 100 * time.Millisecond, 200 * time.Millisecond},
		{6, 800 * time.Millisecond, 1600 * time.Millisecond},
		{7, time.Second, 2 * time.Second},
		{40, time.Second, 2 * time.Second},
		{100, time.Second, 2 * time.Second},
	} {
		if got := backoff(tc.attempt, lo, hi, least); got != tc.short {
			t.Errorf("attempt %d: shortest %v, want %v", tc.attempt, got, tc.short)
		}
		if got := backoff(tc.attempt, lo, hi, most); got != tc.longer {
			t.Errorf("attempt %d: longest %v, want %v", tc.attempt, got, tc.longer)
		}
	}
}
