package edge

import (
	"github.com/nats-io/nats.go"
)

// local is a channel, or a cell of an area, that some sessions of this
// edge are in: its members, and while it has any, the subscription that
// brings its best-effort messages (nil for a reliable one, whose messages
// come with the live consumer).
type local struct {
	members map[*session]struct{}
	sub     *nats.Subscription
}

// localIndex is the edge's index of channels (by name) or of cells (by
// cellKey). Its users hold Server.chmu.
type localIndex[K comparable] map[K]*local

// add makes ss a member of k. If subject is not "", k's best-effort
// messages come on it: the first member subscribes.
func (ix localIndex[K]) add(s *Server, k K, ss *session, subject string) {
	l := ix[k]
	if l == nil {
		l = &local{members: map[*session]struct{}{}}
		ix[k] = l
	}
	l.members[ss] = struct{}{}
	if subject != "" && l.sub == nil {
		var err error
		l.sub, err = s.JS.Conn().Subscribe(subject, func(m *nats.Msg) { s.in.push(s.ctx, inMsg{live: m}) })
		if err != nil {
			s.log.Warn("best-effort messages not subscribed", "subject", subject, logErr, err)
		}
	}
}

// remove undoes add (for a session that is not a member, it does
// nothing); the last member unsubscribes.
func (ix localIndex[K]) remove(k K, ss *session) {
	l := ix[k]
	if l == nil {
		return
	}
	delete(l.members, ss)
	if len(l.members) == 0 {
		if l.sub != nil {
			_ = l.sub.Unsubscribe()
		}
		delete(ix, k)
	}
}

// appendMembers appends to out the members of k.
func (ix localIndex[K]) appendMembers(k K, out []*session) []*session {
	if l := ix[k]; l != nil {
		for ss := range l.members {
			out = append(out, ss)
		}
	}
	return out
}
