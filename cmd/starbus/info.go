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
	"github.com/synadia-io/orbit.go/jetstreamext"

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
	// Sessions counts the session records; Outboxes the sessions with
	// stored messages; Orphans the outboxes of sessions without a record.
	Sessions int `json:"sessions"`
	Outboxes int `json:"outboxes"`
	Orphans  int `json:"orphans"`
	// SessionsError says why the session records could not be read (a
	// server too busy to answer a batch get in time): the three counts
	// above are then not known.
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
	outboxes := map[string]bool{}
	for kind, filter := range map[string]string{
		"state": w.KeyFilter(), "events": w.EventFilter(), "markers": w.DoneFilter(),
		"session_messages": w.SessionFilter(), "channel_messages": w.ChannelFilter(),
		"alarms": w.ScheduleFilter(), "dead_letters": w.DeadLetterFilter(),
	} {
		fi, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return out, err
		}
		for subj, n := range fi.State.Subjects {
			out.ByKind[kind] += n
			if kind == "session_messages" {
				if id, ok := w.ParseSession(subj); ok {
					outboxes[id] = true
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
	for id := range outboxes {
		if !live[id] {
			out.Orphans++
		}
	}
	return out, nil
}

// sessionRecords returns the ids of the sessions that have a record.
func sessionRecords(ctx context.Context, js jetstream.JetStream, w bus.World) (map[string]bool, error) {
	records, err := jetstreamext.GetLastMsgsFor(ctx, js, w.Stream(), []string{w.SessionRecordsFilter()})
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for m, err := range records {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, err
		}
		if bus.IsDelete(m.Header) {
			continue
		}
		if key, ok := w.ParseKey(m.Subject); ok {
			live[key[len(bus.SessionKey("")):]] = true
		}
	}
	return live, nil
}
