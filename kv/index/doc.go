// Package index answers the queries JetStream cannot: which keys of a
// world's state lie in an area (area of interest), and which come first by
// a field of their values (a leaderboard, a secondary key). An [Index]
// holds a local copy of the keys under one prefix in an in-memory buntdb
// database, with an ordered index per field (Options.Ordered) and a
// spatial index of points (Options.Point), and follows the world's stream
// to keep it current.
//
//	ix, err := index.Open(ctx, js, world, index.Options{
//		Prefix:  "gw.pos.",
//		Ordered: []string{"score"},
//		Point: func(key string, v []byte) (x, y float64, ok bool) { ... },
//	})
//	...
//	err = ix.Within(10, 10, 20, 20, func(key string, v []byte) bool { ...; return true })
//	err = ix.Descend("score", func(key string, v []byte) bool { ...; return n < 10 })
//
// # What it promises
//
// An index shows only committed state: it reads stored messages on the
// keys' subjects (sb.<world>.kv.<prefix>>), never a transaction in flight.
// It trails the latest commit by the time a message takes to reach it, and
// its queries are not part of any transaction: a task that acts on what a
// query found reads those keys through its own transaction, whose commit
// checks them, so a query result a moment old costs at most a conflict.
// Keys that entered the area after the index last heard are not found;
// that is the price of a query that costs no read on the server.
//
// # Goroutines
//
// [Open] starts following the stream (a nats.go ordered consumer, whose
// goroutine applies each write); buntdb runs one background goroutine.
// [Index.Close] stops both and waits for the first.
package index
