package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// BenchmarkRuntime measures the whole worker path: events already in the
// stream are consumed, each runs a task that reads 2 keys, writes 2 keys
// and sends 1 message, commits with its applied marker, and is acked.
// tasks/s is the drain rate; Concurrency is the runtime's task goroutines.
func BenchmarkRuntime(b *testing.B) {
	for _, conc := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) {
			env := natstest.Start(b, natstest.Options{World: "bench"})
			h := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
				k1, k2 := "p."+t.Part+".a", "p."+t.Part+".b"
				var v1, v2 int
				for k, v := range map[string]*int{k1: &v1, k2: &v2} {
					if err := t.Get(ctx, k, v); err != nil && !errors.Is(err, kv.ErrNotFound) {
						return err
					}
				}
				return errors.Join(t.Put(k1, v1+1), t.Put(k2, v2+1), t.Send(t.Part, t.Data))
			})
			w := drain(b, env, h, conc)
			b.Logf("runtime %+v store %+v", w.rt.Stats(), w.store.Stats())
		})
	}
}

// drain stores b.N events of 4,096 ordering keys, then starts a worker
// that runs h with conc tasks at once, waits until it has committed them
// all, and reports the rate (tasks/s) at which it did.
func drain(b *testing.B, env *natstest.Env, h handlers.Handler, conc int) *worker {
	payload := make([]byte, 128)
	for i := range b.N {
		subj, _ := env.World.Event("r0", "p"+strconv.Itoa(i%4096))
		m := nats.NewMsg(subj)
		m.Header.Set(bus.HeaderType, "move")
		m.Data = payload
		if _, err := env.JS.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	<-env.JS.PublishAsyncComplete()
	b.ResetTimer()
	start := time.Now()
	w := startWorker(b, env, h, handlers.Config{Concurrency: conc})
	natstest.Eventually(b, 10*time.Minute, func() bool { return w.rt.Stats().Committed >= uint64(b.N) }, "drain")
	elapsed := time.Since(start)
	b.StopTimer()
	if st := w.rt.Stats(); st.DeadLetters > 0 || st.Errors > 0 {
		b.Fatalf("%d errors, %d dead letters", st.Errors, st.DeadLetters)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
	b.ReportMetric(0, "ns/op")
	return w
}
