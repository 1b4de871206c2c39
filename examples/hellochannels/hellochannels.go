package hellochannels

import (
	"context"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
)

// The tutorial's channels.
const (
	Foo = "Foo"
	Bar = "Bar"
)

// Handler returns the game's handler.
func Handler() handlers.Handler {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, loggedIn)
	mux.HandleFunc(bus.EventMessage, echo)
	mux.Handle(bus.EventChannel, handlers.ForwardChannel(nil))
	mux.HandleFunc(bus.EventDisconnect, disconnected)
	return mux
}

// Init creates the channels, once per world.
func Init() handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		for _, name := range []string{Foo, Bar} {
			if _, err := t.CreateChannel(ctx, name, handlers.ChannelOptions{Delivery: handlers.Reliable}); err != nil {
				return err
			}
		}
		return nil
	})
}

// loggedIn joins the new session to both channels.
func loggedIn(ctx context.Context, t *handlers.Task) error {
	for _, name := range []string{Foo, Bar} {
		ch, err := t.Channel(ctx, name)
		if err != nil {
			return err
		}
		if err := ch.Join(ctx, t.Session); err != nil {
			return err
		}
	}
	return nil
}

// echo sends a session message back to its session.
func echo(_ context.Context, t *handlers.Task) error {
	return t.Send(t.Session, t.Data)
}

// disconnected is the session listener's disconnected: the tutorial only
// logs it, and the platform takes the session out of its channels.
func disconnected(context.Context, *handlers.Task) error { return nil }
