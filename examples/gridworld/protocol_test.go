package gridworld_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/starbus/starbus/examples/gridworld"
)

// TestDecodeReply: DecodeReply gives what encoding/json gives, for
// position notices as the world writes them and for anything near them.
func TestDecodeReply(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	names := []string{"ann", "bot12", "npc3", "é", "a b", "<tag>", "q\"uote", "back\\slash", "tab\t", "\xff", "x"}
	ints := []int{0, 1, -1, 9, 10, -10, 255, 123456789, -123456789, 1234567890}
	var inputs []string
	for range 2000 {
		r := gridworld.Reply{T: gridworld.TypePos, N: names[rnd.IntN(len(names))], NPC: rnd.IntN(2) == 0}
		x, y := ints[rnd.IntN(len(ints))], ints[rnd.IntN(len(ints))]
		r.X, r.Y = &x, &y
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(b))
		// And variations: cut short, a byte changed, a byte added.
		i := rnd.IntN(len(b))
		inputs = append(inputs, string(b[:i]))
		c := []byte(string(b))
		c[i] = "0-9 ,:\"}{xyt\\"[rnd.IntN(13)]
		inputs = append(inputs, string(c))
		inputs = append(inputs, string(b[:i])+" "+string(b[i:]))
	}
	inputs = append(inputs,
		`{"t":"pos","n":"a","x":01,"y":2}`, `{"t":"pos","n":"a","x":-0,"y":2}`, `{"t":"pos","n":"a","x":1,"y":2}x`,
		`{"t":"pos","n":"","x":1,"y":2}`, `{"t":"pos","n":"a","npc":false,"x":1,"y":2}`, `{"t":"pos","n":"a","x":1.5,"y":2}`,
		`{"t":"moved","re":3,"x":1,"y":2}`, `{"t":"pos","n":"a","x":1,"y":2,"x":3}`,
	)
	for _, in := range inputs {
		var want gridworld.Reply
		wantErr := json.Unmarshal([]byte(in), &want)
		got, err := gridworld.DecodeReply([]byte(in))
		if (err != nil) != (wantErr != nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeReply(%q) = %+v, %v; encoding/json: %+v, %v", in, got, err, want, wantErr)
		}
	}
}
