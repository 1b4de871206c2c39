package edge

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
)

// itemKind tells what a stored message to clients is.
type itemKind uint8

const (
	itemNone    itemKind = iota // not for the client (malformed, or a notice of another kind)
	itemMessage                 // a message to the session
	itemChannel                 // a message to a channel
	itemJoin                    // the session joined a channel
	itemLeave                   // the session left a channel
	itemRegion                  // the session's events go to another region
)

// outItem is one stored message to clients, as a session's delivery
// handles it.
type outItem struct {
	seq      uint64
	kind     itemKind
	channel  string
	delivery string // of a join or leave
	payload  []byte
}

// frame is what the client receives for it.
func (it outItem) frame() Frame {
	switch it.kind {
	case itemChannel:
		return Encode(ChannelMessage{Channel: it.channel, Seq: it.seq, Payload: it.payload})
	case itemJoin:
		return Encode(ChannelJoin{Seq: it.seq, Channel: it.channel})
	case itemLeave:
		return Encode(ChannelLeave{Seq: it.seq, Channel: it.channel})
	default:
		return Encode(Message{Seq: it.seq, Payload: it.payload})
	}
}

// item reads a stored message on a session's or a channel's subject.
func (s *Server) item(m jetstream.Msg, seq uint64) outItem {
	if name, ok := s.World.ParseChannel(m.Subject()); ok {
		return outItem{seq: seq, kind: itemChannel, channel: name, payload: m.Data()}
	}
	if it, ok := noticeItem(m.Headers(), seq); ok {
		return it
	}
	if m.Headers().Get(bus.HeaderNotice) != "" {
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
// sessions and reliable channels from now on, in stream order, dispatched
// to the sessions of this edge.
func (s *Server) startDelivery(ctx context.Context) (jetstream.ConsumeContext, error) {
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.World.OutFilter()},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, err
	}
	return cons.Consume(s.dispatch, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.Warn("session delivery", logErr, err)
	}))
}

// dispatch is the live consumer's callback. One goroutine calls it, in
// stream order: a session's notices and its channels' messages reach it in
// the order of their commits.
func (s *Server) dispatch(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	it := s.item(m, meta.Sequence.Stream)
	if it.kind == itemChannel {
		for _, ss := range s.members(it.channel) {
			s.deliver(ss, it)
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
	s.deliver(ss, it)
}

// localChannel is a channel some sessions of this edge are in.
type localChannel struct {
	members map[*session]struct{}
	sub     *nats.Subscription // best-effort messages, while it has members
}

// members returns the sessions of this edge in the channel name.
func (s *Server) members(name string) []*session {
	s.chmu.Lock()
	defer s.chmu.Unlock()
	lc := s.chans[name]
	if lc == nil {
		return nil
	}
	out := make([]*session, 0, len(lc.members))
	for ss := range lc.members {
		out = append(out, ss)
	}
	return out
}

// indexAdd makes ss one of the edge's members of the channel name: the
// edge routes the channel's messages to it. ss.mu is held (lock order:
// session.mu, then Server.chmu).
func (s *Server) indexAdd(ss *session, name, delivery string) {
	s.chmu.Lock()
	defer s.chmu.Unlock()
	lc := s.chans[name]
	if lc == nil {
		lc = &localChannel{members: map[*session]struct{}{}}
		s.chans[name] = lc
	}
	lc.members[ss] = struct{}{}
	if delivery == bus.DeliveryBestEffort && lc.sub == nil {
		subj, err := s.World.LiveChannel(name)
		if err != nil {
			return
		}
		lc.sub, err = s.JS.Conn().Subscribe(subj, s.dispatchLive)
		if err != nil {
			s.log.Warn("best-effort channel not subscribed", "channel", name, logErr, err)
		}
	}
}

// indexRemove undoes indexAdd. ss.mu is held.
func (s *Server) indexRemove(ss *session, name string) {
	s.chmu.Lock()
	defer s.chmu.Unlock()
	s.unindex(ss, name)
}

func (s *Server) unindex(ss *session, name string) {
	lc := s.chans[name]
	if lc == nil {
		return
	}
	delete(lc.members, ss)
	if len(lc.members) == 0 {
		if lc.sub != nil {
			_ = lc.sub.Unsubscribe()
		}
		delete(s.chans, name)
	}
}

// indexSync makes the index hold ss in exactly its channels. ss.mu is held.
func (s *Server) indexSync(ss *session) {
	s.chmu.Lock()
	for name, lc := range s.chans {
		if _, in := lc.members[ss]; in {
			if _, keep := ss.chans[name]; !keep {
				s.unindex(ss, name)
			}
		}
	}
	s.chmu.Unlock()
	for name, d := range ss.chans {
		s.indexAdd(ss, name, d)
	}
}

// indexDrop removes ss from every channel of the index. ss.mu is held.
func (s *Server) indexDrop(ss *session) {
	s.chmu.Lock()
	defer s.chmu.Unlock()
	for name, lc := range s.chans {
		if _, in := lc.members[ss]; in {
			s.unindex(ss, name)
		}
	}
}

// dispatchLive hands a best-effort channel message to this edge's members.
func (s *Server) dispatchLive(m *nats.Msg) {
	name, ok := s.World.ParseLiveChannel(m.Subject)
	if !ok {
		return
	}
	f := Encode(ChannelMessage{Channel: name, Payload: m.Data})
	for _, ss := range s.members(name) {
		ss.deliverLive(f)
	}
}
