package edge

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/starbus/starbus/edge/internal/link"
	"github.com/starbus/starbus/edge/internal/linktest"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/internal/natstest"
)

// pipeConn returns a connection of a server with the given outbound queue
// over an in-memory pipe, the client's end of it, and the write counter.
// The connection's writers are joined when the test ends.
func pipeConn(t *testing.T, queue int) (*conn, *bufio.Reader, *linktest.CountingConn) {
	t.Helper()
	return pipeConnOf(t, &Server{OutboundQueue: queue})
}

// pipeConnOf is pipeConn for a connection of s.
func pipeConnOf(t *testing.T, s *Server) (*conn, *bufio.Reader, *linktest.CountingConn) {
	t.Helper()
	s.init()
	server, client := net.Pipe()
	cc := &linktest.CountingConn{Conn: server}
	c := s.newConn(link.NewTCP(cc))
	t.Cleanup(func() {
		c.close()
		client.Close()
		c.writer.Wait()
		server.Close()
	})
	return c, bufio.NewReader(client), cc
}

func wireMsg(seq uint64) []byte {
	return wire.AppendFrame(nil, wire.Encode(wire.Message{Seq: seq, Payload: []byte("x")}))
}

// readMessages reads n frames and checks they are MESSAGEs numbered from 1.
func readMessages(t *testing.T, r *bufio.Reader, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		f, err := wire.ReadFrame(r, 1<<20)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		v, err := wire.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := v.(wire.Message); !ok || m.Seq != uint64(i) {
			t.Fatalf("frame %d: got %+v", i, v)
		}
	}
}

// TestWriterCoalesces: frames queued in one burst (a flusher's) reach the
// client in order, with one write.
func TestWriterCoalesces(t *testing.T) {
	c, r, cc := pipeConn(t, 256)
	var fl flusher
	for i := 1; i <= 100; i++ {
		if !c.sendEncoded(wireMsg(uint64(i)), &fl) {
			t.Fatalf("frame %d not queued", i)
		}
	}
	if len(fl.conns) != 1 {
		t.Fatalf("the burst is to start %d writers, want 1", len(fl.conns))
	}
	fl.flush()
	readMessages(t, r, 100)
	if n := cc.Writes.Load(); n != 1 {
		t.Fatalf("%d writes for a burst, want 1", n)
	}
	// The next frame, sent alone, starts a writer of its own.
	c.send(wire.Encode(wire.Message{Seq: 101}))
	f, err := wire.ReadFrame(r, 1<<20)
	if err != nil || f.Op != wire.OpMessage {
		t.Fatalf("got %v, %v", f, err)
	}
}

// TestWriterLate: frames fanned out (sendLate) to a connection written to
// within the fan-out delay wait on the flusher's late list across bursts
// and reach the client in one write when it is flushed; a frame for the
// client alone starts the writer at once and takes the waiting frames
// along, in order; a quiet connection's frame does not wait.
func TestWriterLate(t *testing.T) {
	c, r, cc := pipeConn(t, 256)
	c.s.FanoutDelay = time.Hour
	c.taken = c.s.now() // written to just now
	fl := flusher{now: c.s.now()}
	for burst := range 3 { // three bursts of the dispatcher
		for i := 1; i <= 10; i++ {
			if !c.sendLate(wireMsg(uint64(burst*10+i)), holdChannel, &fl) {
				t.Fatalf("frame %d not queued", burst*10+i)
			}
		}
		fl.flush() // the end of a burst starts no writer for late frames
	}
	if len(fl.conns) != 0 || len(fl.late[holdChannel]) != 1 {
		t.Fatalf("writers to start: %d now, %d late; want 0, 1", len(fl.conns), len(fl.late[holdChannel]))
	}
	if n := cc.Writes.Load(); n != 0 {
		t.Fatalf("%d writes before the late flush, want 0", n)
	}
	fl.flushLate(holdChannel)
	readMessages(t, r, 30)
	if n := cc.Writes.Load(); n != 1 {
		t.Fatalf("%d writes for three bursts of late frames, want 1", n)
	}

	// Late frames, then a frame for the client alone: one write, at once,
	// in order; the late list's flush then finds nothing to write.
	c.writer.Wait() // the last writer has seen nothing more to write
	for i := 1; i <= 5; i++ {
		c.sendLate(wireMsg(uint64(i)), holdChannel, &fl)
	}
	fl.flush()
	if !c.send(wire.Encode(wire.Message{Seq: 6, Payload: []byte("x")})) {
		t.Fatal("answer not queued")
	}
	readMessages(t, r, 6)
	if n := cc.Writes.Load(); n != 2 {
		t.Fatalf("%d writes, want 2", n)
	}
	fl.flushLate(holdChannel)
	c.mu.Lock()
	late, out := c.late, c.out
	c.mu.Unlock()
	if late != [holdClasses]bool{} || out != nil {
		t.Fatalf("after the late flush: late %v, queued %v", late, out != nil)
	}

	// Without a flusher a late frame is written at once.
	c.sendLate(wireMsg(1), holdChannel, nil)
	readMessages(t, r, 1)

	// A connection last written to more than the delay before the burst
	// is quiet: its frame starts the writer at the end of the burst.
	c.writer.Wait() // the last writer has seen nothing more to write
	c.mu.Lock()
	fl.now = c.taken + c.s.FanoutDelay
	c.mu.Unlock()
	c.sendLate(wireMsg(1), holdChannel, &fl)
	if len(fl.conns) != 1 || len(fl.late[holdChannel]) != 0 {
		t.Fatalf("writers to start: %d now, %d late; want 1, 0", len(fl.conns), len(fl.late[holdChannel]))
	}
	fl.flush()
	readMessages(t, r, 1)
}

