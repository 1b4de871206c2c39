package kv

import "testing"

// TestCacheStaleMark: a write seen while a read of the same key is in
// flight keeps the read's older value out of the cache, so that a View does
// not return it until the key's next write.
func TestCacheStaleMark(t *testing.T) {
	c := newCache(10)
	c.loadStart("k")
	c.evictBefore("k", 5) // another process wrote k at 5 meanwhile
	c.put("k", entry{rev: 3, val: []byte("old")})
	c.loadEnd("k")
	if e, ok := c.get("k"); ok {
		t.Fatalf("cached the value read before a newer write: %+v", e)
	}
	if rev, ok := c.rev("k"); !ok || rev != 5 {
		t.Fatalf("rev = %d %v, want the newer write's 5", rev, ok)
	}
	c.put("k", entry{rev: 5, val: []byte("new")})
	if e, ok := c.get("k"); !ok || string(e.val) != "new" {
		t.Fatalf("get = %+v %v, want the newer value", e, ok)
	}

	// A cached entry superseded later is marked stale too.
	c.evictBefore("k", 7)
	if _, ok := c.get("k"); ok {
		t.Fatal("a superseded entry is still served")
	}
	// Writes to keys neither cached nor being read leave nothing behind.
	c.evictBefore("other", 9)
	if _, ok := c.rev("other"); ok {
		t.Fatal("a write to an unread key was remembered")
	}
}
