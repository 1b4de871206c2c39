package edge

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/kv"
)

// Areas of interest (see handlers.Area). A session's interests are
// applied in order with its other messages, from the notices on its
// subject (ss.areas, as of ss.delivered). The edge keeps an index from
// each cell of an area to the sessions whose square touches it, and, for
// best-effort areas, a subscription to each indexed cell's subject while
// it has sessions. An area event goes to the sessions indexed at its cell,
// and each checks the event's position against its square: the index
// narrows, the square decides.

// cellKey names one cell of one area.
type cellKey struct {
	area string
	x, y int64
}

// areaItem reads an area event stored at seq on subject.
func (s *Server) areaItem(subject string, h nats.Header, data []byte, seq uint64) (outItem, bool) {
	area, cx, cy, ok := s.World.ParseArea(subject)
	if !ok {
		return outItem{}, false
	}
	x, y, ok := bus.ParseAt(h.Get(bus.HeaderAt))
	return outItem{seq: seq, kind: itemArea, channel: area, cell: cellKey{area, cx, cy}, x: x, y: y, payload: data}, ok
}

// interestItem reads an interest notice.
func interestItem(h nats.Header, data []byte, seq uint64) (outItem, bool) {
	n, err := bus.DecodeInterestNotice(data)
	if err != nil {
		return outItem{}, false
	}
	return outItem{seq: seq, kind: itemInterest, channel: n.Area, interest: &n}, true
}

// applyInterest applies an interest notice to ss and returns the item its
// client is told of: a join at its first interest in the area, a leave
// when it ends, nothing when it moves. ss.mu is held.
func (s *Server) applyInterest(ss *session, it outItem) (outItem, bool) {
	n := it.interest
	prev, had := ss.areas[n.Area]
	out, tell := lookAt(ss.areas, it)
	if n.Drop || !had || prev.Cells() != n.Cells() || prev.Delivery != n.Delivery {
		s.areaSync(ss)
	}
	return out, tell
}

// sees reports whether ss's interest, as applied, covers the area event
// it. ss.mu is held.
func (ss *session) sees(it outItem) bool {
	in, ok := ss.areas[it.channel]
	return ok && in.Covers(it.x, it.y)
}

// areaAdd indexes ss in every cell of in, keeping the cells it is indexed
// in already: while a session resumes, the live dispatch holds back the
// events of every square it may look from. ss.mu is held.
func (s *Server) areaAdd(ss *session, in bus.Interest) {
	r := in.Cells()
	s.chmu.Lock()
	defer s.chmu.Unlock()
	for x := r.X0; x <= r.X1; x++ {
		for y := r.Y0; y <= r.Y1; y++ {
			k := cellKey{in.Area, x, y}
			if _, ok := ss.cells[k]; !ok {
				ss.cells[k] = struct{}{}
				s.cellAdd(ss, k, in.Delivery)
			}
		}
	}
}

// areaSync indexes ss in exactly the cells of its interests. ss.mu is held.
func (s *Server) areaSync(ss *session) {
	s.chmu.Lock()
	for k := range ss.cells {
		if in, ok := ss.areas[k.area]; !ok || !in.Cells().Contains(k.x, k.y) {
			delete(ss.cells, k)
			s.cells.remove(k, ss)
		}
	}
	s.chmu.Unlock()
	for _, in := range ss.areas {
		s.areaAdd(ss, in)
	}
}

// areaDrop removes ss from every cell of the index. ss.mu is held.
func (s *Server) areaDrop(ss *session) {
	s.chmu.Lock()
	defer s.chmu.Unlock()
	for k := range ss.cells {
		delete(ss.cells, k)
		s.cells.remove(k, ss)
	}
}

// cellAdd indexes ss at cell k. s.chmu is held.
func (s *Server) cellAdd(ss *session, k cellKey, delivery string) {
	subj := ""
	if delivery == bus.DeliveryBestEffort {
		subj, _ = s.World.LiveArea(k.area, k.x, k.y)
	}
	s.cells.add(s, k, ss, subj)
}

// cellMembers appends to out the sessions of this edge indexed at k.
func (s *Server) cellMembers(k cellKey, out []*session) []*session {
	s.chmu.Lock()
	defer s.chmu.Unlock()
	return s.cells.appendMembers(k, out)
}

// dispatchArea delivers a stored area event to the sessions that see it.
func (s *Server) dispatchArea(it outItem, d *dispatcher) {
	it.wire = it.encoded()
	d.members = s.cellMembers(it.cell, d.members[:0])
	for i, ss := range d.members {
		s.deliver(ss, it, &d.fl)
		d.members[i] = nil
	}
}

// dispatchLiveArea delivers a best-effort area event to the connected
// sessions whose square holds it, encoded once for all.
func (s *Server) dispatchLiveArea(m *nats.Msg, d *dispatcher) {
	area, cx, cy, ok := s.World.ParseLiveArea(m.Subject)
	if !ok {
		return
	}
	x, y, ok := bus.ParseAt(m.Header.Get(bus.HeaderAt))
	if !ok {
		return
	}
	it := outItem{kind: itemArea, channel: area, x: x, y: y}
	var frame []byte
	d.members = s.cellMembers(cellKey{area, cx, cy}, d.members[:0])
	for i, ss := range d.members {
		d.members[i] = nil
		ss.mu.Lock()
		if ss.conn != nil && !ss.holding && !ss.ended && ss.sees(it) {
			if frame == nil {
				frame = wire.AppendFrame(nil, wire.Encode(wire.ChannelMessage{Channel: area, Payload: m.Data}))
			}
			ss.conn.sendLate(frame, holdArea, &d.fl)
		}
		ss.mu.Unlock()
	}
}

// lookAt applies an interest notice to look, a session's interests, and
// returns the item its client is told of, as applyInterest does.
func lookAt(look map[string]bus.Interest, it outItem) (outItem, bool) {
	n := it.interest
	_, had := look[n.Area]
	if n.Drop {
		delete(look, n.Area)
		return outItem{seq: it.seq, kind: itemLeave, channel: n.Area}, had
	}
	look[n.Area] = n.Interest
	return outItem{seq: it.seq, kind: itemJoin, channel: n.Area}, !had
}

// readInterests reads the interests of session into areas.
func (s *Server) readInterests(ctx context.Context, tx *kv.Tx, session string, areas map[string]bus.Interest) error {
	keys, err := tx.List(ctx, bus.InterestPrefix(session))
	if err != nil {
		return err
	}
	for _, k := range keys {
		var in bus.Interest
		if err := tx.Get(ctx, k, &in); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				continue
			}
			return err
		}
		if in.Validate() == nil {
			areas[in.Area] = in
		}
	}
	return nil
}
