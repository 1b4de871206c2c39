// Package lobby is a small game written as a studio writes one, on the
// public packages of Starbus only, and tested with the public test kit
// (package starbustest): lobby_test.go is the model to copy.
//
// Players who log in join the channel "lobby" (reliable: every member
// hears every message, in one order) and are announced there. What a
// player sends to the channel is forwarded with the player's name. A
// player's message "click" counts a click, kept per player name across
// sessions. Once two players are in the lobby, a countdown starts: a
// timer ([Countdown]) that announces the game's start, stopped if the
// lobby falls below two players first.
//
// State keys: "name.<session>" (the player of a session), "clicks.<name>"
// (a player's clicks), "countdown" (the pending start's schedule).
package lobby
