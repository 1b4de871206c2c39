package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/kv"
)

// A Handler runs one task: it reacts to one event by reading and writing
// state and sending messages through the task's transaction.
//
// ServeTask must do nothing outside t.tx: no I/O, no goroutines, no clocks
// with side effects. The runtime may run it more than once for one event
// (after a conflict, or past its deadline); only the run that commits has
// any effect. Returning nil commits; returning an error discards everything
// the task did. Wrap an error with [Permanent] when retrying cannot help: the
// event is dead-lettered at once. A panic is recovered at the task boundary
// and treated like a permanent error, unless the task had read stale state,
// in which case it is retried. ctx ends at the task's deadline.
type Handler interface {
	ServeTask(ctx context.Context, t *Task) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, t *Task) error

// ServeTask calls f(ctx, t).
func (f HandlerFunc) ServeTask(ctx context.Context, t *Task) error { return f(ctx, t) }

// Middleware wraps a Handler.
type Middleware func(Handler) Handler

// Chain applies middleware so that the first one listed runs outermost.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// ErrNoHandler reports an event whose type no handler is registered for.
var ErrNoHandler = errors.New("handlers: no handler for event type")

// Mux routes tasks to handlers by event type, from an explicit table.
type Mux struct {
	routes map[string]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{routes: make(map[string]Handler)} }

// Handle registers h for events of type typ. It panics if typ is empty or
// already registered, like http.ServeMux: both are programming errors found
// at start-up.
func (m *Mux) Handle(typ string, h Handler) {
	if typ == "" || h == nil {
		panic("handlers: Handle with empty type or nil handler")
	}
	if _, dup := m.routes[typ]; dup {
		panic("handlers: duplicate handler for " + typ)
	}
	m.routes[typ] = h
}

// HandleFunc registers f for events of type typ.
func (m *Mux) HandleFunc(typ string, f func(ctx context.Context, t *Task) error) {
	m.Handle(typ, HandlerFunc(f))
}

// ServeTask dispatches t to the handler of its type. An unknown type is a
// permanent error ([ErrNoHandler]): the runtime dead-letters the event,
// except for what clients send (bus.EventMessage, bus.EventChannel),
// which it drops and counts in Stats.Unhandled, so that a client cannot
// flood the dead letters or the logs.
func (m *Mux) ServeTask(ctx context.Context, t *Task) error {
	h, ok := m.routes[t.Type]
	if !ok {
		return Permanent(fmt.Errorf("%w %q", ErrNoHandler, t.Type))
	}
	return h.ServeTask(ctx, t)
}

var _ Handler = (*Mux)(nil)

// ErrPermanent marks errors that retrying cannot fix.
var ErrPermanent = errors.New("handlers: permanent error")

// Permanent wraps err so that the runtime dead-letters the event instead of
// retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// Task is one event being handled, with the transaction that carries its
// effects. The runtime makes a new Task for every attempt.
type Task struct {
	// Type is the event type (see bus.EventLogin and friends for the ones
	// edges publish).
	Type string
	// Region and Part are the event's region and ordering key; events with
	// the same Region and Part are handled one at a time, in order.
	Region, Part string
	// Session is the client session the event came from, if any.
	Session string
	// Seq is the client's per-session sequence number, if any.
	Seq uint64
	// Data is the event's payload. Do not modify it.
	Data []byte
	// Header holds the event's headers. Do not modify it.
	Header nats.Header
	// EventSeq is the event's stream sequence: unique per event in a world.
	EventSeq uint64
	// Attempt counts the runs of this event in this worker, from 1.
	Attempt int
	// Schedule is the schedule a scheduled task runs for, "" otherwise.
	Schedule ScheduleID
	// Due is the time a scheduled task was due; zero otherwise.
	Due time.Time

	tx     *kv.Tx // the task's transaction: everything it does goes through it
	world  bus.World
	live   []*nats.Msg // best-effort channel messages, sent after the commit
	outTTL string      // Nats-TTL of messages to clients (Config.OutboxTTL), "" for none
}

// out returns a new message to clients on subj: a session's or a reliable
// channel's. Such a message is read twice at most: by the edges' live
// delivery as it is stored, and by a replay when its client reconnects
// within the edge's grace. Neither exactly-once effects nor any later
// task depend on it, so it carries a TTL (Config.OutboxTTL) and the
// server removes it on time, without a purge: a session that lives for
// hours, or a channel that is never closed, keeps only its last minutes
// of messages.
func (t *Task) out(subj string) *nats.Msg {
	m := nats.NewMsg(subj)
	if t.outTTL != "" {
		m.Header.Set(jetstream.MsgTTLHeader, t.outTTL)
	}
	return m
}

// liveMsg queues a best-effort message on subj, sent once the task has
// committed, and returns it for its headers.
func (t *Task) liveMsg(subj string, data []byte) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Data = data
	t.live = append(t.live, m)
	return m
}

// Send queues data for the client session id, sent if the task commits.
func (t *Task) Send(session string, data []byte) error {
	subj, err := t.world.Session(session)
	if err != nil {
		return err
	}
	m := t.out(subj)
	m.Data = data
	m.Header.Set(bus.HeaderEventSeq, strconv.FormatUint(t.EventSeq, 10))
	return t.tx.Publish(m)
}

// Emit queues a new event of type typ for region and ordering key part,
// published if the task commits. It is handled by a later task. The
// platform's event types (those under "starbus.") are refused with
// [ErrReserved]: only edges and the runtime say that a session logged in
// or left.
func (t *Task) Emit(region, part, typ string, data []byte) error {
	if typ == "" {
		return errors.New("handlers: Emit with an empty event type")
	}
	if err := reserved("event type", typ); err != nil {
		return err
	}
	subj, err := t.world.Event(region, part)
	if err != nil {
		return err
	}
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(bus.HeaderType, typ)
	return t.tx.Publish(m)
}
