package edge

import (
	"testing"
	"time"
)

// TestThrottleRules walks the throttle's rules with explicit times.
func TestThrottleRules(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		op         string // "fail", "ok", "wait"
		name, addr string
		at         time.Duration
		want       time.Duration // for "wait"
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"the first failures are free", []step{
			{"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0},
			{"wait", "ann", "a", 0, 0},
			{"fail", "ann", "a", 0, 0},
			{"wait", "ann", "a", 0, throttleBase},
		}},
		{"each failure past them doubles the wait", []step{
			{"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0},
			{"fail", "ann", "a", time.Second, 0},
			{"wait", "ann", "a", time.Second, 2 * time.Second},
			{"fail", "ann", "a", 3 * time.Second, 0},
			{"wait", "ann", "a", 3 * time.Second, 4 * time.Second},
			{"wait", "ann", "a", 5 * time.Second, 2 * time.Second},
			{"wait", "ann", "a", 7 * time.Second, 0},
		}},
		{"one address guessing many names is throttled", []step{
			{"fail", "n1", "a", 0, 0}, {"fail", "n2", "a", 0, 0}, {"fail", "n3", "a", 0, 0},
			{"wait", "n4", "a", 0, throttleBase},
			{"wait", "n4", "b", 0, 0}, // another address is not
		}},
		{"one address cannot lock a name out", []step{
			{"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0},
			{"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0},
			{"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0},
			{"wait", "ann", "a", 0, 64 * time.Second}, // the guesser waits long
			{"wait", "ann", "b", 0, throttleMaxName},  // the player, elsewhere, at most this
		}},
		{"many addresses guessing one name are slowed per name", []step{
			{"fail", "ann", "a", 0, 0}, {"fail", "ann", "b", 0, 0}, {"fail", "ann", "c", 0, 0},
			{"wait", "ann", "d", 0, throttleBase},
			{"wait", "bob", "d", 0, 0},
		}},
		{"success clears the name, not the address", []step{
			{"fail", "ann", "a", 0, 0}, {"fail", "bob", "a", 0, 0}, {"fail", "ann", "a", 0, 0},
			{"ok", "ann", "a", 2 * time.Second, 0},
			{"wait", "ann", "b", 2 * time.Second, 0},
			{"fail", "cy", "a", 2 * time.Second, 0},
			{"wait", "dan", "a", 2 * time.Second, 2 * throttleBase},
		}},
		{"failures are forgotten", []step{
			{"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0},
			{"fail", "ann", "a", 0, 0}, {"fail", "ann", "a", 0, 0},
			{"wait", "ann", "a", throttleForget, 0},
			{"fail", "ann", "a", throttleForget, 0},
			{"wait", "ann", "a", throttleForget, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var th throttle
			for i, s := range tc.steps {
				switch s.op {
				case "fail":
					th.failed(s.name, s.addr, at(s.at))
				case "ok":
					th.succeeded(s.name, s.addr)
				case "wait":
					if got := th.wait(s.name, s.addr, at(s.at)); got != s.want {
						t.Errorf("step %d: wait(%s from %s) at %v = %v, want %v", i, s.name, s.addr, s.at, got, s.want)
					}
				}
			}
		})
	}
}

// TestThrottleBounded: a flood of addresses keeps the record bounded.
func TestThrottleBounded(t *testing.T) {
	var th throttle
	now := time.Unix(1_000_000, 0)
	for i := range 3 * throttleEntries {
		th.failed("ann", string(rune(i)), now)
	}
	if n := len(th.byAddr); n > throttleEntries {
		t.Fatalf("%d addresses recorded, want at most %d", n, throttleEntries)
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:4222": "127.0.0.1", "[::1]:80": "::1", "pipe": "pipe"} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}
