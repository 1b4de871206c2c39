//go:build race

package handlers_test

// raceEnabled reports a -race build: timing bounds are not asserted under
// the race detector, which slows the code under test five to ten times.
const raceEnabled = true
