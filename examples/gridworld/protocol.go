package gridworld

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/starbus/starbus/examples/gridworld/command"
)

// Command is one message a client sends (the payload of a SEND): a JSON
// object, or the same command in the short text form of [ParseCommand].
// It is declared, with its parser, in package command.
type Command = command.Command

// Items counts items by kind.
type Items = command.Items

// Kinds returns the kinds of item the world has.
func Kinds() []string { return command.Kinds() }

// ErrBadCommand is wrapped by every error of [ParseCommand].
var ErrBadCommand = command.ErrBad

// ParseCommand decodes a client's message: a JSON [Command], or a line of
// text (see [command.Parse] for the text form). It validates the
// command's fields.
func ParseCommand(b []byte) (Command, error) { return command.Parse(b) }

// Message types the world sends (Reply.T).
const (
	// Replies to a command (Re set when the command had an ID).
	TypeWelcome = "welcome" // after login: where you are, what you carry, what is around
	TypeMoved   = "moved"   // a move succeeded: X, Y, Seen (Region, Items, Near after a region crossing)
	TypeLook    = "look"    // X, Y, Region, Items of the region, Near players
	TypeTook    = "took"    // Inv after picking up what lay on the cell
	TypeDropped = "dropped" // Inv after dropping Item
	TypeOffered = "offered" // the offer was stored and the other player told
	TypeTraded  = "traded"  // a trade happened: Inv is yours after it (sent to both sides)
	TypeInv     = "inv"     // Inv
	TypeSaid    = "said"    // a say or shout was sent
	TypeRefused = "refused" // the command was valid but the world said no: Why
	TypeError   = "error"   // the command was malformed or unknown: Why

	// Notices (no Re).
	TypePos      = "pos"      // N (a player, or an NPC with NPC set) is now at X, Y, within View of you
	TypeGone     = "gone"     // N, within View of you, logged out
	TypeChat     = "chat"     // From said Text; Scope "region" or "global"
	TypeOffer    = "offer"    // From offers Give for Want; answer with accept
	TypeReplaced = "replaced" // your player logged in from another session; this one is over
)

// Reply is every message the world sends to a client: a JSON object whose
// T says which fields matter.
type Reply struct {
	T      string   `json:"t"`
	Re     uint64   `json:"re,omitempty"`
	Why    string   `json:"why,omitempty"`
	N      string   `json:"n,omitempty"`
	NPC    bool     `json:"npc,omitempty"`
	X      *int     `json:"x,omitempty"`
	Y      *int     `json:"y,omitempty"`
	Region string   `json:"region,omitempty"`
	Inv    Items    `json:"inv,omitempty"`
	Items  []Pile   `json:"items,omitempty"`
	Near   []Player `json:"near,omitempty"`
	From   string   `json:"from,omitempty"`
	Text   string   `json:"text,omitempty"`
	Scope  string   `json:"scope,omitempty"`
	Give   Items    `json:"give,omitempty"`
	Want   Items    `json:"want,omitempty"`
	W      int      `json:"w,omitempty"`  // welcome: the world's width
	H      int      `json:"h,omitempty"`  // welcome: the world's height
	RS     int      `json:"rs,omitempty"` // welcome: a region's side
	V      int      `json:"v,omitempty"`  // welcome: the radius of what you hear of moves (View)
	// Seen is, on a welcome or a move, who stands in the part of your
	// square of View that you see from now on (a moment old).
	Seen []Player `json:"seen,omitempty"`
}

// Pile is the items lying on one cell.
type Pile struct {
	X     int      `json:"x"`
	Y     int      `json:"y"`
	Items []string `json:"items"`
}

// Player is a player or NPC and where it stands.
type Player struct {
	N   string `json:"n"`
	X   int    `json:"x"`
	Y   int    `json:"y"`
	NPC bool   `json:"npc,omitempty"`
}

func at(x, y int) (*int, *int) { return &x, &y }

// DecodeReply decodes a message of the world. The commonest of them by
// far, a position notice (hundreds of thousands a second for a client
// process playing many players), is read as the world writes it, without
// reflection; anything else, or a position written otherwise, goes through
// encoding/json, with the same result.
func DecodeReply(b []byte) (Reply, error) {
	if r, ok := decodePos(b); ok {
		return r, nil
	}
	var r Reply
	err := json.Unmarshal(b, &r)
	return r, err
}

// decodePos reads {"t":"pos","n":"<name>"[,"npc":true],"x":<x>,"y":<y>},
// the form json.Marshal gives a position notice, or reports false.
func decodePos(b []byte) (Reply, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"t":"pos","n":"`))
	if !ok {
		return Reply{}, false
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || !plain(rest[:end]) {
		return Reply{}, false
	}
	r := Reply{T: TypePos, N: string(rest[:end])}
	rest = rest[end+1:]
	rest, r.NPC = bytes.CutPrefix(rest, []byte(`,"npc":true`))
	var x, y int
	if rest, ok = field(rest, `,"x":`, &x); !ok {
		return Reply{}, false
	}
	if rest, ok = field(rest, `,"y":`, &y); !ok || string(rest) != "}" {
		return Reply{}, false
	}
	r.X, r.Y = &x, &y
	return r, true
}

// plain reports whether s is a JSON string's content that means itself:
// valid UTF-8 with no escape and no control character.
func plain(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return utf8.Valid(s)
}

// field reads name and the integer after it, as json.Marshal writes an
// int: an optional minus and decimal digits with no leading zero.
func field(b []byte, name string, v *int) ([]byte, bool) {
	b, ok := bytes.CutPrefix(b, []byte(name))
	if !ok {
		return nil, false
	}
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if digits := i - start; digits == 0 || digits > 9 || digits > 1 && b[start] == '0' {
		return nil, false
	}
	n := 0
	for _, d := range b[start:i] {
		n = n*10 + int(d-'0')
	}
	if start == 1 {
		if n == 0 { // json.Marshal writes no -0
			return nil, false
		}
		n = -n
	}
	*v = n
	return b[i:], true
}
