package kv

import "sync"

// entry is what the store knows of a key: the value at a revision. rev is
// the stream sequence of the message that wrote it; 0 means the key has no
// message at all.
type entry struct {
	rev     uint64
	val     []byte
	deleted bool // a tombstone, or no message (rev 0)
	stale   bool // only the revision is known: a newer write than any value seen
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
// be put: a write seen meanwhile leaves a stale mark (see evictBefore).
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
	if e.stale {
		return entry{}, false
	}
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

// rev returns the newest revision known for key, if any: a cached value's,
// or a newer write's whose value was not seen.
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
// read in flight that fetched an older value will not overwrite it (see
// put). Keys not cached stay out: the cache holds what this process uses.
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

// evictBefore records that key has been written at rev. An older entry, or
// a read of the key from the server in flight, leaves a stale mark: reads
// miss it, and it keeps an older value out. Without it, a read that fetched
// the value before that write and cached it after this call would keep the
// old value cached until the key's next write.
func (c *cache) evictBefore(key string, rev uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.keys[key]
	switch {
	case ok && e.rev >= rev:
	case ok || c.loading[key] > 0:
		c.keys[key] = entry{rev: rev, stale: true}
	}
}
