//go:build race

package scaletest

// raceEnabled reports a -race build: the in-process parts of these tests
// run five to ten times slower under the race detector.
const raceEnabled = true
