package bank_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/bank"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestBank runs the workload on one worker: events published twice are
// applied once, and Check finds the state whole; told of an event that was
// never sent, it says so.
func TestBank(t *testing.T) {
	env := natstest.Start(t, natstest.Options{World: "bank"})
	ctx := t.Context()
	store, err := kv.Open(ctx, env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rt, err := handlers.New(handlers.Config{Store: store, JS: env.JS, Handler: bank.Handler(), Concurrency: 32})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Run(rctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	const accounts = 50
	accepted := map[string]int{}
	var sessions []string
	for s := range 20 {
		session := "s" + strconv.Itoa(s)
		sessions = append(sessions, session)
		for seq := 1; seq <= 10; seq++ {
			m, err := bank.Event(env.World, "r"+strconv.Itoa(seq%3), session, seq, bank.Random(accounts))
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // a retried publish: deduplicated by the server
				if _, err := env.JS.PublishMsg(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			accepted[session] = seq
		}
	}
	natstest.Eventually(t, time.Minute, func() bool {
		n, err := bank.Applied(ctx, store, sessions)
		return err == nil && n == 200
	}, "all applied")
	r, err := bank.Check(ctx, store, accepted, accounts)
	if err != nil || len(r.Problems) != 0 || r.Applied != 200 || r.Total != accounts*bank.Initial {
		t.Fatalf("check: %+v, %v", r, err)
	}
	accepted["s0"]++
	if r, err := bank.Check(ctx, store, accepted, accounts); err != nil || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "session s0") {
		t.Fatalf("check with an event never sent: %+v, %v", r, err)
	}
}
