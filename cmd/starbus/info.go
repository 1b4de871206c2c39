package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/config"
)

// worldInfo is what `starbus info` prints: the size of a world's stream,
// its messages by kind, and session outboxes that no session owns any
// more (which nothing would ever read).
type worldInfo struct {
	World    string            `json:"world"`
	Messages uint64            `json:"messages"`
	Bytes    uint64            `json:"bytes"`
	FirstSeq uint64            `json:"first_seq"`
	LastSeq  uint64            `json:"last_seq"`
	ByKind   map[string]uint64 `json:"by_kind"`
	// Keys counts the keys with a message; by_kind's "state" counts their
	// revisions, the superseded ones included until compaction purges
	// them.
	Keys int `json:"keys"`
	// Sessions counts the session records; Outboxes the sessions with
	// stored messages; Expiring the outboxes of sessions without a record
	// (ended) whose last message has a TTL: they go by it; Orphans those
	// of ended sessions whose last message has none, which nothing
	// removes.
	Sessions int `json:"sessions"`
	Outboxes int `json:"outboxes"`
	Expiring int `json:"expiring"`
	Orphans  int `json:"orphans"`
	// SessionsError says why the session records could not be read (the
	// server did not answer): the counts above are then not known.
	SessionsError string `json:"sessions_error,omitempty"`
}

// runInfo is `starbus info`: one JSON object describing a world's stream.
func runInfo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := config.Default()
	fs := flag.NewFlagSet("starbus info", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", def.NATS.URL, "NATS URL of the world (starbus dev prints it)")
	world := fs.String("world", def.World, "world name")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A NATS with users: the credentials come from the environment
	// (STARBUS_NATS_USER, STARBUS_NATS_PASSWORD), never from flags.
	ccfg := def
	ccfg.NATS.User = os.Getenv("STARBUS_NATS_USER")
	opts, _, err := clientAuth(ccfg, bus.RoleAdmin)
	if err != nil {
		return err
	}
	nc, err := bus.Dial(ctx, *url, "starbus info", opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	w, err := bus.NewWorld(*world)
	if err != nil {
		return err
	}
	info, err := collectInfo(ctx, js, w)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(info)
}

func collectInfo(ctx context.Context, js jetstream.JetStream, w bus.World) (worldInfo, error) {
	stream, err := js.Stream(ctx, w.Stream())
	if err != nil {
		return worldInfo{}, err
	}
	si, err := stream.Info(ctx)
	if err != nil {
		return worldInfo{}, err
	}
	out := worldInfo{World: w.Name(), Messages: si.State.Msgs, Bytes: si.State.Bytes,
		FirstSeq: si.State.FirstSeq, LastSeq: si.State.LastSeq, ByKind: map[string]uint64{}}
	outboxes := map[string]string{} // session id → its outbox's subject
	for kind, filter := range map[string]string{
		"state": w.KeyFilter(), "events": w.EventFilter(), "markers": w.DoneFilter(),
		"session_messages": w.SessionFilter(), "channel_messages": w.ChannelFilter(),
		"alarms": w.ScheduleFilter(), "dead_letters": w.DeadLetterFilter(),
	} {
		fi, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return out, err
		}
		if kind == "state" {
			out.Keys = len(fi.State.Subjects)
		}
		for subj, n := range fi.State.Subjects {
			out.ByKind[kind] += n
			if kind == "session_messages" {
				if id, ok := w.ParseSession(subj); ok {
					outboxes[id] = subj
				}
			}
		}
	}
	live, err := sessionRecords(ctx, js, w)
	if err != nil {
		out.SessionsError = err.Error()
		return out, nil
	}
	out.Sessions, out.Outboxes = len(live), len(outboxes)
	for id, subj := range outboxes {
		if live[id] {
			continue
		}
		// Its messages carry the TTL of the workers that sent them; the
		// last one tells what the workers do now.
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound): // gone meanwhile
		case err != nil:
			return out, err
		case m.Header.Get(jetstream.MsgTTLHeader) != "":
			out.Expiring++
		default:
			out.Orphans++
		}
	}
	return out, nil
}

// sessionRecords returns the ids of the sessions that have a record. It
// reads the latest record of each through a consumer: a world of
// thousands of sessions has more than a batch get answers (1,024
// subjects), tombstones of ended sessions included.
func sessionRecords(ctx context.Context, js jetstream.JetStream, w bus.World) (map[string]bool, error) {
	stream, err := js.Stream(ctx, w.Stream())
	if err != nil {
		return nil, err
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     w.SessionRecordsFilter(),
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // gone by itself if the delete below is lost
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = stream.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name) }()
	live := map[string]bool{}
	if cons.CachedInfo().NumPending == 0 {
		return live, nil
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	defer msgs.Stop()
	for {
		m, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		if key, ok := w.ParseKey(m.Subject()); ok && !bus.IsDelete(m.Headers()) {
			live[key[len(bus.SessionKey("")):]] = true
		}
		if meta.NumPending == 0 {
			return live, nil
		}
	}
}
