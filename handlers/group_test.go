package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// partOrder is what sequenceChecker keeps per ordering key.
type partOrder struct {
	Last int      // the last sequence number handled
	N    int      // events handled
	Bad  []string // sequence numbers that did not follow the last one
}

// sequenceChecker handles events whose payload is their part's sequence
// number (1, 2, ...) and records, in the same transaction, any event that
// does not directly follow the previous one: a reordering, a repeat or a
// gap.
func sequenceChecker(delay time.Duration) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		n, err := strconv.Atoi(string(t.Data))
		if err != nil {
			return handlers.Permanent(err)
		}
		var st partOrder
		if err := t.Get(ctx, "order."+t.Part, &st); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if n != st.Last+1 {
			st.Bad = append(st.Bad, fmt.Sprintf("%d after %d", n, st.Last))
		}
		st.Last, st.N = n, st.N+1
		if delay > 0 {
			time.Sleep(delay)
		}
		return t.Put("order."+t.Part, st)
	})
}

// publishRounds publishes each part's sequence numbers 1..rounds, the parts
// interleaved, on regions that change from round to round (a part's
// partition does not depend on its region).
func publishRounds(t *testing.T, env *natstest.Env, parts []string, rounds int) {
	t.Helper()
	var acks []jetstream.PubAckFuture
	stored := func() {
		for _, f := range acks {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatalf("event %s %s not stored: %v", f.Msg().Subject, f.Msg().Data, err)
			case <-time.After(time.Minute):
				t.Fatal("events not stored within a minute")
			}
		}
		acks = acks[:0]
	}
	for i := 1; i <= rounds; i++ {
		if i%10 == 0 {
			stored() // stay under the client's bound on acks outstanding
		}
		for j, p := range parts {
			subj, err := env.World.Event("r"+strconv.Itoa((i+j)%3), p)
			if err != nil {
				t.Fatal(err)
			}
			m := nats.NewMsg(subj)
			m.Header.Set(bus.HeaderType, "seq")
			m.Data = []byte(strconv.Itoa(i))
			f, err := env.JS.PublishMsgAsync(m)
			if err != nil {
				t.Fatal(err)
			}
			acks = append(acks, f)
		}
	}
	stored()
}

// checkOrder reads every part's record and fails the test unless each part
// saw exactly 1..rounds, once each, in order.
func checkOrder(t *testing.T, env *natstest.Env, store *kv.Store, parts []string, rounds int) {
	t.Helper()
	for _, p := range parts {
		var st partOrder
		if err := store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "order."+p, &st) }); err != nil {
			t.Fatalf("part %s: %v", p, err)
		}
		if st.Last != rounds || st.N != rounds || len(st.Bad) != 0 {
			key, _ := store.World().Key("order." + p)
			if m, err := env.Stream.GetLastMsgForSubject(t.Context(), key); err == nil {
				t.Logf("part %s on the server: %s (seq %d)", p, m.Data, m.Sequence)
			}
			t.Errorf("part %s: last %d, handled %d, out of order %v; want %d each once, in order", p, st.Last, st.N, st.Bad, rounds)
		}
	}
}

// handled returns how many of the parts' events have been handled.
func handled(t *testing.T, store *kv.Store, parts []string) int {
	t.Helper()
	n := 0
	for _, p := range parts {
		var st partOrder
		err := store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "order."+p, &st) })
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			t.Fatal(err)
		}
		n += st.N
	}
	return n
}

// owners returns which of the workers owns each partition, failing on a
// partition owned twice.
func owners(t *testing.T, ws ...*worker) map[int]int {
	t.Helper()
	out := make(map[int]int)
	for i, w := range ws {
		for _, p := range w.rt.Partitions() {
			if j, ok := out[p]; ok {
				t.Fatalf("partition %d owned by workers %d and %d", p, j, i)
			}
			out[p] = i
		}
	}
	return out
}

