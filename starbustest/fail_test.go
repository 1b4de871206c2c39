package starbustest

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/bus/bustest"
	"github.com/starbus/starbus/handlers"
)

// TestFailures: a wait that ends without its message fails the test and
// says what came instead; the world is stopped all the same.
func TestFailures(t *testing.T) {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		return t.Send(t.Session, []byte("welcome"))
	})
	tests := []struct {
		name string
		run  func(t testing.TB, w *World)
		want string
	}{
		{"expect", func(t testing.TB, w *World) {
			w.Login("ann").Expect(t.Context(), Text("goodbye"))
		}, `ann waited for a matching message: nothing within 1s; received meanwhile: "welcome"`},
		{"next after logout", func(t testing.TB, w *World) {
			ann := w.Login("ann")
			ann.Expect(t.Context(), Text("welcome"))
			ann.Logout()
			ann.Next(t.Context())
		}, "ann waited for a message: the session's connection is closed; received meanwhile: nothing"},
		{"get", func(t testing.TB, w *World) { Get[int](t, w, "nothing.here") }, `key "nothing.here" has no value`},
		{"eventually", func(t testing.TB, w *World) {
			w.Eventually(func() bool { return false }, "the impossible, %d", 42)
		}, "condition not met within 1s: the impossible, 42"},
	}
	for _, tt := range tests {
		for _, noEdge := range []bool{false, true} {
			t.Run(tt.name+"/"+map[bool]string{false: "edge", true: "direct"}[noEdge], func(t *testing.T) {
				var w *World
				tb := runExample(func(tb testing.TB) {
					w = Start(tb, Options{Handler: mux, NoEdge: noEdge, Timeout: time.Second})
					tt.run(tb, w)
				})
				if !tb.Failed() || !strings.Contains(tb.log.String(), tt.want) {
					t.Fatalf("failed %v, log:\n%s\nwant %q", tb.Failed(), tb.log.String(), tt.want)
				}
				if !w.Conn.IsClosed() {
					t.Fatal("the world's connection is still open after its cleanup")
				}
			})
		}
	}
}

// TestNoLeaks: a world's cleanup stops every goroutine it started, the
// sessions' included.
func TestNoLeaks(t *testing.T) {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		ch, err := t.CreateChannel(ctx, "c-"+t.Session, handlers.ChannelOptions{Delivery: handlers.BestEffort})
		if err != nil {
			return err
		}
		if err := ch.Join(ctx, t.Session); err != nil {
			return err
		}
		return t.Send(t.Session, []byte("welcome"))
	})
	before := runtime.NumGoroutine()
	for _, noEdge := range []bool{false, true} {
		tb := runExample(func(tb testing.TB) {
			w := Start(tb, Options{Handler: mux, NoEdge: noEdge})
			for _, name := range []string{"ann", "bob"} {
				w.Login(name).Expect(tb.Context(), Text("welcome"))
			}
		})
		if tb.Failed() {
			t.Fatal(tb.log.String())
		}
	}
	bustest.Eventually(t, 10*time.Second, func() bool { return runtime.NumGoroutine() <= before },
		"goroutines back to the %d before the worlds", before)
}
