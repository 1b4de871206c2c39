package kv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The committer is the store's one goroutine that decides what is sent to
// the server and together with what. It exists because an atomic batch on
// a file-backed R1 stream costs milliseconds however small it is, while
// adding another task's write set to a batch costs microseconds: grouping
// the commits of concurrent tasks into one batch is what makes commits
// fast. A batch fails whole if any of its checks fails, so the committer
// keeps conflicting tasks out of the same group and out of groups in
// flight together:
//
//   - a task that read a key whose newer revision this process already
//     knows (in the cache, or written by a group in flight or in the group
//     being formed) is doomed; it fails at once with a *ConflictError;
//   - a task that writes a key written by, or read by, a group in flight or
//     the group being formed waits for the next group;
//   - every other task joins the group.
//
// Tasks whose commit is a single message are sent as plain compare-and-set
// publishes, concurrently: each is already atomic on its own. The rest of
// the group is one atomic batch. Up to Options.MaxInflight groups are in
// flight, but on an R1 file-backed stream only one of them may carry an
// atomic batch: the server stages such batches one at a time, each in a
// file store of its own, so a second batch in flight would only wait there
// instead of here, where it could still grow (measured: two in flight made
// BenchmarkCommit file c=64 half as fast). While a batch is in flight, new
// commits accumulate, so groups grow with load.
//
// What this cannot see, commits of other processes, the server catches:
// every write and read carries the revision it was based on.

// commitReq is one transaction's commit, as the committer sees it. Sets are
// keyed by subject.
type commitReq struct {
	reads   map[string]uint64   // subjects read, with the revision read
	writes  map[string]struct{} // subjects written (state keys and marker)
	written []written           // state writes, to update the cache
	msgs    []*nats.Msg         // the commit's messages, in order
	done    chan error          // receives the outcome, once
	// The outcome, recorded while the request's group is in flight and
	// delivered on done once the committer has taken the group back.
	err   error
	first uint64 // with a nil err: the first message's stream sequence
}

type written struct {
	subj  string
	e     entry
	index int // position in msgs
}

// group is a set of requests sent together.
type group struct {
	singles []*commitReq // one message each: plain CAS publishes
	batch   []*commitReq // the rest: one atomic batch
	reads   map[string]struct{}
	writes  map[string]struct{}
	waits   []chan struct{}
	// open is the batch opened for this group's batch (see open.go), nil
	// if none; next, the one send opened after it, for the next group.
	open, next *openBatch
}

func (g *group) size() int { return len(g.singles) + len(g.batch) }

// batchSize returns the messages of the requests rs.
func batchSize(rs []*commitReq) int {
	n := 0
	for _, r := range rs {
		n += len(r.msgs)
	}
	return n
}

func (s *Store) runCommitter() {
	defer s.wg.Done()
	var (
		// Requests examined that wait for a group in flight to finish (they
		// touch its keys, or need a batch while none may be sent), and
		// requests not examined yet. Examining is linear in the requests
		// examined, so what waits is examined again only when a group
		// finishes, the one event that can let it go: not at every arrival.
		queue, fresh []*commitReq
		recheck      bool
		inflight     int // groups in flight
		batches      int // atomic batches in flight
		// subjects read and written by groups in flight, counted.
		fReads  = map[string]int{}
		fWrites = map[string]int{}
		// open is the batch opened for the next group's batch, if any
		// (open.go); idle fires when it has waited openIdle.
		open *openBatch
		idle = time.NewTimer(openIdle)
	)
	idle.Stop()
	defer idle.Stop()
	// keep takes a batch opened by a group's send as the next one.
	keep := func(g *group) {
		if g.next == nil {
			return
		}
		if open != nil {
			s.closeOpen(open)
		}
		open = g.next
		idle.Reset(openIdle)
	}
	finish := func(g *group) {
		inflight--
		if len(g.batch) > 0 {
			batches--
		}
		for subj := range g.reads {
			if fReads[subj]--; fReads[subj] == 0 {
				delete(fReads, subj)
			}
		}
		for subj := range g.writes {
			if fWrites[subj]--; fWrites[subj] == 0 {
				delete(fWrites, subj)
			}
		}
	}
	for {
		// Batches forwarded to the commit leader queue there, where they
		// can still join its groups; here only the server's own staging
		// limit applies.
		limit := s.maxBatches
		if s.via.Load() != nil {
			limit = s.opts.MaxInflight
		}
		if inflight < s.opts.MaxInflight && (len(fresh) > 0 || recheck && len(queue) > 0) {
			// Take everything that has arrived, then form one group, the
			// older requests first.
		drain:
			for {
				select {
				case r := <-s.reqs:
					fresh = append(fresh, r)
				default:
					break drain
				}
			}
			cands := fresh
			if recheck {
				cands, queue = append(queue, fresh...), nil
			}
			fresh, recheck = nil, false
			g, rest := s.form(cands, fReads, fWrites, batches < limit)
			queue = append(queue, rest...)
			if g != nil {
				inflight++
				if len(g.batch) > 0 {
					batches++
					g.open, open = open, nil
				}
				for subj := range g.reads {
					fReads[subj]++
				}
				for subj := range g.writes {
					fWrites[subj]++
				}
				s.wg.Add(1)
				go s.send(g)
				// What a full batch left out may go in the next, if another
				// batch may be in flight.
				recheck = batches < limit
				continue
			}
		}
		select {
		case r := <-s.reqs:
			fresh = append(fresh, r)
		case g := <-s.completed:
			// The group's keys are released before anyone learns its
			// outcome: a task that commits again on a key the moment its
			// previous commit is acknowledged must not find that commit
			// still in flight (it would be doomed for nothing).
			finish(g)
			s.deliver(g)
			keep(g)
			recheck = true
		case <-idle.C:
			// Close the opened batch no group came for.
			if open != nil {
				if wait := openIdle - time.Since(open.at); wait > 0 {
					idle.Reset(wait)
					continue
				}
				s.closeOpen(open)
				open = nil
			}
		case <-s.quit:
			for _, r := range append(queue, fresh...) {
				r.done <- ErrClosed
			}
			for ; inflight > 0; inflight-- {
				g := <-s.completed
				s.deliver(g)
				keep(g)
			}
			if open != nil {
				s.closeOpen(open)
			}
			return
		}
	}
}

