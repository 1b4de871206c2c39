package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/kv"
)

// Delivery is how a channel's messages reach its members.
type Delivery uint8

const (
	// Reliable messages are stored in the world's stream, with the task's
	// commit: every member receives every message sent while it is a
	// member, once, in the same order as every other member, across
	// reconnects and edge restarts.
	Reliable Delivery = iota
	// BestEffort messages go over core NATS once the task has committed:
	// the lowest latency, for high-rate updates such as positions. A
	// message may be lost (a slow or reconnecting client, a worker that
	// dies between commit and send) and is never replayed.
	BestEffort
)

func (d Delivery) String() string {
	if d == BestEffort {
		return bus.DeliveryBestEffort
	}
	return bus.DeliveryReliable
}

// MarshalText stores a delivery by name: edges read it.
func (d Delivery) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a delivery's name.
func (d *Delivery) UnmarshalText(b []byte) error {
	switch string(b) {
	case bus.DeliveryReliable:
		*d = Reliable
	case bus.DeliveryBestEffort:
		*d = BestEffort
	default:
		return fmt.Errorf("handlers: unknown delivery %q", b)
	}
	return nil
}

// ChannelOptions configures a new channel.
type ChannelOptions struct {
	Delivery Delivery
}

// Errors of channel operations.
var (
	ErrChannelExists = errors.New("handlers: channel exists")
	ErrNoChannel     = errors.New("handlers: no such channel")
	ErrNotMember     = errors.New("handlers: session is not a member of the channel")
)

// Channel is a named group of sessions a task can send to. Its membership
// is durable state, read and written in the task's transaction like any
// other: a join, a leave or a send takes effect only if the task commits.
// A Channel belongs to the task that opened it.
type Channel struct {
	t    *Task
	name string
	rec  channelRecord
}

// channelRecord is a channel's stored configuration. Its members are kept
// in a key of their own, so that sending (which reads the record) does not
// conflict with joins and leaves.
type channelRecord struct {
	Delivery Delivery `json:"delivery"`
}

// CreateChannel creates the channel name (one token of letters, digits, '-'
// and '_'). It fails with [ErrChannelExists] if the channel exists.
func (t *Task) CreateChannel(ctx context.Context, name string, opts ChannelOptions) (*Channel, error) {
	if _, err := t.world.Channel(name); err != nil {
		return nil, err
	}
	if opts.Delivery > BestEffort {
		return nil, fmt.Errorf("handlers: channel %q: unknown delivery %d", name, opts.Delivery)
	}
	ok, err := t.tx.Exists(ctx, bus.ChannelKey(name))
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, fmt.Errorf("%w: %q", ErrChannelExists, name)
	}
	rec := channelRecord{Delivery: opts.Delivery}
	if err := t.tx.Put(bus.ChannelKey(name), rec); err != nil {
		return nil, err
	}
	return &Channel{t: t, name: name, rec: rec}, nil
}

// Channel opens the existing channel name, or fails with [ErrNoChannel].
func (t *Task) Channel(ctx context.Context, name string) (*Channel, error) {
	if _, err := t.world.Channel(name); err != nil {
		return nil, err
	}
	var rec channelRecord
	if err := t.tx.Get(ctx, bus.ChannelKey(name), &rec); err != nil {
		if errors.Is(err, kv.ErrNotFound) {
			return nil, fmt.Errorf("%w: %q", ErrNoChannel, name)
		}
		return nil, err
	}
	return &Channel{t: t, name: name, rec: rec}, nil
}

// Name returns the channel's name.
func (c *Channel) Name() string { return c.name }

// Delivery returns the channel's delivery.
func (c *Channel) Delivery() Delivery { return c.rec.Delivery }

// Members returns the sessions in the channel, sorted. It reads the
// whole membership, and the task conflicts with any join or leave of the
// channel committed before it; [Channel.IsMember] reads one session's.
func (c *Channel) Members(ctx context.Context) ([]string, error) {
	return ChannelMembers(ctx, c.t.tx, c.name)
}

