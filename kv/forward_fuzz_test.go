package kv

import (
	"errors"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
)

// FuzzForwardDecode: no input crashes the decoders of forwarded commits or
// of their outcomes, and a request that decodes encodes to one that
// decodes the same.
func FuzzForwardDecode(f *testing.F) {
	w, err := bus.NewWorld("fz")
	if err != nil {
		f.Fatal(err)
	}
	m := nats.NewMsg("sb.fz.kv.a")
	m.Header.Set("Nats-Expected-Last-Subject-Sequence", "7")
	m.Data = []byte("1")
	good := encodeRequests(nil, []*commitReq{{
		reads:  map[string]uint64{"sb.fz.kv.a": 7, "sb.fz.kv.b": 0},
		writes: map[string]struct{}{"sb.fz.kv.a": {}},
		msgs:   []*nats.Msg{m, nats.NewMsg("sb.fz.chk")},
	}})
	f.Add(good)
	f.Add([]byte{forwardVersion, 0})
	f.Add([]byte{forwardVersion, 1, outcomeOK, 9})
	f.Add([]byte{forwardVersion, 1, outcomeConflict, 1, 'a', 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		for n := range 3 {
			if outs, err := decodeOutcomes(b, n, "x"); err == nil && len(outs) != n {
				t.Fatalf("%d outcomes for %d", len(outs), n)
			} else if err != nil && !errors.Is(err, errBadForward) {
				t.Fatalf("decodeOutcomes: %v is not errBadForward", err)
			}
		}
		rs, err := decodeRequests(b, w, 1000)
		if err != nil {
			if !errors.Is(err, errBadForward) {
				t.Fatalf("decodeRequests: %v is not errBadForward", err)
			}
			return
		}
		again, err := decodeRequests(encodeRequests(nil, rs), w, 1000)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if len(again) != len(rs) {
			t.Fatalf("%d requests, then %d", len(rs), len(again))
		}
		for i := range rs {
			a, b := rs[i], again[i]
			if !reflect.DeepEqual(a.reads, b.reads) || !reflect.DeepEqual(a.writes, b.writes) || len(a.msgs) != len(b.msgs) || len(a.written) != len(b.written) {
				t.Fatalf("request %d changed in a round trip", i)
			}
			for j := range a.msgs {
				if a.msgs[j].Subject != b.msgs[j].Subject || string(a.msgs[j].Data) != string(b.msgs[j].Data) || !reflect.DeepEqual(a.msgs[j].Header, b.msgs[j].Header) {
					t.Fatalf("request %d message %d changed in a round trip", i, j)
				}
			}
		}
	})
}
