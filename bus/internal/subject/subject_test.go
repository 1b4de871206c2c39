package subject_test

import (
	"strconv"
	"testing"

	"github.com/starbus/starbus/bus/internal/subject"
)

// FuzzSubjects: every subject a builder makes from valid tokens parses
// back to them, and every string a parser accepts is the subject its
// builder makes from what it parsed (so no parser accepts an invalid
// token, or two spellings of one subject).
func FuzzSubjects(f *testing.F) {
	for _, s := range []string{"a", "r0", "a.b", "", "*", ">", "a b", "player.1.x", "é", "sb.fz.kv.a", "0", "15", "03"} {
		f.Add(s, s)
	}
	f.Add("r0", "sess")
	f.Add("m.w1", "g")
	f.Add("p.3", "g")
	f.Add("near.3.-4", "near")
	f.Add("near.03.4", "x")
	w := subject.NewWorld("fz")
	names := []struct {
		prefix string
		valid  func(string) bool
		build  func(string) string
		parse  func(string) (string, bool)
	}{
		{"sb.fz.kv.", subject.ValidKey, w.Key, w.ParseKey},
		{"sb.fz.sched.", subject.ValidName, w.Schedule, w.ParseSchedule},
		{"sb.fz.out.s.", subject.ValidName, w.Session, w.ParseSession},
		{"sb.fz.out.c.", subject.ValidName, w.Channel, w.ParseChannel},
		{"sbe.fz.c.", subject.ValidName, w.LiveChannel, w.ParseLiveChannel},
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, n := range names {
			if n.valid(a) {
				subj := n.build(a)
				if got, ok := n.parse(subj); !ok || got != a || subj != n.prefix+a {
					t.Fatalf("%q at %q: round trip gave %q %v", a, subj, got, ok)
				}
			}
			for _, in := range []string{a, n.prefix + a} {
				if got, ok := n.parse(in); ok && (!n.valid(got) || n.build(got) != in) {
					t.Fatalf("%q parsed as %q", in, got)
				}
			}
		}

		if subject.ValidName(a) && subject.ValidName(b) {
			subj := w.Event(a, b)
			if r, p, ok := w.ParseEvent(subj); !ok || r != a || p != b {
				t.Fatalf("event %q %q: round trip gave %q %q %v", a, b, r, p, ok)
			}
		}
		if p := subject.Partition(b); p < 0 || p >= subject.Partitions {
			t.Fatalf("partition of %q is %d", b, p)
		}
		for _, in := range []string{a, "sb.fz.ev." + a, "sb.fz.ev." + strconv.Itoa(subject.Partition(b)) + "." + a + "." + b} {
			if r, p, ok := w.ParseEvent(in); ok && (!subject.ValidName(r) || !subject.ValidName(p) || w.Event(r, p) != in) {
				t.Fatalf("%q parsed as event %q %q", in, r, p)
			}
		}

		g := "g"
		if subject.ValidName(b) {
			g = b
		}
		if subject.ValidName(a) {
			if m, p, ok := w.ParseGroup(g, w.Member(g, a)); !ok || m != a || p != -1 {
				t.Fatalf("member %q of %q: round trip gave %q %d %v", a, g, m, p, ok)
			}
		}
		owner := subject.Partition(a)
		if m, p, ok := w.ParseGroup(g, w.Owner(g, owner)); !ok || m != "" || p != owner {
			t.Fatalf("owner %d of %q: round trip gave %q %d %v", owner, g, m, p, ok)
		}
		for _, in := range []string{a, "sb.fz.grp." + g + "." + a} {
			m, p, ok := w.ParseGroup(g, in)
			switch {
			case !ok:
			case m != "" && (p != -1 || !subject.ValidName(m) || w.Member(g, m) != in):
				t.Fatalf("%q parsed as member %q (%d)", in, m, p)
			case m == "" && (p < 0 || p >= subject.Partitions || w.Owner(g, p) != in):
				t.Fatalf("%q parsed as owner %d", in, p)
			}
		}

		// Areas: a cell's subject round-trips, and a parser accepts only
		// the one spelling its builder makes.
		if subject.ValidName(a) {
			cx, cy := int64(len(b))-7, -int64(subject.Partition(b))<<40
			for _, c := range []struct {
				build func(string, int64, int64) string
				parse func(string) (string, int64, int64, bool)
			}{{w.Area, w.ParseArea}, {w.LiveArea, w.ParseLiveArea}} {
				subj := c.build(a, cx, cy)
				if ar, x, y, ok := c.parse(subj); !ok || ar != a || x != cx || y != cy {
					t.Fatalf("area %q cell %d,%d: %q parsed as %q %d,%d %v", a, cx, cy, subj, ar, x, y, ok)
				}
			}
		}
		for _, in := range []string{a, "sb.fz.out.a." + a, "sbe.fz.a." + a, "sb.fz.out.a." + b + "." + a} {
			if ar, x, y, ok := w.ParseArea(in); ok && (!subject.ValidName(ar) || w.Area(ar, x, y) != in) {
				t.Fatalf("%q parsed as area %q %d,%d", in, ar, x, y)
			}
			if ar, x, y, ok := w.ParseLiveArea(in); ok && (!subject.ValidName(ar) || w.LiveArea(ar, x, y) != in) {
				t.Fatalf("%q parsed as live area %q %d,%d", in, ar, x, y)
			}
		}

		if n := len(a) + len(b); !w.IsCheck(w.Check(n)) && n <= 65535 {
			t.Fatalf("check %d is not a check", n)
		}
		for _, in := range []string{a, "sb.fz.chk." + a} {
			if w.IsCheck(in) {
				if _, err := strconv.ParseUint(in[len("sb.fz.chk."):], 10, 16); err != nil {
					t.Fatalf("%q is a check", in)
				}
			}
		}
	})
}