// ChannelMembers returns the sessions in the channel name, sorted, as tx
// sees them: for tools and checks that read a world outside a task (see
// [kv.Store.View]). Tasks use [Channel.Members].
func ChannelMembers(ctx context.Context, tx *kv.Tx, name string) ([]string, error) {
	prefix := bus.ChannelMembersPrefix(name)
	keys, err := tx.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	m := make([]string, 0, len(keys))
	for _, k := range keys {
		if s, ok := strings.CutPrefix(k, prefix+"."); ok && !strings.Contains(s, ".") {
			m = append(m, s)
		}
	}
	return m, nil
}

// IsMember reports whether session is in the channel.
func (c *Channel) IsMember(ctx context.Context, session string) (bool, error) {
	if _, err := c.t.world.Session(session); err != nil {
		return false, err
	}
	return c.t.tx.Exists(ctx, bus.ChannelMemberKey(c.name, session))
}

// Join adds session to the channel; its client is told, and receives the
// channel's messages sent after this task. Joining twice is a no-op. Joins
// and leaves of different sessions do not conflict with each other.
func (c *Channel) Join(ctx context.Context, session string) error {
	in, err := c.IsMember(ctx, session)
	if err != nil || in {
		return err
	}
	if err := c.t.tx.Put(bus.ChannelMemberKey(c.name, session), true); err != nil {
		return err
	}
	if err := c.t.updateSessionChans(ctx, session, func(chans map[string]Delivery) { chans[c.name] = c.rec.Delivery }); err != nil {
		return err
	}
	return c.t.notice(session, bus.NoticeJoin, c.name, c.rec.Delivery)
}

// Leave removes session from the channel; its client is told. Leaving a
// channel one is not in is a no-op.
func (c *Channel) Leave(ctx context.Context, session string) error {
	in, err := c.IsMember(ctx, session)
	if err != nil || !in {
		return err
	}
	if err := c.t.tx.Delete(bus.ChannelMemberKey(c.name, session)); err != nil {
		return err
	}
	if err := c.t.updateSessionChans(ctx, session, func(chans map[string]Delivery) { delete(chans, c.name) }); err != nil {
		return err
	}
	return c.t.notice(session, bus.NoticeLeave, c.name, c.rec.Delivery)
}

// Send queues data for every member of the channel, sent if the task
// commits. It does not read the membership: the members are the sessions
// in the channel when the message reaches their edges, which is the order
// of commits for a reliable channel.
func (c *Channel) Send(data []byte) error {
	if c.rec.Delivery == BestEffort {
		subj, err := c.t.world.LiveChannel(c.name)
		if err != nil {
			return err
		}
		c.t.liveMsg(subj, data)
		return nil
	}
	subj, err := c.t.world.Channel(c.name)
	if err != nil {
		return err
	}
	m := c.t.out(subj)
	m.Data = data
	m.Header.Set(bus.HeaderEventSeq, strconv.FormatUint(c.t.EventSeq, 10))
	return c.t.tx.Publish(m)
}

// Close makes every member leave and deletes the channel.
func (c *Channel) Close(ctx context.Context) error {
	m, err := c.Members(ctx)
	if err != nil {
		return err
	}
	for _, s := range m {
		if err := c.t.tx.Delete(bus.ChannelMemberKey(c.name, s)); err != nil {
			return err
		}
		if err := c.t.updateSessionChans(ctx, s, func(chans map[string]Delivery) { delete(chans, c.name) }); err != nil {
			return err
		}
		if err := c.t.notice(s, bus.NoticeLeave, c.name, c.rec.Delivery); err != nil {
			return err
		}
	}
	return c.t.tx.Delete(bus.ChannelKey(c.name))
}

// SessionChannels returns the channels session is in.
func (t *Task) SessionChannels(ctx context.Context, session string) (map[string]Delivery, error) {
	chans := map[string]Delivery{}
	if err := t.tx.Get(ctx, bus.SessionChannelsKey(session), &chans); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return nil, err
	}
	return chans, nil
}

func (t *Task) updateSessionChans(ctx context.Context, session string, f func(map[string]Delivery)) error {
	chans, err := t.SessionChannels(ctx, session)
	if err != nil {
		return err
	}
	f(chans)
	if len(chans) == 0 {
		return t.tx.Delete(bus.SessionChannelsKey(session))
	}
	return t.tx.Put(bus.SessionChannelsKey(session), chans)
}

