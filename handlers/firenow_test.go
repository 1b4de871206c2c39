package handlers_test

import (
	"context"
	"testing"
	"time"

	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestFireNow: schedules an hour away fire when FireNow moves them, a
// one-shot once, a periodic one once per move; other types stay put.
func TestFireNow(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	mux := handlers.NewMux()
	mux.HandleFunc("fired", recordFiring)
	mux.HandleFunc("other", recordFiring)
	mux.HandleFunc("setup", func(ctx context.Context, t *handlers.Task) error {
		if _, err := t.After(time.Hour, "fired", []byte("once")); err != nil {
			return err
		}
		if _, err := t.Every(time.Hour, "fired", []byte("every")); err != nil {
			return err
		}
		_, err := t.After(time.Hour, "other", []byte("other"))
		return err
	})
	w := startWorker(t, env, mux, handlers.Config{})
	publish(t, env, "r0", "setup", "setup", nil)
	fire := func(typ string) int {
		t.Helper()
		var n int
		err := w.store.Update(t.Context(), func(tx *kv.Tx) (err error) {
			n, err = handlers.FireNow(t.Context(), tx, env.World, typ)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return fire("fired") == 2 }, "two schedules to move")
	names := []string{"once", "every", "other"}
	natstest.Eventually(t, 10*time.Second, func() bool {
		f := firings(t, w.store, names)
		return f["once"].Runs == 1 && f["every"].Runs == 1
	}, "both fired")
	if n := fire("fired"); n != 1 {
		t.Fatalf("moved %d schedules the second time, want the periodic one", n)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return firings(t, w.store, names)["every"].Runs == 2 }, "the periodic one fired again")
	f := firings(t, w.store, names)
	if f["once"].Runs != 1 || f["other"].Runs != 0 {
		t.Fatalf("firings: %+v", f)
	}
	if due := f["every"].Due; time.Until(due) > 0 || time.Since(due) > time.Minute {
		t.Fatalf("the periodic task ran for its due time %v, not now", due)
	}
}
