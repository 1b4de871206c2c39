package bots

import (
	"encoding/json"
	"testing"

	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/examples/gridworld"
)

// TestDecodeChat: a chat message, as the world encodes it, is known for
// chat without being decoded; every other reply is decoded whole.
func TestDecodeChat(t *testing.T) {
	x, y := 3, 4
	for _, want := range []gridworld.Reply{
		{T: gridworld.TypeChat, From: "ann", Text: "hi", Scope: "global"},
		{T: gridworld.TypeSaid, Re: 7},
		{T: gridworld.TypePos, N: "bob", X: &x, Y: &y},
		{T: gridworld.TypeOffer, From: "cy"},
	} {
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := decode(client.Message{Kind: client.KindMessage, Payload: b})
		if !ok || got.T != want.T {
			t.Fatalf("%s: got %+v, %v", b, got, ok)
		}
		if want.T != gridworld.TypeChat && (got.Re != want.Re || got.From != want.From || got.N != want.N) {
			t.Fatalf("%s: got %+v", b, got)
		}
		if want.T == gridworld.TypeChat && got.From != "" {
			t.Fatalf("%s: chat decoded: %+v", b, got)
		}
	}
}
