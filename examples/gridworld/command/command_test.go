package command_test

import (
	"errors"
	"testing"

	"github.com/starbus/starbus/examples/gridworld/command"
)

// TestParse: the commands the text and JSON forms give, and the ones
// they refuse.
func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want command.Command
		err  bool
	}{
		{in: "n", want: command.Command{Op: "move", Dir: "n"}},
		{in: `{"id":7,"op":"move","dir":"w"}`, want: command.Command{ID: 7, Op: "move", Dir: "w"}},
		{in: "say hello there", want: command.Command{Op: "say", Text: "hello there"}},
		{in: "offer bob gem:2,coin -", want: command.Command{Op: "offer", To: "bob", Give: command.Items{"gem": 2, "coin": 1}}},
		{in: "accept ann", want: command.Command{Op: "accept", From: "ann"}},
		{in: "look", want: command.Command{Op: "look"}},
		{in: `{"op":"move","dir":"up"}`, err: true},
		{in: `{"op":"fly"}`, err: true},
		{in: "say", err: true},
		{in: "drop gold", err: true},
		{in: "offer bob gem:0 -", err: true},
		{in: "offer bob - -", err: true},
		{in: "offer b.b gem -", err: true},
		{in: "{", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := command.Parse([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, command.ErrBad) {
					t.Fatalf("got %+v, %v; want ErrBad", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Op != tt.want.Op || got.ID != tt.want.ID || got.Dir != tt.want.Dir || got.Text != tt.want.Text ||
				got.To != tt.want.To || got.From != tt.want.From || !sameItems(got.Give, tt.want.Give) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func sameItems(a, b command.Items) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// FuzzParse: no message crashes Parse; every error it returns is ErrBad,
// and a command it accepts has an op.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"n", "say hi", `{"op":"offer","to":"b","give":{"gem":1}}`, "offer a gem:1 coin:x", "drop herb"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := command.Parse(b)
		if err != nil && !errors.Is(err, command.ErrBad) {
			t.Fatalf("error outside ErrBad: %v", err)
		}
		if err == nil && c.Op == "" {
			t.Fatalf("accepted a command without op: %q", b)
		}
	})
}
