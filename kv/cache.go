package kv

import (
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
)

// entry is what the store knows of a key: the value at a revision. rev is
// the stream sequence of the message that wrote it; 0 means the key has no
// message at all.
type entry struct {
	rev     uint64
	val     []byte
	deleted bool // a tombstone, or no message (rev 0)
}

// stored returns the entry of a state message stored at rev with data and
// header h.
func stored(rev uint64, data []byte, h nats.Header) entry {
	return entry{rev: rev, val: data, deleted: bus.IsDelete(h)}
}

// cache holds the latest entries this process has seen or committed. A
// stale entry is safe: every commit re-checks revisions on the server, and
// a conflict evicts the keys involved. It is bounded; past its size it
// drops arbitrary entries.
type cache struct {
	mu      sync.Mutex
	max     int
	keys    map[string]entry
	loading map[string]int // keys being read from the server, and by how many
}

func newCache(max int) *cache {
	return &cache{max: max, keys: make(map[string]entry), loading: make(map[string]int)}
}

// loadStart and loadEnd bracket a read from the server whose result will
// be put: a newer write seen meanwhile is kept (see observe).
func (c *cache) loadStart(key string) {
	c.mu.Lock()
	c.loading[key]++
	c.mu.Unlock()
}

func (c *cache) loadEnd(key string) {
	c.mu.Lock()
	if c.loading[key]--; c.loading[key] <= 0 {
		delete(c.loading, key)
	}
	c.mu.Unlock()
}

func (c *cache) get(key string) (entry, bool) {
	if c.max <= 0 {
		return entry{}, false
	}
	c.mu.Lock()
	e, ok := c.keys[key]
	c.mu.Unlock()
	return e, ok
}

// put records e unless the cache already holds a newer revision.
func (c *cache) put(key string, e entry) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.keys[key]; ok {
		if old.rev > e.rev {
			return
		}
	} else if len(c.keys) >= c.max {
		for k := range c.keys { // evict one arbitrary entry
			delete(c.keys, k)
			break
		}
	}
	c.keys[key] = e
}

// rev returns the revision of the cached value of key, if any.
func (c *cache) rev(key string) (uint64, bool) {
	if c.max <= 0 {
		return 0, false
	}
	c.mu.Lock()
	e, ok := c.keys[key]
	c.mu.Unlock()
	return e.rev, ok
}

func (c *cache) evict(keys ...string) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	for _, k := range keys {
		delete(c.keys, k)
	}
	c.mu.Unlock()
}

// observe records e, a write of key seen in the stream, if key is cached
// or being read from the server, and e is newer than what is cached. A
// read in flight that fetched the value before that write will not
// overwrite it (put keeps the newer revision); without this, it would stay
// cached until the key's next write. Keys not cached stay out: the cache
// holds what this process uses.
func (c *cache) observe(key string, e entry) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.keys[key]
	if ok && old.rev >= e.rev || !ok && c.loading[key] == 0 {
		return
	}
	c.keys[key] = e
}
