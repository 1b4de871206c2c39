package sgsclient_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/starbus/starbus/edge/sgs"
	"github.com/starbus/starbus/edge/sgs/sgsclient"
)

// step is one message from the server and what the machine must answer.
type step struct {
	in    sgs.Message
	want  string // the actions, as actions() prints them
	state sgsclient.State
	err   bool
}

func actions(as []sgsclient.Action) string {
	s := ""
	for _, a := range as {
		switch {
		case a.Event != nil:
			s += fmt.Sprintf("event %d %s %q %q %s;", a.Event.Kind, a.Event.Channel, a.Event.Payload, a.Event.Reason, a.Event.Addr)
		case a.Send != nil:
			s += fmt.Sprintf("send %T;", a.Send)
		case a.Dial != "":
			s += fmt.Sprintf("dial %s %T;", a.Dial, a.Then)
		case a.Close:
			s += "close;"
		}
	}
	return s
}

func TestMachine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"login and messages", []step{
			{in: sgs.LoginSuccess{ReconnectionKey: []byte("k")}, want: `event 1  "" "" ;`, state: sgsclient.StateLoggedIn},
			{in: sgs.SessionMessage{Message: []byte("hi")}, want: `event 4  "hi" "" ;`, state: sgsclient.StateLoggedIn},
			{in: sgs.ChannelJoin{Name: "lobby", ID: []byte{1}}, want: `event 5 lobby "" "" ;`, state: sgsclient.StateLoggedIn},
			{in: sgs.ChannelMessage{ID: []byte{1}, Message: []byte("yo")}, want: `event 7 lobby "yo" "" ;`, state: sgsclient.StateLoggedIn},
			{in: sgs.ChannelLeave{ID: []byte{1}}, want: `event 6 lobby "" "" ;`, state: sgsclient.StateLoggedIn},
		}},
		{"refused", []step{
			{in: sgs.LoginFailure{Reason: "no"}, want: `event 2  "" "no" ;close;`, state: sgsclient.StateDone},
		}},
		{"redirected", []step{
			{in: sgs.LoginRedirect{Host: "10.0.0.2", Port: 1139}, want: `event 3  "" "" 10.0.0.2:1139;dial 10.0.0.2:1139 sgs.LoginRequest;`, state: sgsclient.StateLoggingIn},
			{in: sgs.LoginSuccess{}, want: `event 1  "" "" ;`, state: sgsclient.StateLoggedIn},
		}},
		{"a redirect to no port", []step{
			{in: sgs.LoginRedirect{Host: "h", Port: 0}, err: true, state: sgsclient.StateLoggingIn},
		}},
		{"relocated", []step{
			{in: sgs.LoginSuccess{}, want: `event 1  "" "" ;`, state: sgsclient.StateLoggedIn},
			{in: sgs.SuspendMessages{}, want: `event 8  "" "" ;send sgs.SuspendMessagesComplete;`, state: sgsclient.StateSuspended},
			{in: sgs.SessionMessage{Message: []byte("late")}, want: `event 4  "late" "" ;`, state: sgsclient.StateSuspended},
			{in: sgs.RelocateNotification{Host: "h", Port: 2, RelocationKey: []byte("r")}, want: `event 9  "" "" h:2;dial h:2 sgs.RelocateRequest;`, state: sgsclient.StateRelocating},
			{in: sgs.RelocateSuccess{ReconnectionKey: []byte("k2")}, want: `event 10  "" "" ;`, state: sgsclient.StateLoggedIn},
		}},
		{"relocation refused", []step{
			{in: sgs.LoginSuccess{}, want: `event 1  "" "" ;`, state: sgsclient.StateLoggedIn},
			{in: sgs.SuspendMessages{}, want: `event 8  "" "" ;send sgs.SuspendMessagesComplete;`, state: sgsclient.StateSuspended},
			{in: sgs.RelocateNotification{Host: "h", Port: 2}, want: `event 9  "" "" h:2;dial h:2 sgs.RelocateRequest;`, state: sgsclient.StateRelocating},
			{in: sgs.RelocateFailure{Reason: "bad-token"}, want: `event 11  "" "bad-token" ;close;`, state: sgsclient.StateDone},
		}},
		{"suspended, then resumed", []step{
			{in: sgs.LoginSuccess{}, want: `event 1  "" "" ;`, state: sgsclient.StateLoggedIn},
			{in: sgs.SuspendMessages{}, want: `event 8  "" "" ;send sgs.SuspendMessagesComplete;`, state: sgsclient.StateSuspended},
			{in: sgs.ResumeMessages{}, state: sgsclient.StateLoggedIn},
		}},
		{"a message before login", []step{
			{in: sgs.SessionMessage{}, err: true, state: sgsclient.StateDone},
		}},
		{"a channel message on an unknown channel", []step{
			{in: sgs.LoginSuccess{}, want: `event 1  "" "" ;`, state: sgsclient.StateLoggedIn},
			{in: sgs.ChannelMessage{ID: []byte{9}}, err: true, state: sgsclient.StateDone},
		}},
		{"a client's opcode from the server", []step{
			{in: sgs.LoginRequest{}, err: true, state: sgsclient.StateDone},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := sgsclient.NewMachine("ann", "pw")
			if _, ok := m.Login().(sgs.LoginRequest); !ok {
				t.Fatal("Login is not a LOGIN_REQUEST")
			}
			for i, s := range tc.steps {
				as, err := m.Step(s.in)
				if (err != nil) != s.err || s.err && !errors.Is(err, sgsclient.ErrProtocol) {
					t.Fatalf("step %d (%T): error %v, want error %v", i, s.in, err, s.err)
				}
				if got := actions(as); got != s.want {
					t.Errorf("step %d (%T): %s, want %s", i, s.in, got, s.want)
				}
				if m.State() != s.state {
					t.Errorf("step %d (%T): state %v, want %v", i, s.in, m.State(), s.state)
				}
			}
		})
	}
}

func TestMachineSends(t *testing.T) {
	m := sgsclient.NewMachine("ann", "pw")
	if _, err := m.Send([]byte("x")); err == nil {
		t.Error("a send before login")
	}
	m.Login()
	if _, err := m.Step(sgs.LoginSuccess{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Step(sgs.ChannelJoin{Name: "lobby", ID: []byte("L")}); err != nil {
		t.Fatal(err)
	}
	if msg, err := m.SendChannel("lobby", []byte("hi")); err != nil || string(msg.(sgs.ChannelMessage).ID) != "L" {
		t.Errorf("SendChannel: %#v, %v", msg, err)
	}
	if _, err := m.SendChannel("other", nil); err == nil {
		t.Error("a send to a channel the session is not in")
	}
	if _, err := m.Step(sgs.SuspendMessages{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Send([]byte("x")); err == nil {
		t.Error("a send while suspended")
	}
}
