// Package subject is the layout of a world's subjects: the token grammar
// (names, keys, partitions) and, in [World], every subject's builder and
// parser. Package bus declares the scheme (bus.World, whose doc lists
// every subject) and delegates to this package, adding what callers see:
// validation of the builders' tokens and bus's errors. No other package
// imports it.
//
// It depends on the standard library alone. Go's fuzzing instruments every
// package a test binary links, and bus links the NATS server: the parsers'
// fuzz target (FuzzSubjects) lives here so that it runs an order of
// magnitude faster (see scripts/fuzz).
//
// It starts no goroutine.
package subject
