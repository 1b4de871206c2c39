package gridworld

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Command is one message a client sends (the payload of a SEND): a JSON
// object, or the same command in the short text form of [ParseCommand].
type Command struct {
	// ID, if set, is echoed in the reply's Re, so a client can match
	// replies to its commands.
	ID uint64 `json:"id,omitempty"`
	// Op is the command: move, look, say, shout, take, drop, offer,
	// accept, inv.
	Op string `json:"op"`
	// Dir is a move's direction: n, s, e or w.
	Dir string `json:"dir,omitempty"`
	// Text is what say and shout say.
	Text string `json:"text,omitempty"`
	// Item is the kind drop drops.
	Item string `json:"item,omitempty"`
	// To is the player an offer is made to; From the player whose offer
	// accept accepts.
	To   string `json:"to,omitempty"`
	From string `json:"from,omitempty"`
	// Give and Want are an offer's terms: what the offering player gives,
	// and what it wants in return.
	Give Items `json:"give,omitempty"`
	Want Items `json:"want,omitempty"`
}

// Items counts items by kind.
type Items map[string]int

// Kinds returns the kinds of item the world has.
func Kinds() []string { return []string{"gem", "coin", "herb"} }

func knownKind(k string) bool { return k == "gem" || k == "coin" || k == "herb" }

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

// Limits on commands.
const (
	maxText = 256 // bytes of a chat line
	maxKind = 8   // kinds in an offer's Give or Want
	maxQty  = 1000
)

// ErrBadCommand is wrapped by every error of [ParseCommand].
var ErrBadCommand = errors.New("gridworld: bad command")

// ParseCommand decodes a client's message: a JSON [Command], or a line of
// text:
//
//	n | s | e | w            move one cell
//	look                     see the region's items and the players near
//	say <text>               to the players of your region
//	shout <text>             to every player
//	take                     pick up what lies on your cell
//	drop <kind>              drop one item of kind
//	offer <player> <give> <want>   e.g. "offer bob gem:1 coin:2" (want may be "-")
//	accept <player>          accept that player's offer to you
//	inv                      what you carry
//
// It validates the command's fields.
func ParseCommand(b []byte) (Command, error) {
	var c Command
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "{") {
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("%w: %v", ErrBadCommand, err)
		}
	} else {
		var err error
		if c, err = parseText(s); err != nil {
			return c, err
		}
	}
	return c, c.validate()
}

func parseText(s string) (Command, error) {
	op, rest, _ := strings.Cut(s, " ")
	rest = strings.TrimSpace(rest)
	switch op {
	case "n", "s", "e", "w":
		return Command{Op: "move", Dir: op}, nil
	case "say", "shout":
		return Command{Op: op, Text: rest}, nil
	case "drop":
		return Command{Op: op, Item: rest}, nil
	case "accept":
		return Command{Op: op, From: rest}, nil
	case "offer":
		f := strings.Fields(rest)
		if len(f) != 3 {
			return Command{}, fmt.Errorf("%w: offer <player> <give> <want>", ErrBadCommand)
		}
		give, err := parseItems(f[1])
		if err != nil {
			return Command{}, err
		}
		want, err := parseItems(f[2])
		if err != nil {
			return Command{}, err
		}
		return Command{Op: op, To: f[0], Give: give, Want: want}, nil
	}
	return Command{Op: op}, nil
}

// parseItems reads "gem:1,coin:2" ("-" is nothing; a kind alone is 1).
func parseItems(s string) (Items, error) {
	if s == "-" {
		return nil, nil
	}
	it := Items{}
	for _, part := range strings.Split(s, ",") {
		k, q, ok := strings.Cut(part, ":")
		n := 1
		if ok {
			var err error
			if n, err = strconv.Atoi(q); err != nil {
				return nil, fmt.Errorf("%w: quantity %q", ErrBadCommand, q)
			}
		}
		it[k] += n
	}
	return it, nil
}

func (c Command) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadCommand, fmt.Sprintf(format, args...))
	}
	switch c.Op {
	case "move":
		if _, _, ok := step(c.Dir); !ok {
			return bad("move: dir %q is not n, s, e or w", c.Dir)
		}
	case "say", "shout":
		if c.Text == "" || len(c.Text) > maxText {
			return bad("%s: text must be 1 to %d bytes", c.Op, maxText)
		}
	case "drop":
		if !knownKind(c.Item) {
			return bad("drop: unknown item %q", c.Item)
		}
	case "offer":
		if validName(c.To) != nil {
			return bad("offer: to %q is not a player name", c.To)
		}
		if len(c.Give)+len(c.Want) == 0 {
			return bad("offer: nothing given or wanted")
		}
		for _, it := range []Items{c.Give, c.Want} {
			if len(it) > maxKind {
				return bad("offer: too many kinds")
			}
			for k, n := range it {
				if !knownKind(k) || n < 1 || n > maxQty {
					return bad("offer: %q × %d", k, n)
				}
			}
		}
	case "accept":
		if validName(c.From) != nil {
			return bad("accept: from %q is not a player name", c.From)
		}
	case "look", "take", "inv":
	case "":
		return bad("no op")
	default:
		return bad("unknown op %q", c.Op)
	}
	return nil
}

// validName accepts the names the edge accepts: 1–64 of A–Z a–z 0–9 - _.
func validName(s string) error {
	if s == "" || len(s) > 64 {
		return ErrBadCommand
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return ErrBadCommand
		}
	}
	return nil
}
