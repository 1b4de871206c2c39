package starbustest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge/client"
)

// Session is a player logged in to a world, as a test drives it: it sends
// what a client sends and waits for what the world sends back.
//
// Through an edge (the default), a Session is a real client
// ([client.Client]) on the edge's loopback port. Without one
// ([Options.NoEdge]) it does what an edge does: it publishes its events
// to the world's stream itself, with the session's headers, per-session
// sequence numbers and deduplication ids, and reads its messages from the
// stream, following its channel memberships and region moves.
//
// Every message the world sends the session arrives in order. [Session.Next]
// takes the next one; [Session.Expect] waits for one that matches and
// keeps the others, in order, for later calls. A Session is for one
// goroutine at a time; several sessions may be driven at once.
type Session struct {
	// Name is the player's name, as the login gave it.
	Name string
	// ID is the session's id: the session's Task.Session in the game's
	// handlers, and its key in channel memberships ([World.Members]).
	ID string
	// Client is the session's connection to the edge; nil without an
	// edge.
	Client *client.Client

	w       *World
	in      <-chan client.Message
	pending []client.Message // received, not yet taken
	direct  *direct          // nil through an edge
}

// Login logs the player name in and returns its session once the login is
// accepted: through the edge, as a client does (any password is accepted
// unless [Options.Edge] has an Authenticator that says otherwise), or
// without an edge as one would. The game's login handler runs
// asynchronously: wait for its welcome with [Session.Next] or
// [Session.Expect]. A cleanup of the test closes the session's connection,
// without logging out.
func (w *World) Login(name string) *Session {
	w.tb.Helper()
	if w.Edge == nil {
		return w.loginDirect(name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	c, err := client.Dial(ctx, w.Addr, name, "pw")
	if err != nil {
		w.tb.Fatalf("starbustest: login %s: %v", name, err)
	}
	w.tb.Cleanup(func() { _ = c.Close() })
	return &Session{Name: name, ID: c.Session(), Client: c, w: w, in: c.Messages()}
}

// Send sends payload to the world, as a client's SEND: the game's handler
// gets it as a bus.EventMessage event of this session.
func (s *Session) Send(payload []byte) {
	s.w.tb.Helper()
	var err error
	if s.direct != nil {
		err = s.direct.publish(bus.EventMessage, "", payload)
	} else {
		err = s.Client.Send(payload)
	}
	if err != nil {
		s.w.tb.Fatalf("starbustest: %s: send: %v", s.Name, err)
	}
}

// SendChannel sends payload to the channel ch, as a client's CHANNEL_SEND:
// the game's handler gets it as a bus.EventChannel event (see
// handlers.ForwardChannel).
func (s *Session) SendChannel(ch string, payload []byte) {
	s.w.tb.Helper()
	var err error
	if s.direct != nil {
		err = s.direct.publish(bus.EventChannel, ch, payload)
	} else {
		err = s.Client.SendChannel(ch, payload)
	}
	if err != nil {
		s.w.tb.Fatalf("starbustest: %s: send to %s: %v", s.Name, ch, err)
	}
}

// Logout ends the session: the game's handler gets a bus.EventDisconnect
// event, after which the runtime takes the session out of its channels.
// Logout returns once the end is published; the session receives nothing
// more. Wait for its effects with [World.Eventually].
func (s *Session) Logout() {
	s.w.tb.Helper()
	var err error
	if s.direct != nil {
		err = s.direct.logout()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), s.w.Timeout)
		err = s.Client.Logout(ctx)
		cancel()
	}
	if err != nil {
		s.w.tb.Fatalf("starbustest: %s: logout: %v", s.Name, err)
	}
}

// A Match tells whether a message is the one a test waits for.
type Match func(client.Message) bool

// Text matches a message to the session (not to a channel) whose payload
// is text.
func Text(text string) Match {
	return func(m client.Message) bool {
		return m.Kind == client.KindMessage && m.Channel == "" && string(m.Payload) == text
	}
}

// OnChannel matches any message on channel ch (not a membership notice).
func OnChannel(ch string) Match {
	return func(m client.Message) bool { return m.Kind == client.KindMessage && m.Channel == ch }
}

// ChannelText matches a message on channel ch whose payload is text.
func ChannelText(ch, text string) Match {
	return func(m client.Message) bool {
		return m.Kind == client.KindMessage && m.Channel == ch && string(m.Payload) == text
	}
}

// Joined matches the notice that the session joined channel ch.
func Joined(ch string) Match {
	return func(m client.Message) bool { return m.Kind == client.KindJoined && m.Channel == ch }
}

// Left matches the notice that the session left channel ch.
func Left(ch string) Match {
	return func(m client.Message) bool { return m.Kind == client.KindLeft && m.Channel == ch }
}

