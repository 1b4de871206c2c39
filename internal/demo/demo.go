// Package demo is the small world `starbus dev` serves, so that a new user
// can connect and see Starbus work: a lobby where players see who is
// online, chat with everyone, and keep a personal counter. It is also the
// shortest complete example of a Starbus game: every behaviour is a handler
// in a transaction.
package demo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// Keys of the demo's state.
const (
	keyOnline = "demo.online" // map[session]player
	keyMOTD   = "demo.motd"
)

func counterKey(player string) string { return "demo.count." + player }

// maxBroadcast bounds a chat line's recipients: one commit carries at most
// 1,000 messages. Channels are the way to talk to more.
const maxBroadcast = 500

// Handler returns the demo's handlers.
func Handler() handlers.Handler {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, login)
	mux.HandleFunc(bus.EventMessage, message)
	mux.HandleFunc(bus.EventDisconnect, disconnect)
	mux.HandleFunc("demo.later", Later)
	return mux
}

// Init prepares a new world, once.
func Init() handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		return t.Tx.Put(keyMOTD, "Welcome to the Starbus demo. Type /help.")
	})
}

func online(ctx context.Context, t *handlers.Task) (map[string]string, error) {
	m := map[string]string{}
	if err := t.Tx.Get(ctx, keyOnline, &m); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return nil, err
	}
	return m, nil
}

func login(ctx context.Context, t *handlers.Task) error {
	who, err := online(ctx, t)
	if err != nil {
		return err
	}
	player := string(t.Data)
	who[t.Session] = player
	var motd string
	if err := t.Tx.Get(ctx, keyMOTD, &motd); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	if err := t.Tx.Put(keyOnline, who); err != nil {
		return err
	}
	if err := t.Send(t.Session, fmt.Appendf(nil, "%s You are %s; %d online.", motd, player, len(who))); err != nil {
		return err
	}
	return broadcast(t, who, t.Session, player+" joined")
}

func disconnect(ctx context.Context, t *handlers.Task) error {
	who, err := online(ctx, t)
	if err != nil {
		return err
	}
	player, ok := who[t.Session]
	if !ok {
		return nil
	}
	delete(who, t.Session)
	if err := t.Tx.Put(keyOnline, who); err != nil {
		return err
	}
	return broadcast(t, who, "", player+" left")
}

func message(ctx context.Context, t *handlers.Task) error {
	who, err := online(ctx, t)
	if err != nil {
		return err
	}
	player := who[t.Session]
	line := strings.TrimSpace(string(t.Data))
	switch {
	case line == "/help":
		return t.Send(t.Session, []byte("/who lists players, /count counts, /later waits 2 s, anything else is said to everyone"))
	case line == "/who":
		names := make([]string, 0, len(who))
		for _, n := range who {
			names = append(names, n)
		}
		slices.Sort(names)
		return t.Send(t.Session, []byte("online: "+strings.Join(names, ", ")))
	case line == "/count":
		var n int
		if err := t.Tx.Get(ctx, counterKey(player), &n); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if err := t.Tx.Put(counterKey(player), n+1); err != nil {
			return err
		}
		return t.Send(t.Session, fmt.Appendf(nil, "count: %d", n+1))
	case line == "/later":
		_, err := t.After(2*time.Second, "demo.later", []byte(t.Session))
		if err != nil {
			return err
		}
		return t.Send(t.Session, []byte("ok, in 2 s"))
	case line == "":
		return nil
	}
	return broadcast(t, who, "", player+": "+line)
}

// Later is the scheduled task of /later.
func Later(ctx context.Context, t *handlers.Task) error {
	return t.Send(string(t.Data), []byte("2 s later, as promised"))
}

func broadcast(t *handlers.Task, who map[string]string, except, text string) error {
	n := 0
	for session := range who {
		if session == except {
			continue
		}
		if n++; n > maxBroadcast {
			break
		}
		if err := t.Send(session, []byte(text)); err != nil {
			return err
		}
	}
	return nil
}
