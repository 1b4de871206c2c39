package sgsclient_test

import (
	"fmt"

	"github.com/starbus/starbus/edge/sgs"
	"github.com/starbus/starbus/edge/sgs/sgsclient"
)

// A session's relocation, step by step, without I/O: what the machine
// answers to each of the server's messages.
func ExampleMachine() {
	m := sgsclient.NewMachine("ann", "pw")
	m.Login() // sent on a new connection
	for _, msg := range []sgs.Message{
		sgs.LoginSuccess{ReconnectionKey: []byte("S1")},
		sgs.SuspendMessages{},
		sgs.RelocateNotification{Host: "edge2", Port: 62964, RelocationKey: []byte("k")},
		sgs.RelocateSuccess{ReconnectionKey: []byte("S1")},
	} {
		actions, _ := m.Step(msg)
		for _, a := range actions {
			switch {
			case a.Send != nil:
				fmt.Printf("send %s\n", sgs.OpName(a.Send.Op()))
			case a.Dial != "":
				fmt.Printf("connect to %s, send %s\n", a.Dial, sgs.OpName(a.Then.Op()))
			}
		}
		fmt.Println(m.State())
	}
	// Output:
	// logged-in
	// send SUSPEND_MESSAGES_COMPLETE
	// suspended
	// connect to edge2:62964, send RELOCATE_REQUEST
	// relocating
	// logged-in
}
