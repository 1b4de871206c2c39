package edge_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/internal/natstest"
)

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
