package bus_test

import (
	"math"
	"testing"

	"github.com/starbus/starbus/bus"
)

func TestAreaSubjects(t *testing.T) {
	w, err := bus.NewWorld("demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]int64{{0, 0}, {-3, 7}, {math.MaxInt64, math.MinInt64}} {
		s, err := w.Area("near", c[0], c[1])
		if err != nil {
			t.Fatal(err)
		}
		if a, x, y, ok := w.ParseArea(s); !ok || a != "near" || x != c[0] || y != c[1] {
			t.Errorf("ParseArea(%q) = %q %d %d %v", s, a, x, y, ok)
		}
		l, err := w.LiveArea("near", c[0], c[1])
		if err != nil {
			t.Fatal(err)
		}
		if a, x, y, ok := w.ParseLiveArea(l); !ok || a != "near" || x != c[0] || y != c[1] {
			t.Errorf("ParseLiveArea(%q) = %q %d %d %v", l, a, x, y, ok)
		}
	}
	for _, s := range []string{
		"sb.demo.out.a.near.1", "sb.demo.out.a.near.1.2.3", "sb.demo.out.a.near.01.2",
		"sb.demo.out.a.near.+1.2", "sb.demo.out.a..1.2", "sb.demo.out.a.n*r.1.2",
		"sb.demo.out.a.near.1.99999999999999999999", "sb.other.out.a.near.1.2",
	} {
		if _, _, _, ok := w.ParseArea(s); ok {
			t.Errorf("ParseArea(%q) accepted", s)
		}
	}
	if _, err := w.Area("a.b", 0, 0); err == nil {
		t.Error("an area name with a dot accepted")
	}
}

func TestInterest(t *testing.T) {
	in := bus.Interest{Area: "near", X: 10, Y: 10, Radius: 8, Cell: 8, Delivery: bus.DeliveryBestEffort}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := in.Cells(), (bus.CellRange{X0: 0, Y0: 0, X1: 2, Y1: 2}); got != want {
		t.Errorf("Cells: %+v, want %+v", got, want)
	}
	for _, p := range [][2]float64{{2, 2}, {18, 18}, {10, 2}} {
		if !in.Covers(p[0], p[1]) {
			t.Errorf("%v not covered", p)
		}
	}
	for _, p := range [][2]float64{{1.9, 10}, {18.1, 10}, {10, 19}} {
		if in.Covers(p[0], p[1]) {
			t.Errorf("%v covered", p)
		}
	}
	neg := in
	neg.X, neg.Y = -1, -9
	if got, want := neg.Cells(), (bus.CellRange{X0: -2, Y0: -3, X1: 0, Y1: -1}); got != want {
		t.Errorf("Cells: %+v, want %+v", got, want)
	}
	for _, bad := range []bus.Interest{
		{Area: "near", Radius: 8, Cell: 0, Delivery: bus.DeliveryReliable},
		{Area: "near", Radius: 57, Cell: 8, Delivery: bus.DeliveryReliable},
		{Area: "near", X: math.NaN(), Radius: 8, Cell: 8, Delivery: bus.DeliveryReliable},
		{Area: "near", X: 1e300, Radius: 8, Cell: 8, Delivery: bus.DeliveryReliable},
		{Area: "near", Radius: 8, Cell: 8, Delivery: "sometimes"},
		{Area: "", Radius: 8, Cell: 8, Delivery: bus.DeliveryReliable},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v valid", bad)
		}
	}
	for _, s := range []string{"", "1", "1 x", "NaN 1", "1 +Inf"} {
		if _, _, ok := bus.ParseAt(s); ok {
			t.Errorf("ParseAt(%q) accepted", s)
		}
	}
	if x, y, ok := bus.ParseAt(bus.FormatAt(-1.5, 1e-9)); !ok || x != -1.5 || y != 1e-9 {
		t.Errorf("ParseAt(FormatAt) = %v %v %v", x, y, ok)
	}
	if _, err := bus.DecodeInterestNotice([]byte(`{"area":"near","x":1,"y":1,"r":8,"cell":8,"delivery":"reliable","prev":{"area":"far","r":8,"cell":8,"delivery":"reliable"}}`)); err == nil {
		t.Error("a notice whose previous interest is another area's decoded")
	}
}
