package client

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/starbus/starbus/edge/wire"
)

// TestOutbox plays scenarios of numbered sends against the outbox: what
// is written on each connection, what is kept, what is dropped. Each step
// is one input; want is what take returns after it (the numbers of the
// sends, and "" for none), or the error it gives.
func TestOutbox(t *testing.T) {
	type step struct {
		op   string // "add", "ch" (a channel send), "ack n", "resume n"
		want string // the sends take then gives ("1 2"), or "err" for an error
	}
	for _, tc := range []struct {
		name  string
		max   int
		steps []step
		// after the steps
		acked, written uint64
		unacked        int
	}{
		{"sends are numbered from 1 and written once", 8,
			[]step{{"add", "1"}, {"add", "2"}, {"ch", "3"}, {"", ""}},
			0, 3, 3},
		{"an ack drops what it covers", 8,
			[]step{{"add", "1"}, {"add", "2"}, {"add", "3"}, {"ack 2", ""}, {"add", "4"}},
			2, 4, 2},
		{"an old ack changes nothing", 8,
			[]step{{"add", "1"}, {"add", "2"}, {"ack 2", ""}, {"ack 1", ""}},
			2, 2, 0},
		{"an ack of what was not written is an error", 8,
			[]step{{"add", "1"}, {"ack 2", "err"}},
			0, 1, 1},
		{"resume resends what is not stored, in order", 8,
			[]step{{"add", "1"}, {"add", "2"}, {"add", "3"}, {"add", "4"}, {"ack 1", ""}, {"resume 2", "3 4"}, {"add", "5"}},
			2, 5, 3},
		{"resume when everything is stored resends nothing", 8,
			[]step{{"add", "1"}, {"add", "2"}, {"resume 2", ""}, {"add", "3"}},
			2, 3, 1},
		{"resume from nothing stored resends everything", 8,
			[]step{{"add", "1"}, {"add", "2"}, {"resume 0", "1 2"}},
			0, 2, 2},
		{"sends made while disconnected go after the resends", 8,
			[]step{{"add", "1"}, {"add", "2"}, {"addq", ""}, {"addq", ""}, {"resume 1", "2 3 4"}},
			1, 4, 3},
		{"resume below the acknowledged is an error", 8,
			[]step{{"add", "1"}, {"add", "2"}, {"ack 2", ""}, {"resume 1", "err"}},
			2, 2, 0},
		{"resume beyond what was sent is an error", 8,
			[]step{{"add", "1"}, {"resume 2", "err"}},
			0, 1, 1},
		{"two reconnects in a row", 8,
			[]step{{"add", "1"}, {"add", "2"}, {"add", "3"}, {"resume 1", "2 3"}, {"resume 1", "2 3"}, {"ack 3", ""}},
			3, 3, 0},
		{"full: no send is kept past max", 2,
			[]step{{"add", "1"}, {"add", "2"}, {"add", "err"}, {"ack 1", ""}, {"add", "3"}},
			1, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutbox(tc.max)
			for i, s := range tc.steps {
				var err error
				var n uint64
				op, arg, _ := strings.Cut(s.op, " ")
				fmt.Sscan(arg, &n)
				switch op {
				case "add", "addq":
					if _, ok := o.add(nil, []byte("p")); !ok {
						err = fmt.Errorf("full")
					}
				case "ch":
					ch := "lobby"
					if _, ok := o.add(&ch, []byte("p")); !ok {
						err = fmt.Errorf("full")
					}
				case "ack":
					err = o.ack(n)
				case "resume":
					err = o.resume(n)
				}
				if s.want == "err" {
					if err == nil {
						t.Fatalf("step %d (%s): no error", i, s.op)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d (%s): %v", i, s.op, err)
				}
				if op == "addq" { // disconnected: nothing is taken
					continue
				}
				if got := seqs(t, o.take()); got != s.want {
					t.Fatalf("step %d (%s): take gave %q, want %q", i, s.op, got, s.want)
				}
			}
			if o.acked != tc.acked || o.written != tc.written || o.unacked() != tc.unacked {
				t.Fatalf("acked %d written %d unacked %d, want %d %d %d", o.acked, o.written, o.unacked(), tc.acked, tc.written, tc.unacked)
			}
		})
	}
}

// seqs lists the numbers of numbered sends.
func seqs(t *testing.T, fs []wire.Frame) string {
	var out []string
	for _, f := range fs {
		v, err := wire.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		switch m := v.(type) {
		case wire.SeqSend:
			out = append(out, fmt.Sprint(m.Seq))
		case wire.SeqChannelSend:
			if m.Channel != "lobby" {
				t.Fatalf("channel %q", m.Channel)
			}
			out = append(out, fmt.Sprint(m.Seq))
		default:
			t.Fatalf("%T in the outbox", v)
		}
	}
	return strings.Join(out, " ")
}

// TestOutboxKeepsPayloads: what take hands out twice (after a resume) is
// the same frame, payload and all.
func TestOutboxKeepsPayloads(t *testing.T) {
	o := newOutbox(4)
	o.add(nil, []byte("one"))
	first := o.take()
	if err := o.resume(0); err != nil {
		t.Fatal(err)
	}
	if again := o.take(); !reflect.DeepEqual(first, again) {
		t.Fatalf("resent %v, first %v", again, first)
	}
}
