package edge

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge/wire"
)

// itemKind tells what a stored message to clients is.
type itemKind uint8

const (
	itemNone     itemKind = iota // not for the client (malformed, or a notice of another kind)
	itemMessage                  // a message to the session
	itemChannel                  // a message to a channel
	itemJoin                     // the session joined a channel
	itemLeave                    // the session left a channel
	itemRegion                   // the session's events go to another region
	itemInterest                 // the session's interest in an area changed
	itemArea                     // an event in an area
)

// outItem is one stored message to clients, as a session's delivery
// handles it.
type outItem struct {
	seq      uint64
	kind     itemKind
	channel  string
	delivery string // of a join or leave
	payload  []byte
	wire     []byte // the frame, encoded once for every member of a channel

	cell     cellKey             // of an area event
	x, y     float64             // an area event's position
	interest *bus.InterestNotice // of an interest notice
}

// encoded is the frame the client receives for it, encoded (length prefix
// included): a channel message's is shared by its members.
func (it outItem) encoded() []byte {
	if it.wire != nil {
		return it.wire
	}
	return wire.AppendFrame(nil, it.frame())
}

// frame is what the client receives for it.
func (it outItem) frame() wire.Frame {
	switch it.kind {
	case itemChannel, itemArea:
		return wire.Encode(wire.ChannelMessage{Channel: it.channel, Seq: it.seq, Payload: it.payload})
	case itemJoin:
		return wire.Encode(wire.ChannelJoin{Seq: it.seq, Channel: it.channel})
	case itemLeave:
		return wire.Encode(wire.ChannelLeave{Seq: it.seq, Channel: it.channel})
	default:
		return wire.Encode(wire.Message{Seq: it.seq, Payload: it.payload})
	}
}

// item reads a stored message on a session's or a channel's subject.
func (s *Server) item(m jetstream.Msg, seq uint64) outItem {
	if name, ok := s.World.ParseChannel(m.Subject()); ok {
		return outItem{seq: seq, kind: itemChannel, channel: name, payload: m.Data()}
	}
	if it, ok := s.areaItem(m.Subject(), m.Headers(), m.Data(), seq); ok {
		return it
	}
	if it, ok := noticeItem(m.Headers(), seq); ok {
		return it
	}
	switch m.Headers().Get(bus.HeaderNotice) {
	case "":
	case bus.NoticeInterest:
		if it, ok := interestItem(m.Headers(), m.Data(), seq); ok {
			return it
		}
		return outItem{seq: seq, kind: itemNone}
	default:
		return outItem{seq: seq, kind: itemNone}
	}
	return outItem{seq: seq, kind: itemMessage, payload: m.Data()}
}

// noticeItem reads a notice's headers.
func noticeItem(h nats.Header, seq uint64) (outItem, bool) {
	it := outItem{seq: seq, channel: h.Get(bus.HeaderChannel), delivery: h.Get(bus.HeaderDelivery)}
	switch h.Get(bus.HeaderNotice) {
	case bus.NoticeJoin:
		it.kind = itemJoin
	case bus.NoticeLeave:
		it.kind = itemLeave
	case bus.NoticeRegion:
		it.kind, it.channel = itemRegion, h.Get(bus.HeaderRegion)
		return it, bus.ValidName(it.channel) == nil
	default:
		return it, false
	}
	if bus.ValidName(it.channel) != nil || it.delivery != bus.DeliveryReliable && it.delivery != bus.DeliveryBestEffort {
		return it, false
	}
	return it, true
}

// startDelivery starts the edge's live consumer: every message stored for
// sessions and reliable channels from now on, in stream order, handed to
// the dispatcher.
func (s *Server) startDelivery(ctx context.Context) (jetstream.ConsumeContext, error) {
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.World.OutFilter()},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, err
	}
	return cons.Consume(func(m jetstream.Msg) { s.in.push(s.ctx, inMsg{stored: m}) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Warn("session delivery", logErr, err)
		}))
}

// inbox is the dispatcher's queue: what the live consumer and the
// best-effort subscriptions receive, in the order it arrives. Their
// callbacks only queue it; the dispatcher takes everything queued at once
// and delivers it as one burst, waking each connection's writer once at
// its end (see flusher). The bound holds the callbacks back, as
// dispatching in them did.
type inbox struct {
	mu    sync.Mutex
	msgs  []inMsg
	ready chan struct{} // capacity 1: msgs is not empty
	room  chan struct{} // closed when the dispatcher takes msgs; made by a waiting callback
}

// inMsg is a stored message or a best-effort one.
type inMsg struct {
	stored jetstream.Msg
	live   *nats.Msg
}

// inboxMax bounds the messages waiting for the dispatcher.
const inboxMax = 1024

// push queues m for the dispatcher, waiting for room until ctx ends.
func (in *inbox) push(ctx context.Context, m inMsg) {
	for {
		in.mu.Lock()
		if len(in.msgs) < inboxMax {
			in.msgs = append(in.msgs, m)
			first := len(in.msgs) == 1
			in.mu.Unlock()
			if first {
				select {
				case in.ready <- struct{}{}:
				default:
				}
			}
			return
		}
		if in.room == nil {
			in.room = make(chan struct{})
		}
		room := in.room
		in.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return
		}
	}
}

