package kv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/kv/internal/forward"
)

// Commit forwarding.
//
// The committer keeps conflicting tasks out of one atomic batch, but it can
// only see its own process's tasks. When several worker processes commit
// to one world, each one's batches collide with the others': a batch fails
// whole if any of its checks fails, so one stale read in it re-runs every
// task it carried, and the more workers, the smaller and the more doomed
// their batches (measured with the bank workload on R1 file storage: 2,272
// events/s with one worker, 1,234 with two, 415 with four).
//
// So the workers of a world pick one of them, the commit leader (see
// handlers: the first live member of the group by name), and the others
// forward their multi-message commit groups to it ([Store.CommitVia]); the
// leader's committer takes each forwarded task as if it were its own
// ([Store.ServeCommits]), and its groups are formed from every worker's
// tasks at once, conflicts kept apart. One-message commits are still
// published directly: they are atomic alone and fail alone.
//
// The leader is an optimisation, never a point of correctness: every
// message still carries its revision checks and the server still decides.
// Two workers that both think they lead, or a worker committing directly
// while the leader is unreachable (no responders), only conflict more. A
// forwarded group that the leader does not answer in time has an unknown
// outcome ([ErrCommitUnknown]), as a commit to the server would.

// The wire form of forwarded requests and of their outcomes is package
// kv/internal/forward's, which depends on the standard library alone so
// that its fuzz target runs fast (see scripts/fuzz); this file converts
// between it and the committer's requests and errors.

// encodeRequests appends the wire form of rs to b.
func encodeRequests(b []byte, rs []*commitReq) []byte {
	wire := make([]forward.Request, len(rs))
	for i, r := range rs {
		msgs := make([]forward.Msg, len(r.msgs))
		for j, m := range r.msgs {
			msgs[j] = forward.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}
		}
		wire[i] = forward.Request{Reads: r.reads, Writes: r.writes, Msgs: msgs}
	}
	return forward.AppendRequests(b, wire)
}

// decodeRequests decodes requests encoded by encodeRequests, refusing any
// that addresses a subject outside world w or carries more than maxMsgs
// messages. The requests it returns have a done channel and their written
// entries (the state writes among their messages) set.
func decodeRequests(b []byte, w bus.World, maxMsgs int) ([]*commitReq, error) {
	wire, err := forward.DecodeRequests(b, maxMsgs, w.Contains)
	if err != nil {
		return nil, err
	}
	rs := make([]*commitReq, len(wire))
	for i, fr := range wire {
		r := &commitReq{reads: fr.Reads, writes: fr.Writes, msgs: make([]*nats.Msg, len(fr.Msgs)), done: make(chan error, 1)}
		for j, fm := range fr.Msgs {
			m := &nats.Msg{Subject: fm.Subject, Header: fm.Header, Data: fm.Data}
			if _, ok := w.ParseKey(m.Subject); ok {
				// Its revision is set when it is stored (see succeed).
				r.written = append(r.written, written{subj: m.Subject, e: stored(0, m.Data, m.Header), index: j})
			}
			r.msgs[j] = m
		}
		rs[i] = r
	}
	return rs, nil
}

// encodeOutcome appends the outcome of one request to b.
func encodeOutcome(b []byte, r *commitReq, err error) []byte {
	var ce *ConflictError
	o := forward.Outcome{Code: forward.Rejected}
	switch {
	case err == nil:
		o = forward.Outcome{Code: forward.OK, First: r.first}
	case errors.As(err, &ce):
		o = forward.Outcome{Code: forward.Conflict, Key: ce.Key, Read: ce.Read, Now: ce.Now}
	case errors.Is(err, ErrConflict):
		o = forward.Outcome{Code: forward.Conflict}
	case errors.Is(err, ErrClosed):
		o.Code = forward.Closed
	case errors.Is(err, ErrUnavailable):
		o.Code = forward.Unavailable
	case errors.Is(err, ErrCommitUnknown):
		o.Code = forward.Unknown
	}
	if err != nil && o.Code != forward.Conflict {
		o.Message = err.Error()
	}
	return forward.AppendOutcome(b, o)
}

// outcome is one decoded outcome of a forwarded request.
type outcome struct {
	first  uint64 // when err is nil
	err    error
	direct bool // nothing was decided: commit directly instead
}

// decodeOutcomes decodes a leader's reply to a request of n commits.
func decodeOutcomes(b []byte, n int, leader string) ([]outcome, error) {
	wire, err := forward.DecodeOutcomes(b, n)
	if err != nil {
		return nil, err
	}
	out := make([]outcome, n)
	for i, o := range wire {
		switch o.Code {
		case forward.OK:
			out[i].first = o.First
		case forward.Conflict:
			out[i].err = &ConflictError{Key: o.Key, Read: o.Read, Now: o.Now}
		case forward.Closed:
			out[i].direct = true
		case forward.Unavailable:
			out[i].err = fmt.Errorf("%w: via %s: %s", ErrUnavailable, leader, o.Message)
		case forward.Unknown:
			out[i].err = fmt.Errorf("%w: via %s: %s", ErrCommitUnknown, leader, o.Message)
		case forward.Rejected:
			out[i].err = fmt.Errorf("kv: commit rejected via %s: %s", leader, strings.TrimPrefix(o.Message, "kv: "))
		}
	}
	return out, nil
}

