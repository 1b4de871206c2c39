package bus_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/starbus/starbus/bus"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"r0", true}, {"player-1_a", true}, {"", false}, {"a.b", false}, {"a*", false},
		{"a>", false}, {"a b", false}, {strings.Repeat("x", 128), true}, {strings.Repeat("x", 129), false},
		{"é", false}, {"a\x00", false},
	} {
		if err := bus.ValidName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"a", true}, {"player.42.inv", true}, {"a=b/c", true}, {"", false}, {".a", false},
		{"a.", false}, {"a..b", false}, {"a.*", false}, {"a.>", false}, {"a b", false},
		{strings.Repeat("k", bus.MaxKeyLen), true}, {strings.Repeat("k", bus.MaxKeyLen+1), false},
	} {
		if err := bus.ValidKey(tc.key); (err == nil) != tc.ok {
			t.Errorf("ValidKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
	}
	if _, err := bus.NewWorld("bad.world"); !errors.Is(err, bus.ErrInvalidName) {
		t.Errorf("NewWorld(bad.world) = %v", err)
	}
}

func TestSubjects(t *testing.T) {
	w, err := bus.NewWorld("demo")
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := w.Event("r1", "sess")
	sess, _ := w.Session("abc")
	ch, _ := w.Channel("global")
	key, _ := w.Key("player.1")
	for got, want := range map[string]string{
		w.Stream(): "SB_demo", w.All(): "sb.demo.>", ev: "sb.demo.ev." + strconv.Itoa(bus.Partition("sess")) + ".r1.sess", sess: "sb.demo.out.s.abc",
		ch: "sb.demo.out.c.global", key: "sb.demo.kv.player.1", w.Done(7): "sb.demo.done.7",
		w.DeadLetter(9): "sb.demo.dlq.9", w.Check(3): "sb.demo.chk.3", w.CheckFilter(): "sb.demo.chk.>", must(w.Commits("w1")): "sbe.demo.commit.w1",
		w.Edges(): "sbe.demo.edges",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if _, err := w.Commits("a.b"); !errors.Is(err, bus.ErrInvalidName) {
		t.Errorf("Commits(a.b) = %v", err)
	}
	for subj, in := range map[string]bool{"sb.demo.kv.a": true, "sb.demo.": false, "sb.demox.kv.a": false, "sbe.demo.c.x": false} {
		if w.Contains(subj) != in {
			t.Errorf("Contains(%q) = %v", subj, !in)
		}
	}
	for subj, is := range map[string]bool{"sb.demo.chk.0": true, "sb.demo.chk.999": true, "sb.demo.chk": false, "sb.demo.chk.x": false, "sb.demo.chk.1.2": false, "sb.other.chk.1": false} {
		if w.IsCheck(subj) != is {
			t.Errorf("IsCheck(%q) = %v", subj, !is)
		}
	}
	if _, _, ok := w.ParseEvent("sb.demo.ev.r1.sess"); ok {
		t.Error("an event subject without its partition parsed")
	}
	wrong := strconv.Itoa((bus.Partition("sess") + 1) % bus.Partitions)
	if _, _, ok := w.ParseEvent("sb.demo.ev." + wrong + ".r1.sess"); ok {
		t.Error("an event subject with another partition parsed")
	}
	own, _ := w.Owner("workers", 3)
	mem, _ := w.Member("workers", "w1")
	if m, p, ok := w.ParseGroup("workers", own); !ok || m != "" || p != 3 {
		t.Errorf("ParseGroup(%q) = %q %d %v", own, m, p, ok)
	}
	if m, p, ok := w.ParseGroup("workers", mem); !ok || m != "w1" || p != -1 {
		t.Errorf("ParseGroup(%q) = %q %d %v", mem, m, p, ok)
	}
	for _, bad := range []string{"sb.demo.grp.workers.p.16", "sb.demo.grp.workers.p.03", "sb.demo.grp.workers.x.1", "sb.demo.grp.other.p.1"} {
		if _, _, ok := w.ParseGroup("workers", bad); ok {
			t.Errorf("ParseGroup(%q) accepted", bad)
		}
	}
	if _, err := w.Owner("workers", bus.Partitions); err == nil {
		t.Error("Owner accepted a partition out of range")
	}
	other, _ := bus.NewWorld("other")
	if _, _, ok := other.ParseEvent(ev); ok {
		t.Error("another world parsed this world's event")
	}
	if _, ok := w.ParseSession(ch); ok {
		t.Error("a channel subject parsed as a session")
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
