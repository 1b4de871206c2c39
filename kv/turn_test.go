package kv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestTurn: turns on a key are handed over first come, first served; a
// waiter that gives up leaves the line; other keys are independent.
func TestTurn(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	s := open(t, env, kv.Options{})
	ctx := t.Context()

	first, err := s.Turn(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Turn(ctx, "cold") // another key: not blocked
	if err != nil {
		t.Fatal(err)
	}
	other()

	order := make(chan int, 3)
	waiting := make(chan struct{}, 3)
	for i := range 3 {
		go func() {
			waiting <- struct{}{}
			release, err := s.Turn(ctx, "hot")
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			release()
		}()
		<-waiting
		natstest.Eventually(t, 5*time.Second, func() bool { return queued(s, i+1) }, "waiter %d queued", i)
	}
	gaveUp, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { _, err := s.Turn(gaveUp, "hot"); done <- err }()
	natstest.Eventually(t, 5*time.Second, func() bool { return queued(s, 4) }, "impatient waiter queued")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	first()
	for want := range 3 {
		if got := <-order; got != want {
			t.Fatalf("turn %d went to waiter %d", want, got)
		}
	}
	release, err := s.Turn(ctx, "hot") // free again: no wait
	if err != nil {
		t.Fatal(err)
	}
	release()
	release() // idempotent
}

// queued reports whether n waiters are in line for "hot".
func queued(s *kv.Store, n int) bool { return kv.Waiting(s, "hot") == n }