// TestWriterLateArea: an area's event waits up to the area's delay, a
// channel's message up to the fan-out delay, each on its own late list. A
// connection written to between the two delays ago holds the area's
// events and writes the channel's messages at once; a channel's message
// to a connection the area's list holds goes on the shorter list, whose
// flush takes the area's frames along, in order; an area's event to a
// connection the channel's list holds waits on that list.
func TestWriterLateArea(t *testing.T) {
	c, r, cc := pipeConn(t, 256)
	c.s.FanoutDelay, c.s.AreaDelay = 20*time.Millisecond, 50*time.Millisecond
	lists := func(fl *flusher) [3]int {
		return [3]int{len(fl.conns), len(fl.late[holdChannel]), len(fl.late[holdArea])}
	}

	// Written to 30 ms before the burst: past the fan-out delay, within
	// the area's.
	c.taken = c.s.now()
	fl := flusher{now: c.taken + 30*time.Millisecond}
	c.sendLate(wireMsg(1), holdChannel, &fl)
	if got := lists(&fl); got != [3]int{1, 0, 0} {
		t.Fatalf("a channel's message: writers now, channel-late, area-late %v, want [1 0 0]", got)
	}
	fl.flush()
	readMessages(t, r, 1)
	c.writer.Wait()

	// 30 ms after: the area's event waits; a channel's message goes at
	// the burst's end, and takes it along.
	c.mu.Lock()
	fl.now = c.taken + 30*time.Millisecond
	c.mu.Unlock()
	c.sendLate(wireMsg(1), holdArea, &fl)
	if got := lists(&fl); got != [3]int{0, 0, 1} {
		t.Fatalf("an area's event: %v, want [0 0 1]", got)
	}
	c.sendLate(wireMsg(2), holdChannel, &fl)
	if got := lists(&fl); got != [3]int{1, 0, 1} {
		t.Fatalf("then a channel's message: %v, want [1 0 1]", got)
	}
	fl.flush()
	readMessages(t, r, 2)
	c.writer.Wait()
	fl.flushLate(holdArea) // finds nothing left to write
	if n := cc.Writes.Load(); n != 2 {
		t.Fatalf("%d writes, want 2", n)
	}

	// 10 ms after: both wait, each on its list; the shorter list's flush
	// writes them all.
	c.mu.Lock()
	fl.now = c.taken + 10*time.Millisecond
	c.mu.Unlock()
	c.sendLate(wireMsg(1), holdArea, &fl)
	c.sendLate(wireMsg(2), holdChannel, &fl) // a shorter delay: its own list
	c.sendLate(wireMsg(3), holdArea, &fl)    // held by the channel's list already
	if got := lists(&fl); got != [3]int{0, 1, 1} {
		t.Fatalf("an area's event, a channel's message, an area's event: %v, want [0 1 1]", got)
	}
	fl.flush()
	if n := cc.Writes.Load(); n != 2 {
		t.Fatalf("%d writes before the late flushes, want 2", n)
	}
	fl.flushLate(holdChannel)
	readMessages(t, r, 3)
	c.writer.Wait()
	fl.flushLate(holdArea) // finds nothing left to write
	c.mu.Lock()
	late, out := c.late, c.out
	c.mu.Unlock()
	if n := cc.Writes.Load(); n != 3 || late != [holdClasses]bool{} || out != nil {
		t.Fatalf("after both flushes: %d writes (want 3), late %v, queued %v", n, late, out != nil)
	}

	// Without an area delay an area's event is written at the burst's end.
	c.s.AreaDelay = -1
	c.mu.Lock()
	fl.now = c.taken + time.Millisecond
	c.mu.Unlock()
	c.sendLate(wireMsg(1), holdArea, &fl)
	if got := lists(&fl); got != [3]int{1, 0, 0} {
		t.Fatalf("an area's event, no area delay: %v, want [1 0 0]", got)
	}
	fl.flush()
	readMessages(t, r, 1)
}

