package sgsclient

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/starbus/starbus/edge/sgs"
)

// State is where a session stands.
type State uint8

// States of a [Machine].
const (
	StateNew        State = iota // nothing sent yet
	StateLoggingIn               // LOGIN_REQUEST sent
	StateLoggedIn                // the session runs
	StateSuspended               // SUSPEND_MESSAGES received: nothing may be sent
	StateRelocating              // RELOCATE_REQUEST sent to another server
	StateLoggingOut              // LOGOUT_REQUEST sent
	StateDone                    // over: logged out, refused, or the protocol broken
)

var stateNames = [...]string{"new", "logging-in", "logged-in", "suspended", "relocating", "logging-out", "done"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// EventKind tells what an [Event] is.
type EventKind uint8

// Kinds of event.
const (
	LoggedIn       EventKind = iota + 1 // Key: the reconnection key
	LoginFailed                         // Reason
	Redirected                          // Addr: the login goes there
	Message                             // Payload: a session message
	Joined                              // Channel: the session joined it
	Left                                // Channel: the session left it
	ChannelMessage                      // Channel, Payload
	Suspended                           // the server suspended the client's messages
	Relocating                          // Addr, Key: the session moves there, with this relocation key
	Relocated                           // Key: the session runs again, at the Relocating's Addr
	RelocateFailed                      // Reason
	LoggedOut                           // LOGOUT_SUCCESS
)

// Event is something the application is told.
type Event struct {
	Kind    EventKind
	Channel string // the channel's name
	Payload []byte
	Key     []byte // the reconnection key
	Reason  string
	Addr    string
}

// Action is what a Machine asks its runner to do, in order.
type Action struct {
	// Send, if set, is to be sent on the current connection.
	Send sgs.Message
	// Dial, if set, asks to close the current connection, connect to
	// Dial (host:port) and send Then there.
	Dial string
	Then sgs.Message
	// Event, if set, is for the application.
	Event *Event
	// Close asks to close the connection: the session is over.
	Close bool
}

// ErrProtocol reports a server message that the protocol does not allow
// where it came.
var ErrProtocol = errors.New("sgsclient: protocol violation")

// Machine is a client session's protocol state. Its zero value is not
// usable: make one with [NewMachine]. It is not safe for concurrent use.
type Machine struct {
	name, password string
	state          State
	key            []byte            // the reconnection key
	channels       map[string]string // channel name by id (as a string)
}

// NewMachine returns the state of a session that logs in as name.
func NewMachine(name, password string) *Machine {
	return &Machine{name: name, password: password, channels: map[string]string{}}
}

// State returns where the session stands.
func (m *Machine) State() State { return m.state }

// Key returns the last reconnection key the server gave.
func (m *Machine) Key() []byte { return m.key }

// Login returns the LOGIN_REQUEST to send on a new connection.
func (m *Machine) Login() sgs.Message {
	m.state = StateLoggingIn
	return sgs.LoginRequest{Version: sgs.Version, Name: m.name, Password: m.password}
}

// Logout returns the LOGOUT_REQUEST to send.
func (m *Machine) Logout() (sgs.Message, error) {
	if m.state != StateLoggedIn {
		return nil, fmt.Errorf("sgsclient: logout while %v", m.state)
	}
	m.state = StateLoggingOut
	return sgs.LogoutRequest{}, nil
}

// Send returns the SESSION_MESSAGE carrying payload; it is refused unless
// the session runs (not while it is suspended or relocating).
func (m *Machine) Send(payload []byte) (sgs.Message, error) {
	if m.state != StateLoggedIn {
		return nil, fmt.Errorf("sgsclient: send while %v", m.state)
	}
	return sgs.SessionMessage{Message: payload}, nil
}

// SendChannel returns the CHANNEL_MESSAGE carrying payload to the channel
// called name, which the session must have joined.
func (m *Machine) SendChannel(name string, payload []byte) (sgs.Message, error) {
	if m.state != StateLoggedIn {
		return nil, fmt.Errorf("sgsclient: send while %v", m.state)
	}
	for id, n := range m.channels {
		if n == name {
			return sgs.ChannelMessage{ID: []byte(id), Message: payload}, nil
		}
	}
	return nil, fmt.Errorf("sgsclient: not in channel %q", name)
}

// Channels returns the names of the channels the session is in.
func (m *Machine) Channels() []string {
	var out []string
	for _, n := range m.channels {
		out = append(out, n)
	}
	return out
}

// Step takes the server's next message and returns what to do. An error
// (ErrProtocol) ends the session: close the connection.
func (m *Machine) Step(msg sgs.Message) ([]Action, error) {
	event := func(e Event) []Action { return []Action{{Event: &e}} }
	switch msg := msg.(type) {
	case sgs.LoginSuccess:
		if m.state == StateLoggingIn {
			return m.admitted(LoggedIn, msg.ReconnectionKey), nil
		}
	case sgs.LoginFailure:
		if m.state == StateLoggingIn {
			return m.refused(LoginFailed, msg.Reason), nil
		}
	case sgs.LoginRedirect:
		if m.state != StateLoggingIn {
			break
		}
		addr, err := address(msg.Host, msg.Port)
		if err != nil {
			return nil, err
		}
		return append(event(Event{Kind: Redirected, Addr: addr}), Action{Dial: addr, Then: m.Login()}), nil
	case sgs.SuspendMessages:
		if m.state != StateLoggedIn {
			break
		}
		m.state = StateSuspended
		return append(event(Event{Kind: Suspended}), Action{Send: sgs.SuspendMessagesComplete{}}), nil
	case sgs.ResumeMessages:
		if m.state != StateSuspended {
			break
		}
		m.state = StateLoggedIn
		return nil, nil
	case sgs.RelocateNotification:
		if m.state != StateSuspended && m.state != StateLoggedIn {
			break
		}
		addr, err := address(msg.Host, msg.Port)
		if err != nil {
			return nil, err
		}
		m.state = StateRelocating
		return append(event(Event{Kind: Relocating, Addr: addr, Key: msg.RelocationKey}),
			Action{Dial: addr, Then: sgs.RelocateRequest{Version: sgs.Version, RelocationKey: msg.RelocationKey}}), nil
	case sgs.RelocateSuccess:
		if m.state == StateRelocating {
			return m.admitted(Relocated, msg.ReconnectionKey), nil
		}
	case sgs.RelocateFailure:
		if m.state == StateRelocating {
			return m.refused(RelocateFailed, msg.Reason), nil
		}
	case sgs.SessionMessage:
		if !m.running() {
			break
		}
		return event(Event{Kind: Message, Payload: msg.Message}), nil
	case sgs.ChannelJoin:
		if !m.running() {
			break
		}
		m.channels[string(msg.ID)] = msg.Name
		return event(Event{Kind: Joined, Channel: msg.Name}), nil
	case sgs.ChannelLeave:
		name, ok := m.channels[string(msg.ID)]
		if !m.running() || !ok {
			break
		}
		delete(m.channels, string(msg.ID))
		return event(Event{Kind: Left, Channel: name}), nil
	case sgs.ChannelMessage:
		name, ok := m.channels[string(msg.ID)]
		if !m.running() || !ok {
			break
		}
		return event(Event{Kind: ChannelMessage, Channel: name, Payload: msg.Message}), nil
	case sgs.LogoutSuccess:
		if m.state != StateLoggingOut {
			break
		}
		m.state = StateDone
		return append(event(Event{Kind: LoggedOut}), Action{Close: true}), nil
	}
	m.state = StateDone
	return nil, fmt.Errorf("%w: %T while %v", ErrProtocol, msg, m.state)
}

// admitted runs the session, logged in or relocated with key.
func (m *Machine) admitted(kind EventKind, key []byte) []Action {
	m.state, m.key = StateLoggedIn, key
	return []Action{{Event: &Event{Kind: kind, Key: key}}}
}

// refused ends the session, whose login or relocation was refused.
func (m *Machine) refused(kind EventKind, reason string) []Action {
	m.state = StateDone
	return []Action{{Event: &Event{Kind: kind, Reason: reason}}, {Close: true}}
}

// running reports whether the server may send the session its messages:
// it runs, or is suspended (messages already on their way still come).
func (m *Machine) running() bool {
	return m.state == StateLoggedIn || m.state == StateSuspended || m.state == StateLoggingOut
}

// address is host and a Java int port as host:port.
func address(host string, port int32) (string, error) {
	if host == "" || port <= 0 || port > 0xffff {
		return "", fmt.Errorf("%w: address %q port %d", ErrProtocol, host, port)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}
