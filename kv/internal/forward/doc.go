// Package forward is the wire form of commits that one worker's store
// forwards to the commit leader's, and of the leader's reply: [Request]s
// encoded by [AppendRequests] and decoded by [DecodeRequests], and one
// [Outcome] per request. Package kv converts between these and its
// committer's requests and errors (kv.Store.CommitVia and ServeCommits
// explain the forwarding; bus.World.Commits names the subject); no other
// package imports it.
//
// It depends on the standard library alone. Go's fuzzing instruments every
// package a test binary links, and kv links the NATS server: the decoders'
// fuzz target (FuzzForwardDecode) lives here so that it runs an order of
// magnitude faster (see scripts/fuzz).
//
// It starts no goroutine.
package forward
