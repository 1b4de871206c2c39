package handlers

import (
	"errors"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
)

// delivery is a partition's event as its consumer hands it over: only
// what group.read looks at.
type delivery struct {
	jetstream.Msg
	subject string
	cseq    uint64 // the consumer's sequence of this delivery
}

func (d delivery) Subject() string { return d.subject }
func (d delivery) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Consumer: d.cseq, Stream: 100 + d.cseq}}, nil
}

// deliveries hands out its messages, then ends as a stopped iterator does.
type deliveries struct {
	msgs    []jetstream.Msg
	stopped bool
}

func (it *deliveries) Next(...jetstream.NextOpt) (jetstream.Msg, error) {
	if it.stopped || len(it.msgs) == 0 {
		return nil, jetstream.ErrMsgIteratorClosed
	}
	m := it.msgs[0]
	it.msgs = it.msgs[1:]
	return m, nil
}
func (it *deliveries) Stop()  { it.stopped = true }
func (it *deliveries) Drain() { it.stopped = true }

// TestReadStopsAtDeliveryGap: a delivery lost on its way (its consumer
// sequence skipped) ends the partition's subscription before any later
// event is queued, so that the lost event, redelivered by the next epoch,
// still runs before them.
func TestReadStopsAtDeliveryGap(t *testing.T) {
	w, err := bus.NewWorld("gap")
	if err != nil {
		t.Fatal(err)
	}
	subj, err := w.Event("r0", "s1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cseqs  []uint64
		queued int
		gap    bool
	}{
		{"in order", []uint64{1, 2, 3, 4}, 4, false},
		{"a consumer starting past 1", []uint64{7, 8, 9}, 3, false},
		{"one lost", []uint64{1, 2, 4, 5}, 2, true},
		{"lost at once", []uint64{5, 7}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := &deliveries{}
			for _, c := range tc.cseqs {
				it.msgs = append(it.msgs, delivery{subject: subj, cseq: c})
			}
			g := &group{w: w, q: newKeyQueue(16), results: make(chan opResult, 1)}
			ps := &partSub{p: bus.Partition("s1"), iter: it}
			g.read(ps)
			res := <-g.results
			if got := errors.Is(res.err, errDeliveryGap); got != tc.gap {
				t.Fatalf("read ended with %v; a gap: %v, want %v", res.err, got, tc.gap)
			}
			if tc.gap && !ps.stopped.Load() {
				t.Error("the subscription goes on after a gap")
			}
			var seqs []string
			for _, it := range g.q.close() {
				meta, _ := it.m.Metadata()
				seqs = append(seqs, strconv.FormatUint(meta.Sequence.Consumer, 10))
			}
			if len(seqs) != tc.queued {
				t.Errorf("queued deliveries %v, want the first %d", seqs, tc.queued)
			}
		})
	}
}