// take returns what is queued, leaving spare (emptied) in its place.
func (in *inbox) take(spare []inMsg) []inMsg {
	in.mu.Lock()
	defer in.mu.Unlock()
	msgs := in.msgs
	in.msgs = spare[:0]
	if in.room != nil {
		close(in.room)
		in.room = nil
	}
	return msgs
}

// dispatcher is the state of the dispatch goroutine, reused from one
// message to the next.
type dispatcher struct {
	fl      flusher
	members []*session
}

// dispatchLoop delivers what the inbox receives, burst by burst, until
// ctx ends. One goroutine runs it: a session's notices and its channels'
// messages are delivered in the order of their commits.
func (s *Server) dispatchLoop(ctx context.Context) {
	var d dispatcher
	var batch []inMsg
	// A timer per class of late list, and its channel while the list
	// waits (nil otherwise).
	var late [holdClasses]*time.Timer
	var lateC [holdClasses]<-chan time.Time
	for k := range late {
		late[k] = time.NewTimer(time.Hour)
		late[k].Stop()
	}
	for {
		select {
		case <-s.in.ready:
		case <-lateC[holdChannel]:
			lateC[holdChannel] = nil
			d.fl.flushLate(holdChannel)
			continue
		case <-lateC[holdArea]:
			lateC[holdArea] = nil
			d.fl.flushLate(holdArea)
			continue
		case <-ctx.Done():
			return
		}
		batch = s.in.take(batch)
		if s.holds() {
			d.fl.now = s.now()
		}
		for i, m := range batch {
			if m.stored != nil {
				s.dispatch(m.stored, &d)
			} else {
				s.dispatchLive(m.live, &d)
			}
			batch[i] = inMsg{}
		}
		d.fl.flush()
		// Only a positive delay sets d.fl.now, and so fills a late list.
		for k := range late {
			if len(d.fl.late[k]) > 0 && lateC[k] == nil {
				late[k].Reset(s.holdFor(holdClass(k)))
				lateC[k] = late[k].C
			}
		}
	}
}

// dispatch delivers a stored message to the session it names or to this
// edge's members of the channel it names.
func (s *Server) dispatch(m jetstream.Msg, d *dispatcher) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	if o := s.Observer; o != nil {
		o.ObserveDeliveryWait(time.Since(meta.Timestamp))
	}
	it := s.item(m, meta.Sequence.Stream)
	if it.kind == itemArea {
		s.dispatchArea(it, d)
		return
	}
	if it.kind == itemChannel {
		it.wire = it.encoded()
		d.members = s.members(it.channel, d.members[:0])
		for i, ss := range d.members {
			s.deliver(ss, it, &d.fl)
			d.members[i] = nil
		}
		return
	}
	id, ok := s.World.ParseSession(m.Subject())
	if !ok {
		return
	}
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil {
		return // another edge's session, or one that has ended
	}
	if it.kind == itemRegion {
		ss.setRegion(it.channel)
	}
	s.deliver(ss, it, &d.fl)
}

// members appends to out the sessions of this edge in the channel name.
func (s *Server) members(name string, out []*session) []*session {
	s.chmu.Lock()
	defer s.chmu.Unlock()
	return s.chans.appendMembers(name, out)
}

// indexAdd makes ss one of the edge's members of the channel name: the
// edge routes the channel's messages to it. ss.mu is held (lock order:
// session.mu, then Server.chmu).
func (s *Server) indexAdd(ss *session, name, delivery string) {
	s.chmu.Lock()
	defer s.chmu.Unlock()
	subj := ""
	if delivery == bus.DeliveryBestEffort {
		subj, _ = s.World.LiveChannel(name)
	}
	s.chans.add(s, name, ss, subj)
}

// indexRemove undoes indexAdd. ss.mu is held.
func (s *Server) indexRemove(ss *session, name string) {
	s.chmu.Lock()
	defer s.chmu.Unlock()
	s.chans.remove(name, ss)
}

// indexSync makes the index hold ss in exactly its channels. ss.mu is held.
func (s *Server) indexSync(ss *session) {
	s.chmu.Lock()
	for name := range s.chans {
		if _, keep := ss.chans[name]; !keep {
			s.chans.remove(name, ss)
		}
	}
	s.chmu.Unlock()
	for name, d := range ss.chans {
		s.indexAdd(ss, name, d)
	}
	s.areaSync(ss)
}

// indexDrop removes ss from every channel of the index. ss.mu is held.
func (s *Server) indexDrop(ss *session) {
	s.chmu.Lock()
	for name := range s.chans {
		s.chans.remove(name, ss)
	}
	s.chmu.Unlock()
	s.areaDrop(ss)
}

// dispatchLive hands a best-effort channel message to this edge's members,
// encoded once for all.
func (s *Server) dispatchLive(m *nats.Msg, d *dispatcher) {
	name, ok := s.World.ParseLiveChannel(m.Subject)
	if !ok {
		s.dispatchLiveArea(m, d)
		return
	}
	wire := wire.AppendFrame(nil, wire.Encode(wire.ChannelMessage{Channel: name, Payload: m.Data}))
	d.members = s.members(name, d.members[:0])
	for i, ss := range d.members {
		ss.deliverLive(wire, &d.fl)
		d.members[i] = nil
	}
}
