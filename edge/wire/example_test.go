package wire_test

import (
	"bytes"
	"fmt"

	"github.com/starbus/starbus/edge/wire"
)

// ExampleEncode builds the frames of PROTOCOL.md's example.
func ExampleEncode() {
	login := wire.AppendFrame(nil, wire.Encode(wire.Login{Version: wire.Version1, Name: "ann", Password: "pw"}))
	fmt.Printf("% x\n", login)
	fmt.Printf("% x\n", wire.AppendFrame(nil, wire.Encode(wire.Send{Payload: []byte("hi")})))
	// Output:
	// 00 00 00 0b 01 01 00 03 61 6e 6e 00 02 70 77
	// 00 00 00 03 03 68 69
}

// ExampleDecode reads a frame from the wire and decodes it.
func ExampleDecode() {
	raw := []byte{0, 0, 0, 0x0b, 0x83, 0, 0, 0, 0, 0, 0, 0, 7, 'y', 'o'}
	f, err := wire.ReadFrame(bytes.NewReader(raw), 1<<16)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := wire.Decode(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	m := v.(wire.Message)
	fmt.Printf("MESSAGE seq %d: %s\n", m.Seq, m.Payload)
	// Output:
	// MESSAGE seq 7: yo
}