// form builds the next group from queue, failing doomed requests and
// returning the ones that must wait.
func (s *Store) form(queue []*commitReq, fReads, fWrites map[string]int, batchOK bool) (*group, []*commitReq) {
	g := &group{reads: map[string]struct{}{}, writes: map[string]struct{}{}}
	batchMsgs, maxMsgs := 0, s.opts.MaxBatch
	if s.preopens() {
		maxMsgs-- // room for the opener
	}
	rest := queue[:0]
	for _, r := range queue {
		if err := s.doomed(r, fWrites, g.writes); err != nil {
			s.stats.conflicts.Add(1)
			r.done <- err
			continue
		}
		multi := len(r.msgs) > 1
		if !s.fits(r, fReads, fWrites, g) ||
			multi && (!batchOK || batchMsgs > 0 && batchMsgs+len(r.msgs) > maxMsgs) {
			rest = append(rest, r)
			continue
		}
		if len(r.msgs) == 1 {
			g.singles = append(g.singles, r)
		} else {
			g.batch = append(g.batch, r)
			batchMsgs += len(r.msgs)
		}
		for subj := range r.reads {
			g.reads[subj] = struct{}{}
		}
		for subj := range r.writes {
			g.writes[subj] = struct{}{}
		}
	}
	clear(queue[len(rest):])
	if g.size() == 0 {
		return nil, rest
	}
	// Readers of the keys this group writes wait for its outcome.
	s.pmu.Lock()
	for subj := range g.writes {
		if _, ok := s.pending[subj]; !ok {
			ch := make(chan struct{})
			s.pending[subj] = ch
			g.waits = append(g.waits, ch)
		}
	}
	s.pmu.Unlock()
	return g, rest
}

// doomed returns a conflict if r read a revision that is already known to
// be superseded.
func (s *Store) doomed(r *commitReq, fWrites map[string]int, gWrites map[string]struct{}) error {
	for subj, rev := range r.reads {
		_, inGroup := gWrites[subj]
		if fWrites[subj] > 0 || inGroup {
			key, _ := s.world.ParseKey(subj)
			return &ConflictError{Key: key, Read: rev}
		}
		if now, ok := s.cache.rev(subj); ok && now > rev {
			key, _ := s.world.ParseKey(subj)
			return &ConflictError{Key: key, Read: rev, Now: now}
		}
	}
	return nil
}

// fits reports whether r's writes stay clear of every key read or written
// by the groups in flight and by g.
func (s *Store) fits(r *commitReq, fReads, fWrites map[string]int, g *group) bool {
	for subj := range r.writes {
		if fWrites[subj] > 0 || fReads[subj] > 0 {
			return false
		}
		if _, ok := g.writes[subj]; ok {
			return false
		}
		if _, ok := g.reads[subj]; ok {
			return false
		}
	}
	return true
}

