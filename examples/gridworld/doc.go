// Package gridworld is Starbus's reference game, the world `starbus dev`
// serves: a grid of cells split into regions (by default 4×4 regions of
// 16×16 cells), where players log in, walk one cell at a time, see who is
// near, chat in their region and with everyone, pick up and drop items,
// and trade them with each other. A periodic task spawns items up to a
// cap; NPCs wander. Every rule is a handler running as a Starbus task, and
// [Game.Check] proves the world's invariants over its whole state.
//
// # Playing: the command format
//
// README.md beside this file says the same for programmers of other
// languages: every command, reply, notice and channel, as JSON.
//
// A client sends one command per SEND frame (PROTOCOL.md), as JSON:
//
//	{"id":1,"op":"move","dir":"n"}             move one cell: n, s, e, w
//	{"id":2,"op":"look"}                       the region's items, who is near
//	{"id":3,"op":"say","text":"hi"}            to the players of your region
//	{"id":4,"op":"shout","text":"hi all"}      to every player
//	{"id":5,"op":"take"}                       pick up what lies on your cell
//	{"id":6,"op":"drop","item":"gem"}          drop one item
//	{"id":7,"op":"offer","to":"bob","give":{"gem":1},"want":{"coin":2}}
//	{"id":8,"op":"accept","from":"ann"}        accept ann's offer to you
//	{"id":9,"op":"inv"}                        what you carry
//
// or as a line of text: "n", "look", "say hi", "offer bob gem:1 coin:2",
// "accept ann" (see [ParseCommand]). id is optional; the reply echoes it
// as "re". Item kinds are gem, coin and herb.
//
// The world answers every command with one MESSAGE, a JSON [Reply] whose
// "t" is the command's outcome (moved, look, said, took, dropped, offered,
// traded, inv), "refused" with a reason ("wall", "edge", "occupied",
// "nothing here", ...) when the world says no, or "error" for a malformed
// command. Other messages are notices: "welcome" after login (your
// position, region, inventory, the world's size), "pos" (a player or NPC
// moved in your region), "gone" (one left it), "chat", "offer" (someone
// offers you a trade), "traded" (your offer was accepted) and "replaced"
// (your player logged in elsewhere).
//
// # State: keys that keep tasks apart
//
// State is split so that tasks on different things touch different keys
// and do not conflict (see state.go for the full list): a record per
// player for its position and another for its inventory; a record per
// cell for its occupant, so a move reads and writes exactly the cell it
// leaves and the cell it enters and two players can never hold one cell;
// per region, the online members (written only when a player enters or
// leaves the region) and the items lying there (written by pick-ups,
// drops and the spawner). A trade reads and writes both inventories in one
// transaction: both sides happen or neither.
//
// # Who hears what: channels and an area
//
// Every player is in two channels, "global" (reliable: shouts) and
// "chat-<region>" (reliable: what is said in its region), and looks at the
// area "near" (handlers.Area, best effort: moves, NPC steps and logouts
// within View cells, 8 by default, of where it stands). Messages on them
// are the same JSON replies, arriving as CHANNEL_MESSAGE frames. A login
// joins the channels, moves the session's events to its region
// (handlers.Task.MoveSession) and sets its interest at its cell; every
// move moves the interest, and crossing a region border leaves the old
// region's chat and joins the new one's, in the same transaction as the
// move. A move publishes one event at its new cell, which reaches the
// players within View of it however many play the world. What a player
// hears of moves starts with the move: so the welcome and each "moved"
// reply carry "seen", who stands in the part of the square the player
// sees from now on (peeked at, a moment old), and a client forgets those
// who end up out of its square.
//
// # Invariants
//
// [Game.Check] reads the whole world in one consistent snapshot and
// verifies that items are neither created nor destroyed (spawned = lying +
// carried, per kind), that no player is in two places (each online
// player's cell holds exactly it, no cell holds anyone else, each player
// belongs to the region it stands in), that nothing stands on a wall, and
// that every online player's session is in exactly its channels.
//
// # Goroutines
//
// None: the package is handlers and reads. [Game.Snapshot] feeds the live
// map (package livemap).
package gridworld
