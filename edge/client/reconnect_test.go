package client_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/internal/ordertest"
	"github.com/starbus/starbus/starbustest"
)

// startOrderWorld starts a world playing ordertest's game behind an edge
// (the public test kit's world: server, runtime, edge, all stopped with
// the test).
func startOrderWorld(t *testing.T) *starbustest.World {
	t.Helper()
	return starbustest.Start(t, starbustest.Options{Handler: ordertest.Handler()})
}

// proxy forwards loopback connections to an edge, and can cut them all at
// once, the bytes on their way lost, and refuse new ones: a network that
// fails. Its goroutines end with the test.
type proxy struct {
	t      *testing.T
	l      net.Listener
	target string
	refuse atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, l: l, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		l.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) accept() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(out, in); out.Close(); in.Close() })
		p.wg.Go(func() { _, _ = io.Copy(in, out); in.Close(); out.Close() })
	}
}

// cut drops every connection through the proxy, with RST: what was on its
// way is lost.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	p.conns = nil
}

// nextEvent waits for the client's next event.
func nextEvent(t *testing.T, c *client.Client) client.Event {
	t.Helper()
	select {
	case e := <-c.Events():
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no event")
	}
	return client.Event{}
}

// answers reads the answers to sends from..to, failing on a duplicate, a
// gap or anything out of order.
func answers(t *testing.T, c *client.Client, from, to uint64) {
	t.Helper()
	for want := from; want <= to; {
		select {
		case m := <-c.Messages():
			n, _, ok := ordertest.ParseAnswer(m.Payload)
			if !ok {
				continue // the welcome
			}
			if n != want {
				t.Fatalf("answer to send %d, want %d", n, want)
			}
			want++
		case <-time.After(20 * time.Second):
			t.Fatalf("no answer to send %d", want)
		}
	}
}

// TestAutoReconnect is #13's first defect end to end: a client writes 30
// SENDs and loses its connection at once, the bytes on their way lost; it
// reconnects by itself (Reconnecting, Resumed), to the same session, and
// every SEND is handled exactly once, in order, and answered once, in
// order. Sends made while it is away go out once it is back.
func TestAutoReconnect(t *testing.T) {
	w := startOrderWorld(t)
	p := startProxy(t, w.Addr)
	c, err := client.Connect(t.Context(), client.Config{
		Addrs: []string{p.addr()}, Name: "ann", AutoReconnect: true, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Version() != 2 {
		t.Fatalf("version %d", c.Version())
	}
	session := c.Session()
	for i := range 30 {
		if err := c.Send(fmt.Appendf(nil, "m%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	p.refuse.Store(true)
	p.cut()
	if e := nextEvent(t, c); e.Kind != client.Reconnecting {
		t.Fatalf("event %v", e)
	}
	for i := 30; i < 40; i++ { // while away
		if err := c.Send(fmt.Appendf(nil, "m%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	p.refuse.Store(false)
	if e := nextEvent(t, c); e.Kind != client.Resumed || e.Addr != p.addr() {
		t.Fatalf("event %v", e)
	}
	if c.Session() != session {
		t.Fatalf("session %q after the reconnect, was %q", c.Session(), session)
	}
	answers(t, c, 1, 40)
	natstest.Eventually(t, 10*time.Second, func() bool { return c.Unacked() == 0 }, "every send acknowledged")
	r, err := ordertest.Read(t.Context(), w.Store, session)
	if err != nil {
		t.Fatal(err)
	}
	if r.Last != 40 || r.N != 40 || len(r.Bad) != 0 {
		t.Fatalf("the game handled %+v, want 40 sends once each, in order", r)
	}
	if err := c.Logout(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-c.Closed()
}

// TestAutoReconnectGivesUp: a client that cannot resume its session
// within its grace reports Lost and is over.
func TestAutoReconnectGivesUp(t *testing.T) {
	w := startOrderWorld(t)
	p := startProxy(t, w.Addr)
	c, err := client.Connect(t.Context(), client.Config{
		Addrs: []string{p.addr()}, Name: "bob", AutoReconnect: true, Grace: 300 * time.Millisecond, MinBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.refuse.Store(true)
	p.cut()
	if e := nextEvent(t, c); e.Kind != client.Reconnecting {
		t.Fatalf("event %v", e)
	}
	e := nextEvent(t, c)
	if e.Kind != client.Lost || !errors.Is(e.Err, client.ErrGraceExpired) {
		t.Fatalf("event %v, want lost: grace expired", e)
	}
	<-c.Closed()
	if !errors.Is(c.Err(), client.ErrGraceExpired) {
		t.Fatalf("Err %v", c.Err())
	}
	if err := c.Send([]byte("late")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after giving up: %v", err)
	}
}

// TestAutoReconnectOtherAddress: the edge the client was on is gone for
// good; the next address of its list serves the session.
func TestAutoReconnectOtherAddress(t *testing.T) {
	w := startOrderWorld(t)
	first, second := startProxy(t, w.Addr), startProxy(t, w.Addr)
	c, err := client.Connect(t.Context(), client.Config{
		Addrs: []string{first.addr(), second.addr()}, Name: "cid", AutoReconnect: true, MinBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first.refuse.Store(true)
	first.cut()
	if e := nextEvent(t, c); e.Kind != client.Reconnecting {
		t.Fatalf("event %v", e)
	}
	if e := nextEvent(t, c); e.Kind != client.Resumed || e.Addr != second.addr() {
		t.Fatalf("event %v, want resumed on %s", e, second.addr())
	}
	if err := c.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	answers(t, c, 1, 1)
}

// TestManualReconnectResends: without AutoReconnect, Reconnect resumes
// the session and sends what the edge did not store, once.
func TestManualReconnectResends(t *testing.T) {
	w := startOrderWorld(t)
	p := startProxy(t, w.Addr)
	c, err := client.Dial(t.Context(), p.addr(), "dan", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 20 {
		if err := c.Send(fmt.Appendf(nil, "m%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	p.cut()
	<-c.Done()
	if err := c.Reconnect(t.Context()); err != nil {
		t.Fatal(err)
	}
	answers(t, c, 1, 20)
	r, err := ordertest.Read(t.Context(), w.Store, c.Session())
	if err != nil {
		t.Fatal(err)
	}
	if r.Last != 20 || r.N != 20 || len(r.Bad) != 0 {
		t.Fatalf("the game handled %+v", r)
	}
}