// send publishes a group and delivers each request's outcome.
func (s *Store) send(g *group) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	s.stats.groups.Add(1)

	futures := make([]jetstream.PubAckFuture, len(g.singles))
	errs := make([]error, len(g.singles))
	for i, r := range g.singles {
		futures[i], errs[i] = s.js.PublishMsgAsync(r.msgs[0])
	}
	batch := g.batch
	if via := s.via.Load(); via != nil && len(batch) > 0 {
		batch = s.forward(ctx, via, batch)
	}
	if g.open != nil && (len(batch) == 0 || batchSize(batch)+1 > s.opts.MaxBatch) {
		// Forwarded, or too large to follow an opener.
		s.closeOpen(g.open)
		g.open = nil
	}
	batchMsgs := 0
	if len(batch) > 0 {
		s.stats.batches.Add(1)
		var msgs []*nats.Msg
		checks := 0
		if g.open != nil {
			checks = 1 // Check(0) is the opener's
		}
		for _, r := range batch {
			for _, m := range r.msgs {
				if s.world.IsCheck(m.Subject) {
					// The server rolls a subject up only at its first
					// message in a batch, and a rollup that removes more
					// than one message makes it recount the pending
					// messages of every consumer of the stream (a sixth
					// of its CPU when every batch's checks shared one
					// subject). Numbered, each check rolls up the one
					// message of the batch before.
					m.Subject = s.world.Check(checks)
					checks++
				}
				msgs = append(msgs, m)
			}
		}
		batchMsgs = len(msgs)
		ack, err := s.publishBatch(ctx, g.open, msgs)
		if s.preopens() {
			g.next = s.openNext()
		}
		if err != nil {
			s.fail(batch, err)
		} else {
			// An atomic batch is stored at consecutive sequences ending at
			// the acknowledged one (an opener before them).
			first := ack.Sequence - uint64(len(msgs)) + 1
			off := uint64(0)
			for _, r := range batch {
				s.succeed(r, first+off)
				off += uint64(len(r.msgs))
			}
		}
	}
	if o := s.opts.Observer; o != nil {
		o.ObserveGroup(g.size(), batchMsgs)
	}
	for i, r := range g.singles {
		err := errs[i]
		if err == nil {
			select {
			case ack := <-futures[i].Ok():
				s.succeed(r, ack.Sequence)
				continue
			case err = <-futures[i].Err():
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		s.fail([]*commitReq{r}, err)
	}
	s.completed <- g
}

// deliver ends a group the committer has taken back: readers waiting for
// its keys go on (the cache has its outcome), and every request gets its
// outcome.
func (s *Store) deliver(g *group) {
	s.pmu.Lock()
	for subj := range g.writes {
		if ch, ok := s.pending[subj]; ok {
			delete(s.pending, subj)
			close(ch)
		}
	}
	s.pmu.Unlock()
	for _, rs := range [][]*commitReq{g.singles, g.batch} {
		for _, r := range rs {
			r.done <- r.err
		}
	}
}

// succeed records a committed request whose first message is stored at
// sequence first.
func (s *Store) succeed(r *commitReq, first uint64) {
	for _, w := range r.written {
		e := w.e
		e.rev = first + uint64(w.index)
		s.cache.put(w.subj, e)
	}
	s.stats.commits.Add(1)
	r.first, r.err = first, nil
}

// fail records the publish error err as every request's outcome, as one
// of the store's errors (see classify).
func (s *Store) fail(rs []*commitReq, err error) {
	out := classify(err)
	s.failWith(rs, out)
	if !errors.Is(out, ErrConflict) {
		s.log.Warn("commit failed", "requests", len(rs), "err", err)
	}
}

// failWith records out as every request's outcome and forgets what the
// cache knew of the keys they touched: after a rejection, the next read
// goes to the server.
func (s *Store) failWith(rs []*commitReq, out error) {
	for _, r := range rs {
		for subj := range r.reads {
			s.cache.evict(subj)
		}
		for subj := range r.writes {
			s.cache.evict(subj)
		}
		if errors.Is(out, ErrConflict) {
			s.stats.conflicts.Add(1)
		}
		r.err = out
	}
}

// classify maps a publish error to the store's errors: a stale expected
// sequence is a conflict (10071 on one server, 10164 on a replicated
// stream); a server error (5xx: no leader, the system not ready) stored
// nothing and the server is unavailable; any other answer from the server
// is a rejection that stored nothing; no answer leaves the outcome
// unknown.
func classify(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence, apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return &ConflictError{}
		case apiErr.Code >= 500:
			return fmt.Errorf("%w: commit rejected: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("kv: commit rejected: %w", err)
	}
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err) // nobody took it
	}
	return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
}
