package edge

import (
	"net"
	"sync"
	"time"
)

// Password guessing is slowed by counting failed logins three ways, each
// with its own ceiling:
//
//   - per remote address: one address guessing at many names backs off up
//     to throttleMaxAddr;
//   - per name and address: one address guessing at one name, the same;
//   - per name, from any address: a distributed guess at one name backs
//     off too, but only up to throttleMaxName, so that an attacker cannot
//     lock a player out: the player, from another address, waits at most
//     that long.
//
// After throttleFree failures of a count, each further one doubles its
// wait from throttleBase. A login refused for a wait is answered at once,
// with no password hashed, and is not itself counted. A successful login
// clears the name's counts and the pair's; a count is forgotten
// throttleForget after its last failure. The edge keeps at most
// throttleEntries counts of each kind (past it, a flood of addresses makes
// it forget expired counts, then half of the rest).
const (
	throttleFree    = 3
	throttleBase    = time.Second
	throttleMaxAddr = 5 * time.Minute
	throttleMaxName = 2 * time.Second
	throttleForget  = 15 * time.Minute
	throttleEntries = 100_000
)

// throttle is the edge's record of failed logins. Its methods take the
// time, so that the rules are tested without a clock.
type throttle struct {
	mu                   sync.Mutex
	byAddr, byPair, byNm map[string]*failures
}

type failures struct {
	n    int
	last time.Time
}

// wait returns how long f's count makes the next attempt wait from now,
// given its ceiling.
func (f *failures) wait(now time.Time, ceiling time.Duration) time.Duration {
	if f == nil || f.n < throttleFree || now.Sub(f.last) >= throttleForget {
		return 0
	}
	d := ceiling
	if shift := f.n - throttleFree; shift < 30 {
		d = min(throttleBase<<shift, ceiling)
	}
	return max(f.last.Add(d).Sub(now), 0)
}

// addrKey is the part of a remote address that identifies the client's
// machine: its IP, without the port.
func addrKey(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// wait returns how long a login of name from addr must wait before its
// password is checked; 0 lets it through now.
func (t *throttle) wait(name, addr string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(
		t.byAddr[addr].wait(now, throttleMaxAddr),
		t.byPair[name+" "+addr].wait(now, throttleMaxAddr),
		t.byNm[name].wait(now, throttleMaxName),
	)
}

// failed counts a failed login of name from addr. It reports whether this
// failure started throttling the address or the name (for the operator's
// log).
func (t *throttle) failed(name, addr string, now time.Time) (addrThrottled, nameThrottled bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byAddr == nil {
		t.byAddr, t.byPair, t.byNm = map[string]*failures{}, map[string]*failures{}, map[string]*failures{}
	}
	a := count(t.byAddr, addr, now)
	count(t.byPair, name+" "+addr, now)
	n := count(t.byNm, name, now)
	return a == throttleFree, n == throttleFree
}

// succeeded clears what a successful login of name from addr proves
// harmless: the name's counts. The address's count stays: an address that
// guesses at many names and knows one password is still guessing.
func (t *throttle) succeeded(name, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byPair, name+" "+addr)
	delete(t.byNm, name)
}

// count adds a failure to m[key] and returns the new count.
func count(m map[string]*failures, key string, now time.Time) int {
	f := m[key]
	if f == nil || now.Sub(f.last) >= throttleForget {
		if f == nil && len(m) >= throttleEntries {
			forgetSome(m, now)
		}
		f = &failures{}
		m[key] = f
	}
	f.n++
	f.last = now
	return f.n
}

// forgetSome drops the counts forgotten by now and, if that is not
// enough, half of the others, chosen at random (map order): a flood of
// new addresses costs linear time once per half-table of inserts, not per
// insert.
func forgetSome(m map[string]*failures, now time.Time) {
	for k, f := range m {
		if now.Sub(f.last) >= throttleForget {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < throttleEntries/2 {
			return
		}
		delete(m, k)
	}
}
