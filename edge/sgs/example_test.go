package sgs_test

import (
	"bytes"
	"fmt"

	"github.com/starbus/starbus/edge/sgs"
)

// A LOGIN_REQUEST on the wire, as PROTOCOL.md shows it, and back.
func Example() {
	b, _ := sgs.Append(nil, sgs.LoginRequest{Version: sgs.Version, Name: "ann", Password: "pw"})
	fmt.Printf("% x\n", b)
	f, _ := sgs.ReadFrame(bytes.NewReader(b))
	m, _ := sgs.Decode(f)
	fmt.Printf("%s %+v\n", sgs.OpName(f.Op), m)
	// Output:
	// 00 0b 10 05 00 03 61 6e 6e 00 02 70 77
	// LOGIN_REQUEST {Version:5 Name:ann Password:pw}
}
