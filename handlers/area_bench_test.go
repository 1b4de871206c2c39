package handlers_test

import (
	"context"
	"testing"

	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
)

// BenchmarkInterest measures what moving a session's interest costs a
// move: b.N move tasks, each reading and writing its player's position
// and publishing a best-effort area event there; with interest=on each
// also moves its session's interest (Task.SetInterest: a read and a
// write of the interest key and a notice to the session's edge). tasks/s
// is the drain rate at 64 tasks at once; compare the two rows of one run.
func BenchmarkInterest(b *testing.B) {
	area := handlers.Area{Name: "near", Cell: 8, Radius: 8, Delivery: handlers.BestEffort}
	for _, interest := range []bool{false, true} {
		name := "interest=off"
		if interest {
			name = "interest=on"
		}
		b.Run(name, func(b *testing.B) {
			env := natstest.Start(b, natstest.Options{World: "bench"})
			h := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
				var p struct{ X, Y float64 }
				if _, err := t.Lookup(ctx, "pos."+t.Part, &p); err != nil {
					return err
				}
				p.X, p.Y = float64(int(p.X+1)%256), float64(int(p.Y+3)%256)
				if err := t.Put("pos."+t.Part, p); err != nil {
					return err
				}
				if interest {
					if err := t.SetInterest(ctx, area, t.Part, p.X, p.Y); err != nil {
						return err
					}
				}
				return t.PublishAt(area, p.X, p.Y, t.Data)
			})
			drain(b, env, h, 64)
		})
	}
}
