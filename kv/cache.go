package kv

import "sync"

// entry is what the store knows of a key: the value at a revision. rev is
// the stream sequence of the message that wrote it; 0 means the key has no
// message at all.
type entry struct {
	rev     uint64
	val     []byte
	deleted bool // a tombstone, or no message (rev 0)
}

// cache holds the latest entries this process has seen or committed. A
// stale entry is safe: every commit re-checks revisions on the server, and
// a conflict evicts the keys involved. It is bounded; past its size it
// drops arbitrary entries.
type cache struct {
	mu   sync.Mutex
	max  int
	keys map[string]entry
}

func newCache(max int) *cache {
	return &cache{max: max, keys: make(map[string]entry)}
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

// rev returns the newest revision known for key, if any.
func (c *cache) rev(key string) (uint64, bool) {
	e, ok := c.get(key)
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

// evictBefore drops key's entry if it is older than rev: a newer write
// exists.
func (c *cache) evictBefore(key string, rev uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	if e, ok := c.keys[key]; ok && e.rev < rev {
		delete(c.keys, key)
	}
	c.mu.Unlock()
}
