package forward_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/starbus/starbus/kv/internal/forward"
)

// inWorld stands for the world's own check (bus.World.Contains, which kv
// passes): the subjects of world fz.
func inWorld(subject string) bool {
	return strings.HasPrefix(subject, "sb.fz.") && len(subject) > len("sb.fz.")
}

// FuzzForwardDecode: no input crashes the decoders of forwarded commits or
// of their outcomes, every error they return is ErrMalformed, and what
// decodes encodes to bytes that decode the same.
func FuzzForwardDecode(f *testing.F) {
	good := forward.AppendRequests(nil, []forward.Request{{
		Reads:  map[string]uint64{"sb.fz.kv.a": 7, "sb.fz.kv.b": 0},
		Writes: map[string]struct{}{"sb.fz.kv.a": {}},
		Msgs: []forward.Msg{
			{Subject: "sb.fz.kv.a", Header: map[string][]string{"Nats-Expected-Last-Subject-Sequence": {"7"}}, Data: []byte("1")},
			{Subject: "sb.fz.chk"},
		},
	}})
	f.Add(good)
	f.Add([]byte{forward.Version, 0})
	f.Add([]byte{forward.Version, 1, forward.OK, 9})
	f.Add([]byte{forward.Version, 1, forward.Conflict, 1, 'a', 3, 4})
	f.Add(forward.AppendOutcome(forward.AppendReply(nil, 2), forward.Outcome{Code: forward.Rejected, Message: "kv: no"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		for n := range 3 {
			outs, err := forward.DecodeOutcomes(b, n)
			if err != nil {
				if !errors.Is(err, forward.ErrMalformed) {
					t.Fatalf("DecodeOutcomes: %v is not ErrMalformed", err)
				}
				continue
			}
			if len(outs) != n {
				t.Fatalf("%d outcomes for %d", len(outs), n)
			}
			again := forward.AppendReply(nil, n)
			for _, o := range outs {
				again = forward.AppendOutcome(again, o)
			}
			if back, err := forward.DecodeOutcomes(again, n); err != nil || !reflect.DeepEqual(back, outs) {
				t.Fatalf("outcomes %+v changed in a round trip: %+v, %v", outs, back, err)
			}
		}
		rs, err := forward.DecodeRequests(b, 1000, inWorld)
		if err != nil {
			if !errors.Is(err, forward.ErrMalformed) {
				t.Fatalf("DecodeRequests: %v is not ErrMalformed", err)
			}
			return
		}
		again, err := forward.DecodeRequests(forward.AppendRequests(nil, rs), 1000, inWorld)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if len(again) != len(rs) {
			t.Fatalf("%d requests, then %d", len(rs), len(again))
		}
		for i := range rs {
			a, b := rs[i], again[i]
			if !reflect.DeepEqual(a.Reads, b.Reads) || !reflect.DeepEqual(a.Writes, b.Writes) || len(a.Msgs) != len(b.Msgs) {
				t.Fatalf("request %d changed in a round trip", i)
			}
			for j := range a.Msgs {
				if a.Msgs[j].Subject != b.Msgs[j].Subject || !bytes.Equal(a.Msgs[j].Data, b.Msgs[j].Data) || !reflect.DeepEqual(a.Msgs[j].Header, b.Msgs[j].Header) {
					t.Fatalf("request %d message %d changed in a round trip", i, j)
				}
			}
		}
	})
}
