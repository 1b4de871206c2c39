package edge_test

import (
	"bytes"
	"fmt"

	"github.com/starbus/starbus/edge"
)

// ExampleEncode builds the frames of PROTOCOL.md's example.
func ExampleEncode() {
	login := edge.AppendFrame(nil, edge.Encode(edge.Login{Version: edge.ProtocolVersion, Name: "ann", Password: "pw"}))
	fmt.Printf("% x\n", login)
	fmt.Printf("% x\n", edge.AppendFrame(nil, edge.Encode(edge.Send{Payload: []byte("hi")})))
	// Output:
	// 00 00 00 0b 01 01 00 03 61 6e 6e 00 02 70 77
	// 00 00 00 03 03 68 69
}

// ExampleDecode reads a frame from the wire and decodes it.
func ExampleDecode() {
	wire := []byte{0, 0, 0, 0x0b, 0x83, 0, 0, 0, 0, 0, 0, 0, 7, 'y', 'o'}
	f, err := edge.ReadFrame(bytes.NewReader(wire), 1<<16)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := edge.Decode(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	m := v.(edge.Message)
	fmt.Printf("MESSAGE seq %d: %s\n", m.Seq, m.Payload)
	// Output:
	// MESSAGE seq 7: yo
}
