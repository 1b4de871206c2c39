package kv

import "testing"

// TestCacheObserve: a write seen in the stream replaces what the cache
// holds of the key; seen while a read of the key is in flight, it keeps
// the read's older value out, so that a View does not return it until the
// key's next write; of a key neither cached nor being read, it is not
// remembered.
func TestCacheObserve(t *testing.T) {
	c := newCache(10)
	c.loadStart("k")
	c.observe("k", entry{rev: 5, val: []byte("new")}) // another process wrote k at 5 meanwhile
	c.put("k", entry{rev: 3, val: []byte("old")})
	c.loadEnd("k")
	if e, ok := c.get("k"); !ok || e.rev != 5 || string(e.val) != "new" {
		t.Fatalf("get = %+v %v, want the newer write at 5, not the value read before it", e, ok)
	}

	// A cached entry superseded later is replaced; an older write seen
	// late changes nothing.
	c.observe("k", entry{rev: 7, deleted: true})
	c.observe("k", entry{rev: 6, val: []byte("older")})
	if e, ok := c.get("k"); !ok || e.rev != 7 || !e.deleted {
		t.Fatalf("get = %+v %v, want the deletion at 7", e, ok)
	}
	// Writes to keys neither cached nor being read leave nothing behind.
	c.observe("other", entry{rev: 9, val: []byte("x")})
	if _, ok := c.rev("other"); ok {
		t.Fatal("a write to an unread key was remembered")
	}
}
