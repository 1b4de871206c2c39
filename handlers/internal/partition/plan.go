package partition

import (
	"slices"
	"strconv"
	"time"
)

// View is everything [Plan] decides from: what this member has learned of
// its group (the embedded [Board]), what it does itself with each
// partition, and the time.
type View struct {
	Board
	Self   string        // this member's name
	Now    time.Time     // the time of the plan
	Lease  time.Duration // a member not heard from for a lease is dead
	SyncBy time.Time     // an unsynced board is acted on once Now is past it
	Leader string        // the commit leader this member uses now (Self when itself)
	Parts  []Local       // this member's side of each partition, indexed like Records (missing: zero)
}

// Local is what this member itself does with a partition.
type Local struct {
	Held     *Held     // the subscription consumed here, nil if none
	Busy     bool      // an acquisition or a release is in flight
	NotUntil time.Time // after a failed acquisition or release: left alone until then
}

// Op is what an [Action] does.
type Op int

const (
	// Lead makes Action.Member the commit leader that this member's
	// commits go through (itself when it is Self).
	Lead Op = iota + 1
	// Acquire takes partition P: a record of the next epoch ([Next]),
	// written by compare-and-set on Action.Record.Seq, then the epoch's
	// consumer.
	Acquire
	// Release hands partition P back: stop consuming it if it is held
	// (letting the events started finish), then write
	// Action.Record.Released() by compare-and-set on Action.Record.Seq.
	Release
	// Drop stops consuming partition P at once: Action.Record, a later
	// record than the one that made it this member's, names another owner
	// or epoch.
	Drop
)

// Action is one step of a [Plan].
type Action struct {
	Op     Op
	P      int    // the partition (not for Lead)
	Record Record // the record the action replaces (Acquire, Release) or that superseded the subscription (Drop)
	Member string // Lead: the commit leader
	Reason string // Drop: why, for the log
}

// String shows the action as the tests spell it: "lead a",
// "acquire 1 (- e2 @7)", "release 1 (b e2 @9)", "drop 0: taken over by a
// (a e4 @12)".
func (a Action) String() string {
	p := strconv.Itoa(a.P)
	switch a.Op {
	case Lead:
		return "lead " + a.Member
	case Acquire:
		return "acquire " + p + " (" + a.Record.String() + ")"
	case Release:
		return "release " + p + " (" + a.Record.String() + ")"
	case Drop:
		return "drop " + p + ": " + a.Reason + " (" + a.Record.String() + ")"
	}
	return "op " + strconv.Itoa(int(a.Op))
}

// Plan compares the partitions this member consumes with the assignment
// its view gives, and returns what to do: first, if the commit leader
// changes, a Lead; then at most one action per partition, in partition
// order. It returns nothing until the board is synced or v.SyncBy has
// passed. See the package documentation for the rules.
func Plan(v View) []Action {
	if !v.Synced && !v.Now.After(v.SyncBy) {
		return nil
	}
	// Only a member that sees its own heartbeats come back promptly trusts
	// its view enough to think another member dead.
	fresh := v.Now.Sub(v.Members[v.Self]) <= v.Lease/2
	live := []string{v.Self}
	alive := map[string]bool{v.Self: true}
	for m, at := range v.Members {
		if m != v.Self && v.Now.Sub(at) <= v.Lease {
			live = append(live, m)
			alive[m] = true
		}
	}
	slices.Sort(live)

	var acts []Action
	if live[0] != v.Leader {
		acts = append(acts, Action{Op: Lead, Member: live[0]})
	}
	for p, rec := range v.Records {
		var l Local
		if p < len(v.Parts) {
			l = v.Parts[p]
		}
		if l.Busy || v.Now.Before(l.NotUntil) {
			continue
		}
		held, want := l.Held, live[p%len(live)]
		switch {
		case held != nil && rec.Seq > held.RecSeq && (rec.Owner != v.Self || rec.Epoch != held.Epoch):
			acts = append(acts, Action{Op: Drop, P: p, Record: rec, Reason: "taken over by " + rec.Owner})
		case held != nil && want != v.Self:
			acts = append(acts, Action{Op: Release, P: p, Record: held.Record(v.Self)})
		case held == nil && want == v.Self && (rec.Owner == "" || rec.Owner == v.Self || fresh && !alive[rec.Owner]):
			acts = append(acts, Action{Op: Acquire, P: p, Record: rec})
		case held == nil && rec.Owner == v.Self && want != v.Self:
			// A record left from a failed acquisition (or a subscription
			// that ended): the partition is another's.
			acts = append(acts, Action{Op: Release, P: p, Record: rec})
		}
	}
	return acts
}

// Rewatch reports whether a watch of the group started at started should
// be replaced by a new one: it has had a lease to show this member its own
// heartbeat (last seen at selfSeen) and has not. A watch whose consumer
// was lost with a server delivers nothing more, ever.
func Rewatch(now, selfSeen, started time.Time, lease time.Duration) bool {
	return now.Sub(selfSeen) > lease && now.Sub(started) > lease
}

// Beat returns how often a member publishes its heartbeat (and plans
// again): every sixth of a lease, so that a member misses a few before it
// looks stale to itself (half a lease) or dead to the others (a lease).
func Beat(lease time.Duration) time.Duration {
	return lease / 6
}

// HeartbeatTTL returns the time to live of a heartbeat in the stream: two
// leases, in whole seconds (the server counts TTLs in seconds), at least
// one. Deadness is judged by a heartbeat's age, not by its expiry; the TTL
// only keeps a dead member's heartbeat from being stored forever.
func HeartbeatTTL(lease time.Duration) time.Duration {
	return max(2*lease, time.Second).Round(time.Second)
}
