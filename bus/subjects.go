package bus

import (
	"errors"
	"fmt"

	"github.com/starbus/starbus/bus/internal/subject"
)

// Errors returned by the subject builders.
var (
	// ErrInvalidName reports a world, region, session or channel name that
	// is not a single valid subject token.
	ErrInvalidName = errors.New("bus: invalid name")
	// ErrInvalidKey reports a state key that cannot be mapped to a subject.
	ErrInvalidKey = errors.New("bus: invalid key")
)

// MaxKeyLen bounds the length of a state key, so that a key always fits a
// subject with room for the world prefix.
const MaxKeyLen = subject.MaxKeyLen

// World is the subject scheme of one world. Build it with [NewWorld]; the
// zero value is not usable.
//
// Its builders validate their tokens and its parsers refuse what is not
// theirs; the layout itself, and every parser, is package
// bus/internal/subject's, which depends on the standard library alone so
// that its fuzz target runs fast (see scripts/fuzz).
type World struct {
	s subject.World
}

// NewWorld returns the subject scheme for the world called name. A name is
// one token of letters, digits, '-' and '_' (it also names the stream).
func NewWorld(name string) (World, error) {
	if err := ValidName(name); err != nil {
		return World{}, fmt.Errorf("world %q: %w", name, err)
	}
	return World{s: subject.NewWorld(name)}, nil
}

// Name returns the world's name.
func (w World) Name() string { return w.s.Name() }

// Stream returns the name of the stream that holds the world.
func (w World) Stream() string { return "SB_" + w.s.Name() }

// Bucket returns the name of the JetStream KV bucket that shows the
// world's state (its stream is KV_<name>): a read-only copy of the
// state subjects of the world's stream, kept by the server, which every
// KV client (nats kv get/ls/watch, nats.go's KeyValue, the JavaScript,
// Python and Rust clients) reads with the world's keys, values and
// revisions of its own (see [StreamConfig].Bucket).
func (w World) Bucket() string { return w.s.Name() }

// BucketStream returns the name of the stream of the world's KV bucket.
func (w World) BucketStream() string { return "KV_" + w.s.Name() }

// All returns the filter that matches every subject of the world.
func (w World) All() string { return w.s.All() }

// Key returns the subject that stores key. The key must satisfy [ValidKey].
func (w World) Key(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return w.s.Key(key), nil
}

// KeyFilter returns the filter matching every state subject.
func (w World) KeyFilter() string { return w.s.KeyFilter() }

// ParseKey returns the key stored at subject.
func (w World) ParseKey(subject string) (key string, ok bool) { return w.s.ParseKey(subject) }

// Check returns the i-th subject that carries the read checks of a commit:
// the i-th check of an atomic batch goes to Check(i), so that each check
// message rolls up exactly one earlier message (see package kv).
func (w World) Check(i int) string { return w.s.Check(i) }

// CheckFilter matches every check subject. A check is never read: once
// its batch is stored it may be purged.
func (w World) CheckFilter() string { return w.s.CheckFilter() }

// IsCheck reports whether subject is one of the check subjects.
func (w World) IsCheck(subject string) bool { return w.s.IsCheck(subject) }

// Done returns the subject of the applied marker of the event stored at
// stream sequence seq.
func (w World) Done(seq uint64) string { return w.s.Done(seq) }

// DoneFilter matches every applied marker.
func (w World) DoneFilter() string { return w.s.DoneFilter() }

// Partitions is the number of partitions of every world's event space. An
// event's partition is a function of its ordering key alone ([Partition]),
// so all events of one session or entity share a partition wherever in the
// world they happen, and the worker that owns the partition handles them in
// order. It is part of the subject scheme: changing it re-partitions stored
// events, so it is a constant, not a setting. It bounds the number of
// worker processes that can share a world's events usefully.
const Partitions = subject.Partitions

// Partition returns the partition of the ordering key part: FNV-1a of its
// bytes, modulo [Partitions].
func Partition(part string) int { return subject.Partition(part) }

// Event returns the subject of an event for region, ordered by part (a
// session, an entity, or any other ordering key):
// sb.<w>.ev.<partition>.<region>.<part>, where partition is
// [Partition](part).
func (w World) Event(region, part string) (string, error) {
	if err := ValidName(region); err != nil {
		return "", fmt.Errorf("region %q: %w", region, err)
	}
	if err := ValidName(part); err != nil {
		return "", fmt.Errorf("partition %q: %w", part, err)
	}
	return w.s.Event(region, part), nil
}

// EventFilter matches every event of the world.
func (w World) EventFilter() string { return w.s.EventFilter() }

// PartitionFilter matches every event of partition p (0 <= p < [Partitions]).
func (w World) PartitionFilter(p int) string { return w.s.PartitionFilter(p) }

// RegionEventFilter matches every event of one region.
func (w World) RegionEventFilter(region string) (string, error) {
	if err := ValidName(region); err != nil {
		return "", fmt.Errorf("region %q: %w", region, err)
	}
	return w.s.RegionEventFilter(region), nil
}

// PartEventFilter matches every event ordered by part, in any region:
// a session's events wherever its region has moved them.
func (w World) PartEventFilter(part string) (string, error) {
	if err := ValidName(part); err != nil {
		return "", fmt.Errorf("partition %q: %w", part, err)
	}
	return w.s.PartEventFilter(part), nil
}

// ParseEvent returns the region and ordering key of an event subject. A
// subject whose partition token is not the partition of its ordering key is
// not an event.
func (w World) ParseEvent(subject string) (region, part string, ok bool) {
	return w.s.ParseEvent(subject)
}