// Next returns the next message the session receives (a message, a channel
// message or a membership notice), or fails the test if none comes before
// ctx ends or the world's Timeout passes.
func (s *Session) Next(ctx context.Context) client.Message {
	s.w.tb.Helper()
	return s.Expect(ctx, nil)
}

// Expect returns the first message the session receives that match
// accepts (any message if match is nil), or fails the test, listing what
// came instead, if none comes before ctx ends or the world's Timeout
// passes. The messages it passes over stay, in order, for the next call.
func (s *Session) Expect(ctx context.Context, match Match) client.Message {
	s.w.tb.Helper()
	for i, m := range s.pending {
		if match == nil || match(m) {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return m
		}
	}
	timer := time.NewTimer(s.w.Timeout)
	defer timer.Stop()
	for {
		var m client.Message
		select {
		case m = <-s.in:
		case <-s.closed():
			select {
			case m = <-s.in: // what arrived before the end is still to be read
			default:
				s.failExpect(match, "the session's connection is closed")
				return m
			}
		case <-ctx.Done():
			s.failExpect(match, ctx.Err().Error())
			return m
		case <-timer.C:
			s.failExpect(match, fmt.Sprintf("nothing within %v", s.w.Timeout))
			return m
		}
		if match == nil || match(m) {
			return m
		}
		s.pending = append(s.pending, m)
	}
}

// failExpect fails the test for a wait that ended without its message.
func (s *Session) failExpect(match Match, why string) {
	s.w.tb.Helper()
	want := "a message"
	if match != nil {
		want = "a matching message"
	}
	s.w.tb.Fatalf("starbustest: %s waited for %s: %s; received meanwhile: %s%s", s.Name, want, why, describe(s.pending), s.errors())
}

// ExpectJSON waits, as [Session.Expect] does, for a message to the session
// or on one of its channels whose payload decodes as JSON into a T that
// match accepts (any T if match is nil), and returns it.
func ExpectJSON[T any](ctx context.Context, s *Session, match func(T) bool) T {
	s.w.tb.Helper()
	var got T
	s.Expect(ctx, func(m client.Message) bool {
		var v T
		if m.Kind != client.KindMessage || json.Unmarshal(m.Payload, &v) != nil || match != nil && !match(v) {
			return false
		}
		got = v
		return true
	})
	return got
}

// Drain returns the messages the session has received and no call has
// taken yet, without waiting for more.
func (s *Session) Drain() []client.Message {
	for {
		select {
		case m := <-s.in:
			s.pending = append(s.pending, m)
			continue
		default:
		}
		out := s.pending
		s.pending = nil
		return out
	}
}

// closed is closed when the session's connection ends.
func (s *Session) closed() <-chan struct{} {
	if s.direct != nil {
		return s.direct.done
	}
	return s.Client.Done()
}

// errors lists the error frames the edge sent the session, if any.
func (s *Session) errors() string {
	if s.Client == nil {
		return ""
	}
	var b strings.Builder
	for {
		select {
		case err := <-s.Client.Errors():
			fmt.Fprintf(&b, "; error from the edge: %v", err)
			continue
		default:
		}
		return b.String()
	}
}

// describe lists messages for a failure report.
func describe(ms []client.Message) string {
	if len(ms) == 0 {
		return "nothing"
	}
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case m.Kind == client.KindJoined:
			fmt.Fprintf(&b, "[joined %s]", m.Channel)
		case m.Kind == client.KindLeft:
			fmt.Fprintf(&b, "[left %s]", m.Channel)
		case m.Channel != "":
			fmt.Fprintf(&b, "[%s] %q", m.Channel, truncate(m.Payload))
		default:
			fmt.Fprintf(&b, "%q", truncate(m.Payload))
		}
	}
	return b.String()
}

func truncate(b []byte) []byte {
	if len(b) > 200 {
		return append(bytes.Clone(b[:200]), "..."...)
	}
	return b
}

// direct is what an edge does for one session, done by a test without an
// edge: publish its events, and deliver its messages in stream order
// (those to the session, and those of the channels it is a member of
// between its join and its leave notices).
type direct struct {
	w    *World
	id   string
	out  chan client.Message
	done chan struct{} // closed at logout and cleanup
	cons jetstream.ConsumeContext

	mu     sync.Mutex
	region string
	seq    uint64                        // of the last event published
	chans  map[string]*nats.Subscription // channels it is in; the subscription of a best-effort one
	ended  bool
}

