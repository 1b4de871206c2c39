package edge_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/internal/natstest"
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

// ExampleServer_WebSocketHandler serves an edge's WebSocket at /ws on an
// HTTP server, beside whatever else that server serves, and logs in
// through it with the Go client.
func ExampleServer_WebSocketHandler() {
	env, stop, err := natstest.StartExample("wsexample")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	srv := &edge.Server{JS: env.JS, World: env.World,
		Auth: edge.AuthFunc(func(_ context.Context, name, _ string) (string, error) { return name, nil })}
	mux := http.NewServeMux()
	mux.Handle("/ws", srv.WebSocketHandler(edge.WebSocketOptions{}))
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer srv.Shutdown(context.Background()) // first: it closes the WebSocket connections

	ctx := context.Background()
	c, err := client.DialWebSocket(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", "ann", "pw")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("logged in:", c.Session() != "")
	fmt.Println("logged out:", c.Logout(ctx))
	// Output:
	// logged in: true
	// logged out: <nil>
}
