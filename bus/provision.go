package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig sets how a world's stream is stored.
type StreamConfig struct {
	// Replicas is the stream's replication factor: 1 on a single server, 3
	// on a cluster (default 1).
	Replicas int
	// Memory stores the stream in memory instead of files. Not durable
	// across a server restart; meant for throwaway worlds.
	Memory bool
	// MaxBytes bounds the stream's size (0: unlimited).
	MaxBytes int64
	// Duplicates is the window in which a repeated Nats-Msg-Id is dropped;
	// edges publish client events with one (default 2m).
	Duplicates time.Duration
	// Bucket also provisions the world's KV bucket ([World.Bucket]): a
	// copy of the world's state subjects (a stream sourcing them), transformed to the bucket's
	// ($KV.<world>.<key>), with the last value of each key. The server
	// copies every state write into it a moment after the commit; it is
	// read-only (a KV put finds no stream to take it) and costs a second
	// copy of the state's writes. Commits never depend on it.
	Bucket bool
}

// Provision creates the stream of world w, or updates it to the
// configuration Starbus needs. It is idempotent and safe to call from every
// process that starts.
func Provision(ctx context.Context, js jetstream.JetStream, w World, cfg StreamConfig) (jetstream.Stream, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = 2 * time.Minute
	}
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	sc := jetstream.StreamConfig{
		Name:               w.Stream(),
		Description:        "Starbus world " + w.Name(),
		Subjects:           []string{w.All()},
		Retention:          jetstream.LimitsPolicy,
		Storage:            storage,
		Replicas:           cfg.Replicas,
		MaxBytes:           orUnlimited(cfg.MaxBytes),
		MaxMsgs:            -1,
		MaxMsgsPerSubject:  -1,
		Discard:            jetstream.DiscardOld,
		Duplicates:         cfg.Duplicates,
		AllowDirect:        true,
		AllowRollup:        true,
		AllowMsgTTL:        true,
		AllowAtomicPublish: true,
		AllowMsgSchedules:  true,
	}
	s, err := provision(ctx, js, w, sc)
	if err != nil || !cfg.Bucket {
		return s, err
	}
	bucket := jetstream.StreamConfig{
		Name:        w.BucketStream(),
		Description: "Starbus world " + w.Name() + ": its state as a KV bucket, sourced (read-only)",
		Storage:     storage,
		Replicas:    cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		// KV clients want one message per key: its value, or its tombstone.
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
		AllowRollup:       true,
		AllowMsgTTL:       true, // tombstones expire, as in the world's stream
		// A source, not a mirror: a mirror of a stream with direct gets
		// also answers the origin's direct gets (the server makes it so,
		// for read scaling), and with none of its subjects it would
		// answer the world's reads with "no message". Having no subjects
		// of its own, the bucket takes no publish: it is read-only.
		Sources: []*jetstream.StreamSource{{
			Name: w.Stream(),
			SubjectTransforms: []jetstream.SubjectTransformConfig{{
				Source: w.KeyFilter(), Destination: "$KV." + w.Bucket() + ".>",
			}},
		}},
	}
	if _, err := provision(ctx, js, w, bucket); err != nil {
		return nil, fmt.Errorf("bus: provision the bucket of %s: %w", w.Name(), err)
	}
	return s, nil
}

// provision creates or updates the stream sc, retrying what a cluster
// that is forming may not answer yet, until the stream answers reads.
func provision(ctx context.Context, js jetstream.JetStream, w World, sc jetstream.StreamConfig) (jetstream.Stream, error) {
	return await(ctx, "provision "+sc.Name, func(actx context.Context) (jetstream.Stream, error) {
		s, err := js.CreateOrUpdateStream(actx, sc)
		if err == nil {
			_, err = js.Stream(actx, sc.Name) // a stream just created may not answer at once
		}
		if err == nil && len(sc.Sources) == 0 {
			err = readable(actx, s, w)
		}
		return s, err
	})
}

// Lookup waits until the stream of world w exists and answers reads, and
// returns it: how a process that may not provision (an edge, see
// [Role.Provisions]) starts.
func Lookup(ctx context.Context, js jetstream.JetStream, w World) (jetstream.Stream, error) {
	return await(ctx, "look up "+w.Stream(), func(actx context.Context) (jetstream.Stream, error) {
		s, err := js.Stream(actx, w.Stream())
		if err == nil {
			err = readable(actx, s, w)
		}
		return s, err
	})
}

// readable reports whether the world's stream answers reads: they are
// direct gets, served by replicas once they are current; until one is,
// they find no responders.
func readable(ctx context.Context, s jetstream.Stream, w World) error {
	_, err := s.GetLastMsgForSubject(ctx, w.Check(0))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		err = nil
	}
	return err
}

// await runs attempt in short tries until it succeeds, fails for good, or
// ctx ends. On a cluster, a create racing another process's create of the
// same stream may go unanswered, a cluster just formed may not yet know
// enough nodes to place the replicas, and a stream just created may not
// answer at once: those are tried again.
func await(ctx context.Context, what string, attempt func(ctx context.Context) (jetstream.Stream, error)) (jetstream.Stream, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := attempt(actx)
		cancel()
		switch {
		case err == nil:
			return s, nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("bus: %s: %w", what, errors.Join(err, ctx.Err()))
		case !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrStreamNotFound) &&
			!errors.Is(err, nats.ErrNoResponders) && !noPeers(err):
			return nil, fmt.Errorf("bus: %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bus: %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errCodeNoPeers is nats-server's JSClusterNoPeersErr: not enough nodes
// online to place the stream's replicas. A cluster that has just elected
// its meta leader answers it until every node has reported in.
const errCodeNoPeers jetstream.ErrorCode = 10005

func noPeers(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeNoPeers
}

func orUnlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// syncQueueLen bounds what a synchronous subscription buffers. The only
// ones Starbus makes are those of batched direct gets (jetstreamext's
// GetLastMsgsFor: at most 1,024 messages and the end of the batch), each
// made for one request; nats.go's default of 65,536 would allocate half
// a megabyte for every batch of reads.
const syncQueueLen = 2048

// Dial connects to an external NATS deployment at url (a comma-separated
// list is allowed), retrying the first connection until ctx ends and
// reconnecting forever afterwards.
func Dial(ctx context.Context, url, name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.SyncQueueLen(syncQueueLen),
	}, opts...)
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		if !errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("bus: dial %s: %w", url, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bus: dial %s: %w", url, errors.Join(err, ctx.Err()))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