// TestWriterKeepsOrder: frames sent while the writer is busy, from several
// paths, arrive in the order they were queued.
func TestWriterKeepsOrder(t *testing.T) {
	c, r, _ := pipeConn(t, 1<<16)
	const n = 5000
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := 1; i <= n; i++ {
			var ok bool
			switch i % 3 {
			case 0:
				ok = c.sendEncoded(wireMsg(uint64(i)), nil)
			case 1:
				ok = c.sendEncodedWait(ctx, wireMsg(uint64(i)))
			default:
				ok = c.send(wire.Encode(wire.Message{Seq: uint64(i), Payload: []byte("x")}))
			}
			if !ok {
				done <- errors.New("frame not queued")
				return
			}
		}
		done <- nil
	}()
	readMessages(t, r, n)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWriteTimeout: a client that stops reading is disconnected once a
// write to it has waited between half of WriteTimeout and all of it
// (PROTOCOL.md, Flow control), however old the deadline the writer set
// before: the writer sets a new one when less than half is left.
func TestWriteTimeout(t *testing.T) {
	const timeout = time.Second
	c, r, _ := pipeConnOf(t, &Server{OutboundQueue: 16, WriteTimeout: timeout})
	c.sendEncoded(wireMsg(1), nil)
	readMessages(t, r, 1)
	// The deadline the first write set has aged: a quarter of the timeout
	// is left.
	c.dl.Lock()
	if c.writeDue.IsZero() {
		t.Fatal("the first write set no deadline")
	}
	c.writeDue = time.Now().Add(timeout / 4)
	if err := c.t.SetWriteDeadline(c.writeDue); err != nil {
		t.Fatal(err)
	}
	c.dl.Unlock()
	start := time.Now()
	c.sendEncoded(wireMsg(2), nil) // never read
	natstest.Eventually(t, 10*timeout, c.closing, "a client that does not read is disconnected")
	if waited := time.Since(start); waited < timeout/2 {
		t.Errorf("disconnected after %v, before half the write timeout (%v)", waited, timeout)
	}
	c.writer.Wait()
}

// TestWriterSlowConsumer: a client that does not read is disconnected once
// more than OutboundQueue frames wait, and told why after what was already
// being written.
func TestWriterSlowConsumer(t *testing.T) {
	c, r, _ := pipeConn(t, 4)
	// The first frame goes to the writer, which blocks in its write: the
	// client reads nothing yet. Then the queue fills.
	c.send(wire.Encode(wire.Message{Seq: 1, Payload: []byte("x")}))
	natstest.Eventually(t, 10*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.out == nil
	}, "the writer takes the first frame")
	for i := 2; i <= 5; i++ {
		if !c.sendEncoded(wireMsg(uint64(i)), nil) {
			t.Fatalf("frame %d refused, the queue holds 4", i)
		}
	}
	if c.sendEncoded(wireMsg(6), nil) {
		t.Fatal("frame 6 queued past the bound")
	}
	if !c.closing() {
		t.Fatal("a slow consumer is not disconnected")
	}
	if n := c.s.Stats().SlowConsumers; n != 1 {
		t.Errorf("Stats().SlowConsumers = %d, want 1", n)
	}
	readMessages(t, r, 1) // what was being written
	f, err := wire.ReadFrame(r, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := wire.Decode(f)
	if e, ok := v.(wire.ErrorInfo); !ok || e.Code != wire.CodeSlowConsumer {
		t.Fatalf("got %+v, want slow-consumer", v)
	}
}

// TestWriterFlushAndClose: LOGOUT's close comes after every frame queued
// before it, and nothing is queued after it.
func TestWriterFlushAndClose(t *testing.T) {
	c, r, _ := pipeConn(t, 256)
	for i := 1; i <= 10; i++ {
		c.sendEncoded(wireMsg(uint64(i)), nil)
	}
	c.flushAndClose()
	if c.sendEncoded(wireMsg(11), nil) {
		t.Fatal("a frame was queued after the close")
	}
	readMessages(t, r, 10)
	natstest.Eventually(t, 10*time.Second, c.closing, "closed after LOGOUT_OK")
}
