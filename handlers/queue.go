package handlers

import (
	"iter"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// item is an event (or alarm) taken from the server, with the partition
// subscription it came through (nil for alarms) and when it was queued:
// the start of its task's latency.
type item struct {
	m  jetstream.Msg
	ps *partSub
	at time.Time
}

// keyQueue hands events to workers so that events with the same ordering
// key run one at a time, in arrival order, while different keys run in
// parallel. A key is "ready" while it has events and no worker holds it.
type keyQueue struct {
	mu     sync.Mutex
	queues map[string][]item // keys with events, held or ready
	ready  chan string       // ready keys; capacity bounds the keys at once
	closed bool
}

func newKeyQueue(maxKeys int) *keyQueue {
	return &keyQueue{queues: make(map[string][]item), ready: make(chan string, maxKeys)}
}

// push appends it to key's queue and reports whether it was queued. The
// consumers' MaxAckPending bounds the events outstanding, so the ready
// channel never fills.
func (q *keyQueue) push(key string, it item) bool {
	it.at = time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	held, ok := q.queues[key]
	q.queues[key] = append(held, it)
	if !ok {
		q.ready <- key
	}
	return true
}

// next waits for a ready key; ok is false once the queue is closed.
func (q *keyQueue) next() (string, bool) {
	key, ok := <-q.ready
	return key, ok
}

// drain yields key's events in order until it has none left, then releases
// the key.
func (q *keyQueue) drain(key string) iter.Seq[item] {
	return func(yield func(item) bool) {
		for {
			q.mu.Lock()
			msgs := q.queues[key]
			if len(msgs) == 0 || q.closed {
				delete(q.queues, key)
				q.mu.Unlock()
				return
			}
			it := msgs[0]
			q.queues[key] = msgs[1:]
			q.mu.Unlock()
			if !yield(it) {
				return
			}
		}
	}
}

// close stops the queue and returns the events no worker started.
func (q *keyQueue) close() []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	close(q.ready)
	var left []item
	for _, msgs := range q.queues {
		left = append(left, msgs...)
	}
	clear(q.queues)
	return left
}
