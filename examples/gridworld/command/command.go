package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Command is one message a client sends (the payload of a SEND): a JSON
// object, or the same command in the short text form of [Parse].
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

// KnownKind reports whether k is one of [Kinds].
func KnownKind(k string) bool { return k == "gem" || k == "coin" || k == "herb" }

// Limits on commands.
const (
	maxText = 256 // bytes of a chat line
	maxKind = 8   // kinds in an offer's Give or Want
	maxQty  = 1000
)

// ErrBad is wrapped by every error of [Parse].
var ErrBad = errors.New("gridworld: bad command")

// Parse decodes a client's message: a JSON [Command], or a line of
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
func Parse(b []byte) (Command, error) {
	var c Command
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "{") {
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("%w: %v", ErrBad, err)
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
			return Command{}, fmt.Errorf("%w: offer <player> <give> <want>", ErrBad)
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
				return nil, fmt.Errorf("%w: quantity %q", ErrBad, q)
			}
		}
		it[k] += n
	}
	return it, nil
}

func (c Command) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBad, fmt.Sprintf(format, args...))
	}
	switch c.Op {
	case "move":
		if _, _, ok := Step(c.Dir); !ok {
			return bad("move: dir %q is not n, s, e or w", c.Dir)
		}
	case "say", "shout":
		if c.Text == "" || len(c.Text) > maxText {
			return bad("%s: text must be 1 to %d bytes", c.Op, maxText)
		}
	case "drop":
		if !KnownKind(c.Item) {
			return bad("drop: unknown item %q", c.Item)
		}
	case "offer":
		if ValidName(c.To) != nil {
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
				if !KnownKind(k) || n < 1 || n > maxQty {
					return bad("offer: %q × %d", k, n)
				}
			}
		}
	case "accept":
		if ValidName(c.From) != nil {
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

// ValidName accepts the names the edge accepts: 1–64 of A–Z a–z 0–9 - _.
func ValidName(s string) error {
	if s == "" || len(s) > 64 {
		return ErrBad
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return ErrBad
		}
	}
	return nil
}

// Step returns the step of a move in direction dir: n, s, e or w.
func Step(dir string) (dx, dy int, ok bool) {
	switch dir {
	case "n":
		return 0, -1, true
	case "s":
		return 0, 1, true
	case "e":
		return 1, 0, true
	case "w":
		return -1, 0, true
	}
	return 0, 0, false
}
