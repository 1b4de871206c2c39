package client

import (
	"fmt"

	"github.com/starbus/starbus/edge/wire"
)

// outbox is the client's side of protocol version 2's numbered sends
// (PROTOCOL.md, Numbered sends), as a pure state machine: it does no I/O,
// starts no goroutines and reads no clock, and the Client feeds it what
// happens. It numbers each send, keeps it until the edge acknowledges it
// stored, and says what to write on a connection: after a reconnect, the
// sends the edge has not stored, in order, then the new ones.
//
// Its numbers: acked is the last send the edge said is stored (by an ACK,
// or by a LOGIN_OK's last-send); written is the last send written on the
// current connection; next is the number the next send gets. Always
// acked <= written < next, and pending holds the sends acked+1 ... next-1,
// in order.
type outbox struct {
	max     int // bound on pending
	acked   uint64
	written uint64
	next    uint64
	pending []wire.Frame // the sends after acked, encoded with their numbers
}

func newOutbox(max int) *outbox {
	return &outbox{max: max, next: 1}
}

// full reports whether max sends wait for their acknowledgement: add must
// wait for an ack.
func (o *outbox) full() bool { return len(o.pending) >= o.max }

// add numbers a send (a SEQ_CHANNEL_SEND if channel is set, else a
// SEQ_SEND) and keeps it. It reports false, keeping nothing, when full.
func (o *outbox) add(channel *string, payload []byte) (uint64, bool) {
	if o.full() {
		return 0, false
	}
	seq := o.next
	o.next++
	var f wire.Frame
	if channel != nil {
		f = wire.Encode(wire.SeqChannelSend{Seq: seq, Channel: *channel, Payload: payload})
	} else {
		f = wire.Encode(wire.SeqSend{Seq: seq, Payload: payload})
	}
	o.pending = append(o.pending, f)
	return seq, true
}

// take returns the sends not yet written on the current connection, in
// order, and counts them written.
func (o *outbox) take() []wire.Frame {
	from := int(o.written - o.acked)
	out := o.pending[from:]
	o.written = o.next - 1
	return out
}

// ack takes the edge's word that the sends up to n are stored: they are
// dropped. An ack of a send not yet written on this connection is a
// protocol error; an ack below acked (an older one) changes nothing.
func (o *outbox) ack(n uint64) error {
	if n > o.written {
		return fmt.Errorf("client: ACK %d of a send not written (last written %d)", n, o.written)
	}
	o.drop(n)
	return nil
}

// resume starts a new connection whose LOGIN_OK says the sends up to n are
// stored: they are dropped, and every other pending send is to be written
// again (take). The edge may not say less than it acknowledged (the
// RECONNECT told it acked), nor more than was sent.
func (o *outbox) resume(n uint64) error {
	switch {
	case n < o.acked:
		return fmt.Errorf("client: the edge says send %d is the last stored, after acknowledging %d", n, o.acked)
	case n >= o.next:
		return fmt.Errorf("client: the edge says send %d is stored, but the last sent is %d", n, o.next-1)
	}
	o.drop(n)
	o.written = o.acked
	return nil
}

// drop forgets the sends up to n, if n is past acked.
func (o *outbox) drop(n uint64) {
	if n <= o.acked {
		return
	}
	k := int(n - o.acked)
	clear(o.pending[:k]) // let the payloads go
	o.pending = o.pending[k:]
	o.acked = n
}

// lastAcked is what a RECONNECT tells the edge: the client will not send
// those again.
func (o *outbox) lastAcked() uint64 { return o.acked }

// unacked is the number of sends kept for the edge's acknowledgement.
func (o *outbox) unacked() int { return len(o.pending) }
