package kv

import (
	"testing"

	"github.com/nats-io/nats.go"
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
