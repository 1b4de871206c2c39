package handlers_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/starbustest"
)

func TestAreaSeen(t *testing.T) {
	a := handlers.Area{Name: "near", Cell: 4, Radius: 2}
	for _, tc := range []struct {
		name         string
		fx, fy, x, y float64
		from         bool
		want         []handlers.Rect
	}{
		{"first look: the whole square", 0, 0, 5, 5, false, []handlers.Rect{{3, 3, 7, 7}}},
		{"no move: nothing", 5, 5, 5, 5, true, nil},
		{"a step east: a column", 5, 5, 6, 5, true, []handlers.Rect{{7, 3, 8, 7}}},
		{"a step north: a row", 5, 5, 5, 4, true, []handlers.Rect{{3, 2, 7, 3}}},
		{"a diagonal step: a column and a row", 5, 5, 4, 6, true, []handlers.Rect{{2, 4, 3, 8}, {3, 7, 6, 8}}},
		{"a jump: the whole square", 5, 5, 50, 5, true, []handlers.Rect{{48, 3, 52, 7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Seen(tc.fx, tc.fy, tc.from, tc.x, tc.y); !slices.Equal(got, tc.want) {
				t.Fatalf("Seen: %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAreaValidate(t *testing.T) {
	for _, a := range []handlers.Area{
		{Name: "", Cell: 8, Radius: 8},
		{Name: "a.b", Cell: 8, Radius: 8},
		{Name: "near", Cell: 0, Radius: 8},
		{Name: "near", Cell: 1, Radius: 8}, // 8 cells: more than 7
		{Name: "near", Cell: 8, Radius: -1},
		{Name: "near", Cell: 8, Radius: 8, Delivery: 7},
	} {
		if err := a.Validate(); err == nil {
			t.Errorf("%+v: valid", a)
		}
	}
	if err := (handlers.Area{Name: "near", Cell: 8, Radius: 8}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestInterest plays a best-effort area through an edge: an event reaches
// the sessions whose square holds it, a moved interest follows its
// session, a cleared one ends with CHANNEL_LEAVE, and positions that
// cannot be indexed are refused in the task.
func TestInterest(t *testing.T) {
	area := handlers.Area{Name: "near", Cell: 4, Radius: 5, Delivery: handlers.BestEffort}
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(ctx context.Context, t *handlers.Task) error {
		return t.Send(t.Session, []byte("hi"))
	})
	// "look x y", "clear", "at x y text", "bad"
	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
		f := strings.Fields(string(t.Data))
		num := func(i int) float64 { v, _ := strconv.ParseFloat(f[i], 64); return v }
		switch f[0] {
		case "look":
			if err := t.SetInterest(ctx, area, t.Session, num(1), num(2)); err != nil {
				return err
			}
		case "clear":
			if err := t.ClearInterest(ctx, area, t.Session); err != nil {
				return err
			}
		case "at":
			if err := t.PublishAt(area, num(1), num(2), []byte(f[3])); err != nil {
				return err
			}
		case "bad":
			err := t.SetInterest(ctx, area, t.Session, 1e300, 0)
			if !errors.Is(err, bus.ErrInvalidInterest) {
				return errors.New("an unindexable position was accepted")
			}
		}
		return t.Send(t.Session, []byte("ok "+f[0]))
	})
	w := starbustest.NewWorld(t, mux)
	ctx := t.Context()
	ann, bob := w.Login("ann"), w.Login("bob")
	do := func(s *starbustest.Session, cmd string) {
		t.Helper()
		s.Send([]byte(cmd))
		s.Expect(ctx, starbustest.Text("ok "+strings.Fields(cmd)[0]))
	}
	do(ann, "look 0 0")
	ann.Expect(ctx, starbustest.Joined("near"))
	do(bob, "look 20 20")
	bob.Expect(ctx, starbustest.Joined("near"))
	// 5 from ann (the square's edge), 15 from bob: only ann hears it;
	// then one within bob's square only.
	do(bob, "at 5 -5 one")
	do(bob, "at 16 24 two")
	ann.Expect(ctx, starbustest.ChannelText("near", "one"))
	bob.Expect(ctx, starbustest.ChannelText("near", "two"))
	// bob moves next to ann: he hears what happens there now, and the
	// look sends him nothing on the channel.
	do(bob, "look 2 2")
	do(ann, "at 1 1 three")
	ann.Expect(ctx, starbustest.ChannelText("near", "three"))
	bob.Expect(ctx, starbustest.ChannelText("near", "three"))
	do(ann, "clear")
	ann.Expect(ctx, starbustest.Left("near"))
	do(bob, "at 0 0 four")
	bob.Expect(ctx, starbustest.ChannelText("near", "four"))
	do(ann, "bad")
	for _, m := range ann.Drain() {
		if m.Channel == "near" {
			t.Errorf("ann, who no longer looks, got %q", m.Payload)
		}
	}
	for _, m := range bob.Drain() {
		if m.Channel == "near" {
			t.Errorf("bob got %q, which was out of his square", m.Payload)
		}
	}
}
