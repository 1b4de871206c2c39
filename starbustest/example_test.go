package starbustest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/starbustest"
)

// Example tests a tiny game: it greets a player who logs in, and counts and
// echoes what the player sends. In a game's own test the body of the
// function given to RunExample is the test, with the test's t.
func Example() {
	starbustest.RunExample(func(t testing.TB) {
		mux := handlers.NewMux()
		mux.HandleFunc(bus.EventLogin, func(ctx context.Context, task *handlers.Task) error {
			return task.Send(task.Session, []byte("welcome, "+string(task.Data)))
		})
		mux.HandleFunc(bus.EventMessage, func(ctx context.Context, task *handlers.Task) error {
			n := 0
			if _, err := task.Lookup(ctx, "count."+task.Session, &n); err != nil {
				return err
			}
			if err := task.Put("count."+task.Session, n+1); err != nil {
				return err
			}
			return task.Send(task.Session, fmt.Appendf(nil, "#%d: %s", n+1, task.Data))
		})

		w := starbustest.NewWorld(t, mux) // a server, the world, the runtime, an edge
		ann := w.Login("ann")             // a real client, through the edge
		fmt.Println(string(ann.Next(t.Context()).Payload))

		ann.Send([]byte("hello"))
		ann.Send([]byte("again"))
		ann.Expect(t.Context(), starbustest.Text("#1: hello"))
		fmt.Println(string(ann.Next(t.Context()).Payload))

		fmt.Println("count:", starbustest.Get[int](t, w, "count."+ann.ID))
	})
	// Output:
	// welcome, ann
	// #2: again
	// count: 2
}