// Schedule returns the subject that holds the durable schedule id.
func (w World) Schedule(id string) (string, error) {
	if err := ValidName(id); err != nil {
		return "", fmt.Errorf("schedule %q: %w", id, err)
	}
	return w.s.Schedule(id), nil
}

// ScheduleFilter matches every schedule's alarms.
func (w World) ScheduleFilter() string { return w.s.ScheduleFilter() }

// ParseSchedule returns the schedule id of an alarm subject.
func (w World) ParseSchedule(subject string) (id string, ok bool) { return w.s.ParseSchedule(subject) }

// Session returns the subject of messages to the client session id.
func (w World) Session(id string) (string, error) {
	if err := ValidName(id); err != nil {
		return "", fmt.Errorf("session %q: %w", id, err)
	}
	return w.s.Session(id), nil
}

// SessionFilter matches the messages to every session.
func (w World) SessionFilter() string { return w.s.SessionFilter() }

// ParseSession returns the session a message subject is addressed to.
func (w World) ParseSession(subject string) (id string, ok bool) { return w.s.ParseSession(subject) }

// Channel returns the subject of messages to the channel name.
func (w World) Channel(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("channel %q: %w", name, err)
	}
	return w.s.Channel(name), nil
}

// ChannelFilter matches the messages to every channel.
func (w World) ChannelFilter() string { return w.s.ChannelFilter() }

// LiveChannel returns the core NATS subject of best-effort messages to the
// channel name. It lies outside the world's stream: nothing sent on it is
// stored.
func (w World) LiveChannel(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("channel %q: %w", name, err)
	}
	return w.s.LiveChannel(name), nil
}

// LiveChannelFilter matches the best-effort messages to every channel.
func (w World) LiveChannelFilter() string { return w.s.LiveChannelFilter() }

// ParseLiveChannel returns the channel a best-effort subject is addressed to.
func (w World) ParseLiveChannel(subject string) (name string, ok bool) {
	return w.s.ParseLiveChannel(subject)
}

// Commits returns the core NATS subject on which the store of worker
// member takes other workers' commits (see kv.Store.ServeCommits). Like
// [World.LiveChannel] it lies outside the world's stream.
func (w World) Commits(member string) (string, error) {
	if err := ValidName(member); err != nil {
		return "", fmt.Errorf("member %q: %w", member, err)
	}
	return w.s.Commits(member), nil
}

// Edges returns the core NATS subject on which a world's edges announce
// themselves to each other (their SimpleSgs listeners and loads, for
// LOGIN_REDIRECT and RELOCATE_NOTIFICATION; see package edge). Like
// [World.LiveChannel] it lies outside the world's stream: the
// announcements are soft state, renewed every second, and would only
// churn a durable store.
func (w World) Edges() string { return w.s.Edges() }

// Contains reports whether subject is one of the world's stored subjects.
func (w World) Contains(subject string) bool { return w.s.Contains(subject) }

// OutFilter matches every stored message to clients: sessions' and
// reliable channels'.
func (w World) OutFilter() string { return w.s.OutFilter() }

// ParseChannel returns the channel a message subject is addressed to.
func (w World) ParseChannel(subject string) (name string, ok bool) { return w.s.ParseChannel(subject) }

// DeadLetter returns the subject a failed event stored at seq is parked on.
func (w World) DeadLetter(seq uint64) string { return w.s.DeadLetter(seq) }

// DeadLetterFilter matches every dead letter.
func (w World) DeadLetterFilter() string { return w.s.DeadLetterFilter() }

// GroupFilter matches every message of the worker group g: its members'
// heartbeats and its partitions' ownership records.
func (w World) GroupFilter(g string) (string, error) {
	if err := ValidName(g); err != nil {
		return "", fmt.Errorf("group %q: %w", g, err)
	}
	return w.s.GroupFilter(g), nil
}

// Member returns the subject of member's heartbeats in the worker group g.
func (w World) Member(g, member string) (string, error) {
	if err := ValidName(g); err != nil {
		return "", fmt.Errorf("group %q: %w", g, err)
	}
	if err := ValidName(member); err != nil {
		return "", fmt.Errorf("member %q: %w", member, err)
	}
	return w.s.Member(g, member), nil
}

// Owner returns the subject of the ownership record of partition p in the
// worker group g.
func (w World) Owner(g string, p int) (string, error) {
	if err := ValidName(g); err != nil {
		return "", fmt.Errorf("group %q: %w", g, err)
	}
	if p < 0 || p >= Partitions {
		return "", fmt.Errorf("partition %d: %w", p, ErrInvalidName)
	}
	return w.s.Owner(g, p), nil
}

// ParseGroup returns what a message of worker group g is about: a member's
// heartbeat (member set) or a partition's ownership record (p >= 0).
func (w World) ParseGroup(g, subject string) (member string, p int, ok bool) {
	return w.s.ParseGroup(g, subject)
}

// ValidName reports whether s is a single subject token made of letters,
// digits, '-' and '_', at most 128 bytes long.
func ValidName(s string) error {
	if !subject.ValidName(s) {
		return ErrInvalidName
	}
	return nil
}

// ValidKey reports whether s can be a state key: dot-separated tokens of
// letters, digits, '-', '_', '=' and '/', with no empty token, at most
// [MaxKeyLen] bytes. Dots make hierarchy ("player.42.inventory").
func ValidKey(s string) error {
	if !subject.ValidKey(s) {
		return ErrInvalidKey
	}
	return nil
}
