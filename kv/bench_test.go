package kv_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// The task every commit benchmark runs: read 2 keys, write 2 keys, send 1
// message. Keys are spread over a keyspace large enough that concurrent
// tasks rarely collide, so the benchmark measures the commit path, not
// contention (TestCounter and TestBank cover contention).
const benchKeys = 100_000

var (
	payload   = make([]byte, 128)
	memStream = bus.StreamConfig{Memory: true}
)

// drive runs op b.N times from conc goroutines and reports tasks/s and
// latency percentiles.
func drive(b *testing.B, conc int, op func(ctx context.Context, g, i int) error) {
	drivePaced(b, conc, 0, op)
}

// drivePaced is drive with each goroutine pausing gap between its ops.
func drivePaced(b *testing.B, conc int, gap time.Duration, op func(ctx context.Context, g, i int) error) {
	ctx := context.Background()
	lat := make([][]time.Duration, conc)
	var next atomic.Int64
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(ctx, g, i); err != nil {
					failed.Store(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
				if gap > 0 {
					time.Sleep(gap)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op") // meaningless with concurrency; tasks/s says it
}

func keyPair(i int) (string, string) {
	n := (i * 7919) % benchKeys
	return "bench." + strconv.Itoa(n), "bench." + strconv.Itoa((n+benchKeys/2)%benchKeys)
}

// BenchmarkCommit compares, in one run, a Starbus transaction with the bare
// JetStream operations it is built on:
//
//   - starbus: Store.Update reading 2 keys, writing 2, sending 1 message.
//   - bare-batch: the same task written directly on JetStream: 2 direct
//     gets, then one atomic batch of the 2 revision-checked writes and the
//     message (what a hand-written transactional commit costs).
//   - bare-publish: 2 direct gets, then the same 3 messages published
//     asynchronously with no atomicity and no checks: the substrate's
//     ceiling for a task's reads and writes.
func BenchmarkCommit(b *testing.B) {
	for _, storage := range []string{"file", "memory"} {
		for _, conc := range []int{1, 64, 256} {
			for _, impl := range []string{"starbus", "bare-batch", "bare-publish"} {
				b.Run(fmt.Sprintf("%s/c=%d/%s", storage, conc, impl), func(b *testing.B) {
					env := natstest.Start(b, natstest.Options{World: "bench"})
					if storage == "memory" {
						env = natstest.Start(b, natstest.Options{World: "bench", Stream: memStream})
					}
					switch impl {
					case "starbus":
						drive(b, conc, starbusTask(b, env))
					case "bare-batch":
						drive(b, conc, bareTask(env, true))
					case "bare-publish":
						drive(b, conc, bareTask(env, false))
					}
				})
			}
		}
	}
}

// BenchmarkCommitPaced is BenchmarkCommit's task one at a time on file
// storage, 2 ms apart: a quiet world's commits, where latency is what
// counts. Starbus opens each atomic batch ahead of its commit (open.go);
// bare-batch opens it with its first message, as every commit must that
// has no batch waiting. Each runs twice, in turn, to show the noise.
func BenchmarkCommitPaced(b *testing.B) {
	for round := range 2 {
		for _, impl := range []string{"starbus", "bare-batch"} {
			b.Run(fmt.Sprintf("round=%d/%s", round, impl), func(b *testing.B) {
				env := natstest.Start(b, natstest.Options{World: "bench"})
				op := bareTask(env, true)
				if impl == "starbus" {
					op = starbusTask(b, env)
				}
				drivePaced(b, 1, 2*time.Millisecond, op)
			})
		}
	}
}

// starbusTask returns the benchmarks' task as a Starbus transaction, on a
// store closed at the end of b.
func starbusTask(b *testing.B, env *natstest.Env) func(ctx context.Context, g, i int) error {
	s, err := kv.Open(context.Background(), env.JS, env.World, kv.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		b.Logf("%+v", s.Stats())
		s.Close()
	})
	out, _ := env.World.Session("bench")
	return func(ctx context.Context, _, i int) error {
		k1, k2 := keyPair(i)
		return s.Update(ctx, func(tx *kv.Tx) error {
			v1, err := tx.GetBytes(ctx, k1)
			if err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			v2, err := tx.GetBytes(ctx, k2)
			if err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			_, _ = v1, v2
			return errors.Join(
				tx.PutBytes(k1, payload),
				tx.PutBytes(k2, payload),
				tx.Publish(&nats.Msg{Subject: out, Data: payload, Header: nats.Header{}}),
			)
		})
	}
}

// bareTask returns the benchmarks' task written directly on JetStream:
// one atomic batch, or (!atomic) asynchronous publishes.
func bareTask(env *natstest.Env, atomic bool) func(ctx context.Context, g, i int) error {
	out, _ := env.World.Session("bench")
	return func(ctx context.Context, _, i int) error {
		k1, k2 := keyPair(i)
		var msgs []*nats.Msg
		for _, k := range []string{k1, k2} {
			subj, _ := env.World.Key(k)
			m := nats.NewMsg(subj)
			m.Data = payload
			rev := uint64(0)
			last, err := env.Stream.GetLastMsgForSubject(ctx, subj)
			switch {
			case err == nil:
				rev = last.Sequence
			case !errors.Is(err, jetstream.ErrMsgNotFound):
				return err
			}
			// No rollup: Starbus's writes leave the revision they supersede to
			// compaction (kv.Store.Revisions), and so do these.
			if atomic {
				m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
			}
			msgs = append(msgs, m)
		}
		m := nats.NewMsg(out)
		m.Data = payload
		msgs = append(msgs, m)
		if atomic {
			return natstest.PublishBatch(ctx, env.JS, msgs)
		}
		return natstest.PublishAsync(ctx, env.JS, msgs)
	}
}

// BenchmarkShards measures what spreading a world's state over several
// streams would buy (docs/scale.md): the same task as BenchmarkCommit, 256
// at once, each on one of k worlds (streams) of one server, with a store
// each. A task touches one shard only: an atomic batch cannot span streams.
func BenchmarkShards(b *testing.B) {
	for _, storage := range []string{"file", "memory"} {
		for _, shards := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/shards=%d", storage, shards), func(b *testing.B) {
				opts := natstest.Options{World: "shard0"}
				if storage == "memory" {
					opts.Stream = memStream
				}
				env := natstest.Start(b, opts)
				stores := make([]*kv.Store, shards)
				outs := make([]string, shards)
				for i := range shards {
					w, err := bus.NewWorld("shard" + strconv.Itoa(i))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := bus.Provision(context.Background(), env.JS, w, opts.Stream); err != nil {
						b.Fatal(err)
					}
					if stores[i], err = kv.Open(context.Background(), env.JS, w, kv.Options{}); err != nil {
						b.Fatal(err)
					}
					defer stores[i].Close()
					outs[i], _ = w.Session("bench")
				}
				drive(b, 256, func(ctx context.Context, _, i int) error {
					s, out := stores[i%shards], outs[i%shards]
					k1, k2 := keyPair(i)
					return s.Update(ctx, func(tx *kv.Tx) error {
						if _, err := tx.GetBytes(ctx, k1); err != nil && !errors.Is(err, kv.ErrNotFound) {
							return err
						}
						if _, err := tx.GetBytes(ctx, k2); err != nil && !errors.Is(err, kv.ErrNotFound) {
							return err
						}
						return errors.Join(tx.PutBytes(k1, payload), tx.PutBytes(k2, payload),
							tx.Publish(&nats.Msg{Subject: out, Data: payload, Header: nats.Header{}}))
					})
				})
			})
		}
	}
}
