// Package command is what a gridworld client sends: the [Command] a SEND
// frame carries, as JSON or as a line of text, and [Parse], which decodes
// and validates one. Package gridworld's handlers parse every client
// message with it (gridworld.ParseCommand is Parse); the replies and
// notices the world sends are declared in gridworld.
//
// It depends on the standard library alone, so that its fuzz target
// (FuzzParse) runs without instrumenting the platform the game links: see
// scripts/fuzz.
//
// It touches no subject and starts no goroutine.
package command
