package edge

import (
	"strings"
	"testing"
	"time"
)

// TestPeerTable: the least loaded live peer that is not draining, with
// sessions sent there since its announcement counted, silent peers
// forgotten, this edge's own announcements ignored.
func TestPeerTable(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type pick struct {
		at    time.Duration
		below int
		want  string // "" for none
	}
	for _, tc := range []struct {
		name  string
		seen  []peerInfo // all at t0
		picks []pick
	}{
		{"none", nil, []pick{{0, -1, ""}}},
		{"own announcement", []peerInfo{{ID: "me", SGS: "me:1"}}, []pick{{0, -1, ""}}},
		{"least loaded, then spread", []peerInfo{{ID: "a", SGS: "a:1", Sessions: 2}, {ID: "b", SGS: "b:1", Sessions: 0}},
			[]pick{{0, -1, "b:1"}, {0, -1, "b:1"}, {0, -1, "a:1"}, {0, -1, "b:1"}}},
		{"draining skipped", []peerInfo{{ID: "a", SGS: "a:1", Draining: true}, {ID: "b", SGS: "b:1", Sessions: 9}},
			[]pick{{0, -1, "b:1"}}},
		{"only a less loaded one", []peerInfo{{ID: "a", SGS: "a:1", Sessions: 3}},
			[]pick{{0, 3, ""}, {0, 4, "a:1"}, {0, 4, ""}}},
		{"silent peers expire", []peerInfo{{ID: "a", SGS: "a:1"}},
			[]pick{{3 * time.Second, -1, "a:1"}, {3*time.Second + time.Millisecond, -1, ""}}},
		{"no address, no peer", []peerInfo{{ID: "a"}, {ID: "b", SGS: "b"}, {ID: "c", SGS: ":1"}, {ID: "d", SGS: "d:0"},
			{ID: "e", SGS: strings.Repeat("e", 254) + ":1"}}, []pick{{0, -1, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt := newPeerTable("me", time.Second)
			for _, p := range tc.seen {
				pt.observe(p, t0)
			}
			for i, p := range tc.picks {
				got, ok := pt.pick(t0.Add(p.at), p.below)
				if got != p.want || ok != (p.want != "") {
					t.Errorf("pick %d: %q %v, want %q", i, got, ok, p.want)
				}
			}
		})
	}
}

func TestRelocationKey(t *testing.T) {
	key := relocationKey("S1.secret", 42)
	token, last, ok := parseRelocationKey(key)
	if !ok || token != "S1.secret" || last != 42 {
		t.Fatalf("%q %d %v", token, last, ok)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}, key[:9], {1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff}} {
		if _, _, ok := parseRelocationKey(bad); ok {
			t.Errorf("% x parsed", bad)
		}
	}
}