// CommitVia sends this store's multi-message commits to the store that
// serves them for member ([Store.ServeCommits]) instead of to the server;
// "" commits directly. The handler runtime sets it to its group's commit
// leader. A leader that cannot be reached (no responders) is skipped: the
// commit goes directly to the server.
func (s *Store) CommitVia(member string) error {
	if member == "" {
		s.via.Store(nil)
		return nil
	}
	subj, err := s.world.Commits(member)
	if err != nil {
		return fmt.Errorf("kv: commit via: %w", err)
	}
	if old := s.via.Load(); old != nil && old.subject == subj {
		return nil
	}
	s.via.Store(&route{member: member, subject: subj})
	return nil
}

// route is where commits are forwarded.
type route struct {
	member  string
	subject string
}

// ServeCommits takes the commits other stores forward to member (see
// [Store.CommitVia]) into this store's committer, until stop is called or
// the store closes. Requests that do not decode, or that address subjects
// outside the world, are refused whole with a clear error.
func (s *Store) ServeCommits(member string) (stop func(), err error) {
	subj, err := s.world.Commits(member)
	if err != nil {
		return nil, fmt.Errorf("kv: serve commits: %w", err)
	}
	nc := s.js.Conn()
	sub, err := nc.Subscribe(subj, s.serveCommit)
	if err == nil {
		err = nc.FlushTimeout(5 * time.Second) // the server knows the subscription on return
	}
	if err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		return nil, fmt.Errorf("kv: serve commits on %s: %w", subj, err)
	}
	s.smu.Lock()
	s.subs = append(s.subs, sub)
	s.smu.Unlock()
	return func() {
		s.smu.Lock()
		s.subs = slices.DeleteFunc(s.subs, func(x *nats.Subscription) bool { return x == sub })
		s.smu.Unlock()
		_ = sub.Unsubscribe()
	}, nil
}

// serveCommit handles one forwarded request: it hands each commit to the
// committer and, once every outcome is in, replies with them.
func (s *Store) serveCommit(m *nats.Msg) {
	rs, err := decodeRequests(m.Data, s.world, s.opts.MaxBatch)
	if err != nil {
		s.log.Warn("forwarded commit refused", "err", err)
		_ = m.Respond(nil) // an empty reply: the sender commits directly
		return
	}
	s.smu.Lock()
	if s.closing {
		s.smu.Unlock()
		_ = m.Respond(nil)
		return
	}
	s.wg.Add(1)
	s.smu.Unlock()
	go func() {
		defer s.wg.Done()
		for _, r := range rs {
			select {
			case s.reqs <- r:
			case <-s.quit:
				r.done <- ErrClosed
			}
		}
		reply := forward.AppendReply(nil, len(rs))
		for _, r := range rs {
			err := <-r.done
			if err == nil {
				s.stats.forwarded.Add(1)
			}
			reply = encodeOutcome(reply, r, err)
		}
		_ = m.Respond(reply)
	}()
}

// forward sends rs to the commit leader and delivers the outcomes it
// decides. It returns the requests the leader did not decide, which the
// caller commits directly: those it refused unread, all of them when it
// could not be reached, or was closing.
func (s *Store) forward(ctx context.Context, via *route, rs []*commitReq) []*commitReq {
	nc := s.js.Conn()
	data := encodeRequests(nil, rs)
	if int64(len(data)) > nc.MaxPayload() {
		return rs
	}
	fctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	reply, err := nc.RequestWithContext(fctx, via.subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return rs
	case err != nil:
		s.failWith(rs, fmt.Errorf("%w: via %s: %w", ErrCommitUnknown, via.member, err))
		return nil
	case len(reply.Data) == 0:
		return rs
	}
	outs, err := decodeOutcomes(reply.Data, len(rs), via.member)
	if err != nil {
		// The leader answered, so it decided; what, this store cannot tell.
		s.failWith(rs, fmt.Errorf("%w: via %s: %w", ErrCommitUnknown, via.member, err))
		return nil
	}
	s.stats.forwards.Add(1)
	var direct []*commitReq
	for i, r := range rs {
		switch o := outs[i]; {
		case o.direct:
			direct = append(direct, r)
		case o.err == nil:
			s.succeed(r, o.first)
		default:
			s.failWith([]*commitReq{r}, o.err)
		}
	}
	return direct
}
