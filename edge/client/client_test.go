package client_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/edge/wire"
)

// fakeEdge accepts one connection, reads its first frame and answers with
// frames: a scripted edge for what the real one does not send yet.
func fakeEdge(t *testing.T, answer ...any) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		if _, err := wire.ReadFrame(r, 1<<16); err != nil {
			return
		}
		var out []byte
		for _, v := range answer {
			out = wire.AppendFrame(out, wire.Encode(v))
		}
		_, _ = nc.Write(out)
		_, _ = r.ReadByte() // until the client closes
	}()
	return l.Addr().String()
}

// TestChannelNotices: join and leave notices and channel messages arrive
// on Messages in the order sent, and only session messages count for the
// reconnect's last-seq.
func TestChannelNotices(t *testing.T) {
	addr := fakeEdge(t,
		wire.LoginOK{Version: 1, Session: "s1", Token: "t", MaxFrame: 1 << 16, RatePerSecond: 50},
		wire.ChannelJoin{Channel: "lobby"},
		wire.ChannelMessage{Channel: "lobby", Seq: 7, Payload: []byte("hi all")},
		wire.Message{Seq: 9, Payload: []byte("hi you")},
		wire.ChannelLeave{Channel: "lobby"},
	)
	c, err := client.Dial(t.Context(), addr, "ann", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := []client.Message{
		{Kind: client.KindJoined, Channel: "lobby"},
		{Kind: client.KindMessage, Channel: "lobby", Seq: 7, Payload: []byte("hi all")},
		{Kind: client.KindMessage, Seq: 9, Payload: []byte("hi you")},
		{Kind: client.KindLeft, Channel: "lobby"},
	}
	for i, w := range want {
		select {
		case m := <-c.Messages():
			if !reflect.DeepEqual(m, w) {
				t.Fatalf("message %d: %+v, want %+v", i, m, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d never came", i)
		}
	}
}

// TestDialContext: a login the edge never answers ends with the context.
func TestDialContext(t *testing.T) {
	addr := fakeEdge(t) // reads the login, answers nothing
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := client.Dial(ctx, addr, "ann", "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial: %v, want context.DeadlineExceeded", err)
	}
}

// TestLoginFailed: the edge's refusal comes back as a ProtocolError with
// its code.
func TestLoginFailed(t *testing.T) {
	addr := fakeEdge(t, wire.LoginFailed{Code: wire.CodeBadCredentials, Reason: "no"})
	_, err := client.Dial(t.Context(), addr, "ann", "pw")
	var pe *wire.ProtocolError
	if !errors.As(err, &pe) || pe.Code != wire.CodeBadCredentials {
		t.Fatalf("Dial: %v, want bad credentials", err)
	}
}

// TestDialWebSocketContext: over WebSocket too, a login the edge never
// answers ends with the context.
func TestDialWebSocketContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wire.WebSocketSubprotocol}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for { // reads the login, answers nothing, until the client goes
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := client.DialWebSocket(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), "ann", "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DialWebSocket: %v, want context.DeadlineExceeded", err)
	}
}

// TestVersionFallback: an edge that speaks only version 1 answers a
// version 2 LOGIN with bad-version and closes; the client logs in again
// at version 1, and its sends are version 1's SENDs.
func TestVersionFallback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan wire.Frame, 4)
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			r := bufio.NewReader(nc)
			f, err := wire.ReadFrame(r, 1<<16)
			if err != nil {
				nc.Close()
				return
			}
			if login, _ := wire.Decode(f); login.(wire.Login).Version != 1 {
				_, _ = nc.Write(wire.AppendFrame(nil, wire.Encode(wire.ErrorInfo{Code: wire.CodeBadVersion, Reason: "this edge speaks version 1"})))
				nc.Close()
				continue
			}
			_, _ = nc.Write(wire.AppendFrame(nil, wire.Encode(wire.LoginOK{Version: 1, Session: "s", Token: "t", MaxFrame: 1 << 16, RatePerSecond: 50})))
			if f, err := wire.ReadFrame(r, 1<<16); err == nil {
				got <- f
			}
			_, _ = r.ReadByte() // until the client closes
			nc.Close()
		}
	}()
	c, err := client.Dial(t.Context(), l.Addr().String(), "ann", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Version() != 1 {
		t.Fatalf("version %d, want 1", c.Version())
	}
	if err := c.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if f := <-got; f.Op != wire.OpSend || string(f.Body) != "hi" {
		t.Fatalf("sent op 0x%02x %q, want SEND hi", f.Op, f.Body)
	}
}