// testLease is the lease of the workers in these tests: short, so that
// failovers are quick, but not so short that a slow heartbeat under the
// race detector (which slows everything five to ten times) looks like a
// death.
func testLease() time.Duration {
	if raceEnabled {
		return 2 * time.Second
	}
	return time.Second
}

func partNames(n int) []string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "s" + strconv.Itoa(i)
	}
	return parts
}

// TestPartitionedFailover runs three workers sharing a world's partitions
// under load; one crashes, one joins, one leaves. Every part's events are
// handled exactly once and in order throughout, and the crashed worker's
// partitions are taken over within about one lease. The one that crashes,
// and then the one that leaves, is the group's commit leader, which the
// others forward their commits to.
func TestPartitionedFailover(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	lease := testLease()
	h := sequenceChecker(0)
	start := func(name string) *worker {
		log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("member", name)
		return startWorker(t, env, h, handlers.Config{Concurrency: 16, Lease: lease, Member: name, CompactInterval: time.Second, Logger: log})
	}
	w1, w2, w3 := start("w1"), start("w2"), start("w3")
	natstest.Eventually(t, 10*time.Second, func() bool {
		own := owners(t, w1, w2, w3)
		return len(own) == bus.Partitions && len(w1.rt.Partitions()) >= 5 && len(w2.rt.Partitions()) >= 5 && len(w3.rt.Partitions()) >= 5
	}, "three workers share the partitions: %v %v %v", w1.rt.Partitions(), w2.rt.Partitions(), w3.rt.Partitions())

	parts, rounds := partNames(64), 100
	if raceEnabled {
		rounds = 40 // the race detector slows the workers five to ten times
	}
	total := len(parts) * rounds
	publishRounds(t, env, parts, rounds)
	committed := func(ws ...*worker) int {
		n := 0
		for _, w := range ws {
			n += int(w.rt.Stats().Committed)
		}
		return n
	}
	natstest.Eventually(t, time.Minute, func() bool { return committed(w1, w2, w3) >= total/10 }, "a tenth handled")
	natstest.Eventually(t, time.Minute, func() bool { return w1.store.Stats().Forwarded > 0 }, "w1, the commit leader, takes the others' commits")
	victim := w1.rt.Partitions()
	killed := time.Now()
	w1.crash()
	natstest.Eventually(t, 10*lease, func() bool {
		own := owners(t, w2, w3)
		return len(own) == bus.Partitions
	}, "the survivors take the crashed worker's partitions %v", victim)
	t.Logf("crashed worker's partitions %v taken over in %v (lease %v)", victim, time.Since(killed).Round(time.Millisecond), lease)

	w4 := start("w4")
	natstest.Eventually(t, 10*lease, func() bool { return len(w4.rt.Partitions()) >= 4 && len(owners(t, w2, w3, w4)) == bus.Partitions },
		"the new worker gets its share")
	w2.stop()
	natstest.Eventually(t, 10*lease, func() bool { return len(owners(t, w3, w4)) == bus.Partitions }, "the leaver's share is taken")

	left := total - handled(t, w3.store, parts)
	deadline := time.Now().Add(2 * time.Minute)
	for handled(t, w3.store, parts) != total {
		if time.Now().After(deadline) {
			for i, w := range []*worker{w1, w2, w3, w4} {
				t.Logf("worker %d: %v %+v", i+1, w.rt.Partitions(), w.rt.Stats())
			}
			dumpGroup(t, env)
			checkOrder(t, env, w3.store, parts, rounds)
			t.Fatalf("not all handled: %d of %d", handled(t, w3.store, parts), total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkOrder(t, env, w3.store, parts, rounds)
	for i, w := range []*worker{w1, w2, w3, w4} {
		t.Logf("worker %d: %+v", i+1, w.rt.Stats())
	}
	if left == 0 || w4.rt.Stats().Committed == 0 {
		t.Errorf("the load ended before the last change of membership (%d events left, the joiner committed %d): the test proves less than it says",
			left, w4.rt.Stats().Committed)
	}
}

// TestStaleOwner: a worker whose heartbeats stop reaching the group while it
// goes on working (a long pause, a one-way network failure) has its
// partitions taken over while it still holds events of them. Both work on
// the same parts for a while; every event still applies once, in order.
func TestStaleOwner(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	lease := testLease()
	stale := startWorker(t, env, sequenceChecker(20*time.Millisecond), handlers.Config{Concurrency: 16, Lease: lease, Member: "stale"})
	natstest.Eventually(t, 10*time.Second, func() bool { return len(stale.rt.Partitions()) == bus.Partitions }, "one worker owns every partition")
	parts, rounds := partNames(32), 60
	total := len(parts) * rounds
	publishRounds(t, env, parts, rounds)
	natstest.Eventually(t, time.Minute, func() bool { return stale.rt.Stats().Committed >= uint64(total/5) }, "a fifth handled")
	stale.rt.MuteHeartbeats(true)
	fresh := startWorker(t, env, sequenceChecker(0), handlers.Config{Concurrency: 16, Lease: lease, Member: "fresh"})
	natstest.Eventually(t, 10*lease, func() bool { return len(fresh.rt.Partitions()) == bus.Partitions }, "the fresh worker takes every partition")
	natstest.Eventually(t, 2*time.Minute, func() bool { return handled(t, fresh.store, parts) == total }, "all handled")
	checkOrder(t, env, fresh.store, parts, rounds)
	// The stale worker learns of each takeover from the group's records, or
	// from its consumer going away: a moment after the fresh worker has
	// taken over, which may be after the last event was handled.
	natstest.Eventually(t, 10*lease, func() bool { return len(stale.rt.Partitions()) == 0 }, "the stale worker stops consuming")
	st := stale.rt.Stats()
	if st.Lost == 0 {
		t.Errorf("the stale worker lost no partition: %+v", st)
	}
	t.Logf("stale: %+v", st)
	t.Logf("fresh: %+v", fresh.rt.Stats())
	if fresh.rt.Stats().Committed == 0 {
		t.Error("the fresh worker handled nothing: the load ended before the takeover")
	}
}

// dumpGroup logs the group's records and consumers, to see why a test is
// stuck.
func dumpGroup(t *testing.T, env *natstest.Env) {
	t.Helper()
	ctx := context.Background()
	for p := range bus.Partitions {
		subj, _ := env.World.Owner("workers", p)
		if m, err := env.Stream.GetLastMsgForSubject(ctx, subj); err == nil {
			t.Logf("record %d: %s (seq %d)", p, m.Data, m.Sequence)
		}
	}
	if info, err := env.Stream.Info(ctx); err == nil {
		t.Logf("stream: first %d last %d msgs %d", info.State.FirstSeq, info.State.LastSeq, info.State.Msgs)
	}
	t.Logf("dead letters: %d", env.Stored(t, env.World.DeadLetterFilter()))
	for p := range bus.Partitions {
		if m, err := env.Stream.GetLastMsgForSubject(ctx, env.World.PartitionFilter(p)); err == nil {
			_, err := env.Stream.GetLastMsgForSubject(ctx, env.World.Done(m.Sequence))
			t.Logf("partition %d: last event %s %q at %d; marker: %v", p, m.Subject, m.Data, m.Sequence, err)
		}
	}
	list := env.Stream.ListConsumers(ctx)
	for ci := range list.Info() {
		t.Logf("consumer %s: pending %d ackpending %d waiting %d floor %d delivered %d redelivered %d",
			ci.Name, ci.NumPending, ci.NumAckPending, ci.NumWaiting, ci.AckFloor.Stream, ci.Delivered.Stream, ci.NumRedelivered)
	}
}

// testWriter sends a logger's lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
