package kv

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Pre-opened batches.
//
// On an R1 file-backed stream the server stages an atomic batch in a file
// store it creates when the batch's first message arrives and removes at
// its commit. Creating it is about half of what a small commit costs the
// server (0.46 ms of CPU per batch in a profile of `starbus dev` with 10
// players), and it lies on the commit's path. The committer
// takes it off that path: as soon as a batch is acknowledged, it opens the
// next one with a first message of its own, the opener, so that the
// server builds the staging store while the next group forms. The next
// group's messages then follow the opener in that batch, and the last of
// them commits it.
//
// The opener goes to check subject 0 with a rollup and no assertion: it
// is stored with its batch like a read check, replaces the one of the
// batch before, asserts nothing, and is compacted with the checks (see
// handlers' settling). It costs one stored message per batch: nothing
// under load, where a batch holds hundreds of messages, and one more per
// commit at idle, where it saves the staging time: BenchmarkCommitPaced
// (one commit every 2 ms) has a Starbus commit's median below that of a
// bare atomic batch of the same messages, where without the opener it was
// above it.
//
// A batch the server no longer knows (it abandons one whose next message
// is late: 10s by default, less if its operator says so; or the server
// restarted) answers the commit as incomplete, having stored nothing: the
// group is then sent again as a batch of its own. So that a quiet world
// leaves no batch for the server to abandon, the committer closes an open
// batch that has waited openIdle with an end-of-batch marker, which
// commits the opener alone and stores nothing else.

// openIdle is how long an opened batch waits for a group before the
// committer closes it.
const openIdle = 2 * time.Second

// openBatch is an atomic batch whose opener has been published.
type openBatch struct {
	pub jetstreamext.BatchPublisher
	id  string    // the batch id, for the end-of-batch marker
	at  time.Time // when it was opened
}

// preopens reports whether the store opens its batches ahead of their
// groups: when it commits atomic batches itself, on an R1 file stream.
func (s *Store) preopens() bool {
	return s.maxBatches == 1 && s.via.Load() == nil
}

// openNext opens a batch for the next group. It returns nil if the opener
// could not be sent (the connection is down); the next group then opens
// its own batch.
func (s *Store) openNext() *openBatch {
	pub, err := jetstreamext.NewBatchPublisher(s.js, jetstreamext.BatchFlowControl{AckFirst: false})
	if err != nil {
		return nil
	}
	m := nats.NewMsg(s.world.Check(0))
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	if err := pub.AddMsg(m); err != nil {
		return nil
	}
	return &openBatch{pub: pub, id: m.Header.Get(jetstreamext.BatchIDHeader), at: time.Now()}
}

// publishBatch commits msgs as one atomic batch: into o when there is one,
// or as a batch of their own.
func (s *Store) publishBatch(ctx context.Context, o *openBatch, msgs []*nats.Msg) (*jetstreamext.BatchAck, error) {
	if o != nil {
		ack, err := commitInto(ctx, o.pub, msgs)
		if !errors.Is(err, jetstreamext.ErrBatchPublishIncomplete) {
			if err == nil {
				s.stats.preopened.Add(1)
			}
			return ack, err
		}
		// The server had dropped the batch and stored nothing of it;
		// PublishMsgBatch sets every batch header afresh.
		s.log.Debug("opened batch was abandoned; sending the group alone", "batch", o.id)
	}
	return jetstreamext.PublishMsgBatch(ctx, s.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
}

// commitInto adds msgs to the open batch pub and commits it with the last.
func commitInto(ctx context.Context, pub jetstreamext.BatchPublisher, msgs []*nats.Msg) (*jetstreamext.BatchAck, error) {
	last := len(msgs) - 1
	for _, m := range msgs[:last] {
		if err := pub.AddMsg(m); err != nil {
			return nil, err
		}
	}
	return pub.CommitMsg(ctx, msgs[last])
}

// closeOpen ends an open batch no group used: an end-of-batch marker
// commits the opener alone (the marker is not stored). A failure is left
// to the server, which abandons the batch after its timeout.
func (s *Store) closeOpen(o *openBatch) {
	ctx, cancel := context.WithTimeout(context.Background(), min(s.opts.CommitTimeout, openIdle))
	defer cancel()
	m := nats.NewMsg(s.world.Check(0))
	m.Header.Set(jetstreamext.BatchIDHeader, o.id)
	m.Header.Set(jetstreamext.BatchSeqHeader, strconv.Itoa(o.pub.Size()+1))
	m.Header.Set(jetstreamext.BatchCommitHeader, "eob")
	_ = o.pub.Discard()
	if _, err := s.js.Conn().RequestMsgWithContext(ctx, m); err != nil {
		s.log.Debug("opened batch not closed; the server will abandon it", "batch", o.id, "err", err)
	}
}