// leaveAll makes session leave every channel it is in: the end of a
// session ends its memberships.
func (t *Task) leaveAll(ctx context.Context, session string) error {
	chans, err := t.SessionChannels(ctx, session)
	if err != nil || len(chans) == 0 {
		return err
	}
	for _, name := range sortedKeys(chans) {
		if err := t.tx.Delete(bus.ChannelMemberKey(name, session)); err != nil {
			return err
		}
	}
	return t.tx.Delete(bus.SessionChannelsKey(session))
}

// migrateMembers moves the members of every channel stored the way
// Starbus kept them before one key per member (a list, the value of the
// key bus.ChannelMembersPrefix(name) itself) to one key per member. Each
// channel moves in a transaction of its own; workers that run it at once
// conflict and retry, and find nothing left to move.
func (r *Runtime) migrateMembers(ctx context.Context) error {
	var lists []string
	err := r.store.View(ctx, func(tx *kv.Tx) error {
		keys, err := tx.List(ctx, "starbus.ch")
		lists = lists[:0]
		for _, k := range keys {
			if t := strings.Split(k, "."); len(t) == 4 && t[3] == "m" {
				lists = append(lists, t[2])
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("handlers: migrate channel members: %w", err)
	}
	for _, name := range lists {
		err := r.store.Update(ctx, func(tx *kv.Tx) error {
			var members []string
			if err := tx.Get(ctx, bus.ChannelMembersPrefix(name), &members); errors.Is(err, kv.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			for _, s := range members {
				if err := tx.Put(bus.ChannelMemberKey(name, s), true); err != nil {
					return err
				}
			}
			return tx.Delete(bus.ChannelMembersPrefix(name))
		})
		if err != nil {
			return fmt.Errorf("handlers: migrate channel %s members: %w", name, err)
		}
		r.log.Info("channel members migrated to one key each", "channel", name)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// notice queues a membership notice on session's subject: its edge
// applies it in order with the session's messages.
func (t *Task) notice(session, kind, channel string, d Delivery) error {
	subj, err := t.world.Session(session)
	if err != nil {
		return err
	}
	m := t.out(subj)
	m.Header.Set(bus.HeaderNotice, kind)
	m.Header.Set(bus.HeaderChannel, channel)
	m.Header.Set(bus.HeaderDelivery, d.String())
	return t.tx.Publish(m)
}

// MoveSession sends the session's later events to region: its edge
// publishes every event the client sends after it has applied this move
// on the region's subjects. Events keep their order across the move.
func (t *Task) MoveSession(session, region string) error {
	if err := bus.ValidName(region); err != nil {
		return fmt.Errorf("region %q: %w", region, err)
	}
	subj, err := t.world.Session(session)
	if err != nil {
		return err
	}
	m := t.out(subj)
	m.Header.Set(bus.HeaderNotice, bus.NoticeRegion)
	m.Header.Set(bus.HeaderRegion, region)
	if err := t.tx.Put(bus.SessionRegionKey(session), region); err != nil {
		return err
	}
	return t.tx.Publish(m)
}

// ForwardChannel returns the handler of [bus.EventChannel] events (a
// client's message to a channel) that sends the message to the channel if
// the sender is a member and allow (if not nil) returns true; otherwise it
// drops the message and tells the sender nothing. Register it, or a
// handler of your own, to let clients talk on channels:
//
//	mux.Handle(bus.EventChannel, handlers.ForwardChannel(nil))
func ForwardChannel(allow func(ctx context.Context, t *Task, ch *Channel) (bool, error)) Handler {
	return HandlerFunc(func(ctx context.Context, t *Task) error {
		ch, err := t.Channel(ctx, t.Header.Get(bus.HeaderChannel))
		if errors.Is(err, ErrNoChannel) || errors.Is(err, bus.ErrInvalidName) {
			return nil
		}
		if err != nil {
			return err
		}
		member, err := ch.IsMember(ctx, t.Session)
		if err != nil || !member {
			return err
		}
		if allow != nil {
			ok, err := allow(ctx, t, ch)
			if err != nil || !ok {
				return err
			}
		}
		return ch.Send(t.Data)
	})
}
