package kv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Waiting returns the number of transactions waiting for a turn on key.
func Waiting(s *Store, key string) int {
	s.turns.mu.Lock()
	defer s.turns.mu.Unlock()
	if q, ok := s.turns.keys[key]; ok {
		return len(q.waiting)
	}
	return 0
}

// EncodeForeign returns a well-formed forwarded request whose one message
// addresses a subject outside every world.
func EncodeForeign(testing.TB) []byte {
	r := &commitReq{reads: map[string]uint64{}, writes: map[string]struct{}{}, msgs: []*nats.Msg{nats.NewMsg("elsewhere.x")}}
	return encodeRequests(nil, []*commitReq{r})
}

// CommitIntoLostBatch commits msgs as s does into a batch opened ahead,
// but one whose opener never reached the server: as if the server had
// abandoned it.
func CommitIntoLostBatch(s *Store, msgs []*nats.Msg) (uint64, error) {
	pub, err := jetstreamext.NewBatchPublisher(s.js, jetstreamext.BatchFlowControl{AckFirst: false})
	if err != nil {
		return 0, err
	}
	if err := pub.AddMsg(nats.NewMsg("nowhere.opener")); err != nil {
		return 0, err
	}
	ack, err := s.publishBatch(context.Background(), &openBatch{pub: pub, at: time.Now()}, msgs)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}