// loginDirect starts a session without an edge: it reads the session's
// messages from the world's stream from now on, then publishes its login.
func (w *World) loginDirect(name string) *Session {
	w.tb.Helper()
	d := &direct{w: w, id: w.newSessionID(name), out: make(chan client.Message, 1024), done: make(chan struct{}),
		region: "r0", chans: map[string]*nats.Subscription{}}
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	c, err := w.Stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{w.World.OutFilter()},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		w.tb.Fatalf("starbustest: login %s: %v", name, err)
	}
	if d.cons, err = c.Consume(d.receive); err != nil {
		w.tb.Fatalf("starbustest: login %s: %v", name, err)
	}
	w.tb.Cleanup(d.stop)
	if err := d.publish(bus.EventLogin, "", []byte(name)); err != nil {
		w.tb.Fatalf("starbustest: login %s: %v", name, err)
	}
	return &Session{Name: name, ID: d.id, w: w, in: d.out, direct: d}
}

// newSessionID returns an id for a direct session of name: the name
// itself the first time, if it is a valid one.
func (w *World) newSessionID(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	base := name
	if bus.ValidName(base) != nil || len(base) > 100 {
		base = "s"
	}
	id := base
	for n := 2; w.sessions[id]; n++ {
		id = base + "-" + strconv.Itoa(n)
	}
	w.sessions[id] = true
	return id
}

// publish publishes an event of the session as an edge does: on the
// session's subject in its region, with its headers, its next sequence
// number, and a deduplication id.
func (d *direct) publish(typ, channel string, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return client.ErrClosed
	}
	subj, err := d.w.World.Event(d.region, d.id)
	if err != nil {
		return err
	}
	d.seq++
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(bus.HeaderType, typ)
	m.Header.Set(bus.HeaderSession, d.id)
	m.Header.Set(bus.HeaderSeq, strconv.FormatUint(d.seq, 10))
	if channel != "" {
		m.Header.Set(bus.HeaderChannel, channel)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.w.Timeout)
	defer cancel()
	// The edge's id: session, epoch (always 1 here), sequence.
	_, err = d.w.JS.PublishMsg(ctx, m, jetstream.WithMsgID(d.id+"-1-"+strconv.FormatUint(d.seq, 10)))
	return err
}

// logout publishes the session's end and stops its delivery.
func (d *direct) logout() error {
	if err := d.publish(bus.EventDisconnect, "", nil); err != nil {
		return err
	}
	d.stop()
	return nil
}

// stop ends the session's delivery and waits for it.
func (d *direct) stop() {
	d.mu.Lock()
	if d.ended {
		d.mu.Unlock()
		return
	}
	d.ended = true
	close(d.done)
	for ch, sub := range d.chans {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		delete(d.chans, ch)
	}
	d.mu.Unlock()
	d.cons.Stop()
	<-d.cons.Closed()
}

// receive handles one stored message to clients, in stream order.
func (d *direct) receive(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	msg := client.Message{Seq: meta.Sequence.Stream, Payload: m.Data()}
	if ch, ok := d.w.World.ParseChannel(m.Subject()); ok {
		d.mu.Lock()
		_, in := d.chans[ch]
		d.mu.Unlock()
		if in {
			msg.Channel = ch
			d.deliver(msg)
		}
		return
	}
	if id, ok := d.w.World.ParseSession(m.Subject()); !ok || id != d.id {
		return
	}
	h := m.Headers()
	switch h.Get(bus.HeaderNotice) {
	case "":
		d.deliver(msg)
	case bus.NoticeJoin:
		msg = client.Message{Kind: client.KindJoined, Seq: msg.Seq, Channel: h.Get(bus.HeaderChannel)}
		if d.join(msg.Channel, h.Get(bus.HeaderDelivery) == bus.DeliveryBestEffort) {
			d.deliver(msg)
		}
	case bus.NoticeLeave:
		msg = client.Message{Kind: client.KindLeft, Seq: msg.Seq, Channel: h.Get(bus.HeaderChannel)}
		if d.leave(msg.Channel) {
			d.deliver(msg)
		}
	case bus.NoticeRegion:
		d.mu.Lock()
		d.region = h.Get(bus.HeaderRegion)
		d.mu.Unlock()
	}
}

// join makes the session a member of ch, subscribed to its best-effort
// messages if bestEffort. It reports whether it was not one already.
func (d *direct) join(ch string, bestEffort bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, in := d.chans[ch]; in || d.ended {
		return false
	}
	var sub *nats.Subscription
	if live, err := d.w.World.LiveChannel(ch); err == nil && bestEffort {
		sub, _ = d.w.Conn.Subscribe(live, func(m *nats.Msg) {
			d.deliver(client.Message{Channel: ch, Payload: m.Data})
		})
	}
	d.chans[ch] = sub
	return true
}

// leave ends the session's membership of ch. It reports whether it was a
// member.
func (d *direct) leave(ch string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	sub, in := d.chans[ch]
	if !in {
		return false
	}
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	delete(d.chans, ch)
	return true
}

// deliver hands m to the test, unless the session has ended.
func (d *direct) deliver(m client.Message) {
	select {
	case d.out <- m:
	case <-d.done:
	}
}
