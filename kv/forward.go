package kv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
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

// forwardVersion leads every encoded request and reply.
const forwardVersion = 1

// Outcome codes of a forwarded commit, one per request in a reply.
const (
	outcomeOK          byte = iota // committed; the first message's stream sequence follows
	outcomeConflict                // a *ConflictError: key, read, now follow
	outcomeUnavailable             // nothing was decided; message follows
	outcomeUnknown                 // may have landed; message follows
	outcomeRejected                // the server refused it; message follows
	outcomeClosed                  // the leader is closing: nothing was decided, commit directly
)

// errBadForward reports a forwarded request or reply that does not decode.
var errBadForward = errors.New("kv: malformed forwarded commit")

// encodeRequests appends the wire form of rs to b: for each request its
// reads (subject, revision), its written subjects, and its messages
// (subject, headers, data).
func encodeRequests(b []byte, rs []*commitReq) []byte {
	b = append(b, forwardVersion)
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = binary.AppendUvarint(b, uint64(len(r.reads)))
		for subj, rev := range r.reads {
			b = appendString(b, subj)
			b = binary.AppendUvarint(b, rev)
		}
		b = binary.AppendUvarint(b, uint64(len(r.writes)))
		for subj := range r.writes {
			b = appendString(b, subj)
		}
		b = binary.AppendUvarint(b, uint64(len(r.msgs)))
		for _, m := range r.msgs {
			b = appendString(b, m.Subject)
			n := 0
			for _, vs := range m.Header {
				n += len(vs)
			}
			b = binary.AppendUvarint(b, uint64(n))
			for k, vs := range m.Header {
				for _, v := range vs {
					b = appendString(b, k)
					b = appendString(b, v)
				}
			}
			b = appendString(b, string(m.Data))
		}
	}
	return b
}

// decodeRequests decodes requests encoded by encodeRequests, refusing any
// that addresses a subject outside world w or carries more than maxMsgs
// messages. The requests it returns have a done channel and their written
// entries (the state writes among their messages) set.
func decodeRequests(b []byte, w bus.World, maxMsgs int) ([]*commitReq, error) {
	d := decoder{b: b}
	if v := d.byte(); v != forwardVersion {
		return nil, fmt.Errorf("%w: version %d", errBadForward, v)
	}
	n := d.count()
	rs := make([]*commitReq, 0, n)
	for range n {
		r := &commitReq{reads: map[string]uint64{}, writes: map[string]struct{}{}, done: make(chan error, 1)}
		for range d.count() {
			subj := d.string()
			r.reads[subj] = d.uvarint()
		}
		for range d.count() {
			r.writes[d.string()] = struct{}{}
		}
		nm := d.count()
		if nm == 0 || nm > maxMsgs {
			return nil, fmt.Errorf("%w: %d messages in a commit", errBadForward, nm)
		}
		for i := range nm {
			m := nats.NewMsg(d.string())
			for range d.count() {
				k := d.string()
				m.Header.Add(k, d.string())
			}
			if data := d.string(); data != "" {
				m.Data = []byte(data)
			}
			if d.err != nil {
				return nil, d.err
			}
			if !w.Contains(m.Subject) {
				return nil, fmt.Errorf("%w: subject %q is not the world's", errBadForward, m.Subject)
			}
			if _, ok := w.ParseKey(m.Subject); ok {
				// Its revision is set when it is stored (see succeed).
				r.written = append(r.written, written{subj: m.Subject, e: stored(0, m.Data, m.Header), index: i})
			}
			r.msgs = append(r.msgs, m)
		}
		for subj := range r.reads {
			if !w.Contains(subj) {
				return nil, fmt.Errorf("%w: read %q is not the world's", errBadForward, subj)
			}
		}
		rs = append(rs, r)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes after the end", errBadForward, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return rs, nil
}

// encodeOutcome appends the outcome of one request to b.
func encodeOutcome(b []byte, r *commitReq, err error) []byte {
	var ce *ConflictError
	switch {
	case err == nil:
		return binary.AppendUvarint(append(b, outcomeOK), r.first)
	case errors.As(err, &ce):
		b = appendString(append(b, outcomeConflict), ce.Key)
		return binary.AppendUvarint(binary.AppendUvarint(b, ce.Read), ce.Now)
	case errors.Is(err, ErrConflict):
		return binary.AppendUvarint(binary.AppendUvarint(appendString(append(b, outcomeConflict), ""), 0), 0)
	case errors.Is(err, ErrClosed):
		return appendString(append(b, outcomeClosed), err.Error())
	case errors.Is(err, ErrUnavailable):
		return appendString(append(b, outcomeUnavailable), err.Error())
	case errors.Is(err, ErrCommitUnknown):
		return appendString(append(b, outcomeUnknown), err.Error())
	}
	return appendString(append(b, outcomeRejected), err.Error())
}

// outcome is one decoded outcome of a forwarded request.
type outcome struct {
	first  uint64 // when err is nil
	err    error
	direct bool // nothing was decided: commit directly instead
}

// decodeOutcomes decodes a leader's reply to a request of n commits.
func decodeOutcomes(b []byte, n int, leader string) ([]outcome, error) {
	d := decoder{b: b}
	if v := d.byte(); v != forwardVersion {
		return nil, fmt.Errorf("%w: reply version %d", errBadForward, v)
	}
	if got := d.count(); got != n && d.err == nil {
		return nil, fmt.Errorf("%w: %d outcomes for %d commits", errBadForward, got, n)
	}
	out := make([]outcome, n)
	for i := range out {
		code := d.byte()
		switch code {
		case outcomeOK:
			out[i].first = d.uvarint()
		case outcomeConflict:
			key := d.string()
			ce := &ConflictError{Key: key, Read: d.uvarint()}
			ce.Now = d.uvarint()
			out[i].err = ce
		case outcomeClosed:
			d.string()
			out[i].direct = true
		case outcomeUnavailable:
			out[i].err = fmt.Errorf("%w: via %s: %s", ErrUnavailable, leader, d.string())
		case outcomeUnknown:
			out[i].err = fmt.Errorf("%w: via %s: %s", ErrCommitUnknown, leader, d.string())
		case outcomeRejected:
			out[i].err = fmt.Errorf("kv: commit rejected via %s: %s", leader, strings.TrimPrefix(d.string(), "kv: "))
		default:
			if d.err == nil {
				d.err = fmt.Errorf("%w: outcome %d", errBadForward, code)
			}
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes after the end", errBadForward, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decoder reads what the encoders wrote; after its first error every read
// returns a zero value and err stays set.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", errBadForward, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items to follow; each takes at least one byte,
// so a count beyond the bytes left is malformed.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail("list")
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
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
		reply := binary.AppendUvarint([]byte{forwardVersion}, uint64(len(rs)))
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
