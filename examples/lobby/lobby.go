package lobby

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
)

// Names the game uses.
const (
	// Channel is the lobby's channel.
	Channel = "lobby"
	// TaskStart is the type of the task that starts the game when the
	// countdown ends.
	TaskStart = "lobby.start"
	// Countdown is the time from the second player's arrival to the start.
	Countdown = 10 * time.Second
)

// Handler returns the game's handler.
func Handler() handlers.Handler {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, login)
	mux.HandleFunc(bus.EventMessage, message)
	mux.HandleFunc(bus.EventChannel, chat)
	mux.HandleFunc(bus.EventDisconnect, leave)
	mux.HandleFunc(TaskStart, start)
	return mux
}

// Init creates the lobby's channel, once per world.
func Init() handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		_, err := t.CreateChannel(ctx, Channel, handlers.ChannelOptions{Delivery: handlers.Reliable})
		return err
	})
}

// login greets the player, puts the session in the lobby, and starts the
// countdown when the second player arrives.
func login(ctx context.Context, t *handlers.Task) error {
	name := string(t.Data)
	if err := t.Put("name."+t.Session, name); err != nil {
		return err
	}
	ch, err := t.Channel(ctx, Channel)
	if err != nil {
		return err
	}
	if err := ch.Join(ctx, t.Session); err != nil {
		return err
	}
	if err := ch.Send([]byte(name + " joined")); err != nil {
		return err
	}
	members, err := ch.Members(ctx)
	if err != nil {
		return err
	}
	clicks := 0
	if _, err := t.Lookup(ctx, "clicks."+name, &clicks); err != nil {
		return err
	}
	welcome := fmt.Sprintf("welcome, %s: %d in the lobby, %d clicks", name, len(members), clicks)
	if err := t.Send(t.Session, []byte(welcome)); err != nil {
		return err
	}
	if len(members) < 2 {
		return nil
	}
	pending, err := t.Exists(ctx, "countdown")
	if err != nil || pending {
		return err
	}
	id, err := t.After(Countdown, TaskStart, nil)
	if err != nil {
		return err
	}
	if err := t.Put("countdown", id); err != nil {
		return err
	}
	return ch.Send(fmt.Appendf(nil, "the game starts in %v", Countdown))
}

// player returns the name of the task's session's player.
func player(ctx context.Context, t *handlers.Task) (string, error) {
	name := ""
	err := t.Get(ctx, "name."+t.Session, &name)
	return name, err
}

// message answers a player's commands: "click" counts a click.
func message(ctx context.Context, t *handlers.Task) error {
	if string(t.Data) != "click" {
		return t.Send(t.Session, []byte("unknown command"))
	}
	name, err := player(ctx, t)
	if err != nil {
		return err
	}
	clicks := 0
	if _, err := t.Lookup(ctx, "clicks."+name, &clicks); err != nil {
		return err
	}
	clicks++
	if err := t.Put("clicks."+name, clicks); err != nil {
		return err
	}
	return t.Send(t.Session, fmt.Appendf(nil, "clicks: %d", clicks))
}

// chat forwards what a member says on the lobby's channel, with its name.
func chat(ctx context.Context, t *handlers.Task) error {
	ch, err := t.Channel(ctx, t.Header.Get(bus.HeaderChannel))
	if errors.Is(err, handlers.ErrNoChannel) || errors.Is(err, bus.ErrInvalidName) {
		return nil // a channel that does not exist: nothing to say
	}
	if err != nil {
		return err
	}
	if member, err := ch.IsMember(ctx, t.Session); err != nil || !member {
		return err
	}
	name, err := player(ctx, t)
	if err != nil {
		return err
	}
	return ch.Send([]byte(name + ": " + string(t.Data)))
}

// leave announces a player's departure, and stops the countdown if the
// lobby no longer has two players.
func leave(ctx context.Context, t *handlers.Task) error {
	name, err := player(ctx, t)
	if err != nil {
		return err
	}
	if err := t.Delete("name." + t.Session); err != nil {
		return err
	}
	ch, err := t.Channel(ctx, Channel)
	if err != nil {
		return err
	}
	if err := ch.Leave(ctx, t.Session); err != nil {
		return err
	}
	if err := ch.Send([]byte(name + " left")); err != nil {
		return err
	}
	members, err := ch.Members(ctx)
	if err != nil || len(members) >= 2 {
		return err
	}
	var id handlers.ScheduleID
	if ok, err := t.Lookup(ctx, "countdown", &id); err != nil || !ok {
		return err
	}
	if err := t.Cancel(id); err != nil {
		return err
	}
	if err := t.Delete("countdown"); err != nil {
		return err
	}
	return ch.Send([]byte("countdown stopped"))
}

// start ends the countdown: the game begins.
func start(ctx context.Context, t *handlers.Task) error {
	if err := t.Delete("countdown"); err != nil {
		return err
	}
	ch, err := t.Channel(ctx, Channel)
	if err != nil {
		return err
	}
	return ch.Send([]byte("the game starts"))
}
