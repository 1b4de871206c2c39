package ordertest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// Record is what the game keeps of one session.
type Record struct {
	Last uint64   `json:"last"` // the number of the last send handled
	N    int      `json:"n"`    // sends handled
	Bad  []string `json:"bad"`  // sends that did not follow the last one: "<n> after <last>"
}

// Welcome is the payload of the message a login is answered with.
const Welcome = "welcome"

// key is the state key of session's record.
func key(session string) string { return "ordertest." + session }

// Handler returns the game: a login is answered with [Welcome]; a message
// numbered n is checked against the session's record and answered with
// [Answer](n, payload), in the same transaction; a disconnect does
// nothing.
func Handler() handlers.Handler {
	mux := handlers.NewMux()
	mux.HandleFunc(bus.EventLogin, func(_ context.Context, t *handlers.Task) error {
		return t.Send(t.Session, []byte(Welcome))
	})
	mux.HandleFunc(bus.EventDisconnect, func(context.Context, *handlers.Task) error { return nil })
	mux.HandleFunc(bus.EventMessage, func(ctx context.Context, t *handlers.Task) error {
		var r Record
		if err := t.Get(ctx, key(t.Session), &r); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if t.Seq != r.Last+1 {
			r.Bad = append(r.Bad, fmt.Sprintf("%d after %d", t.Seq, r.Last))
		}
		r.Last, r.N = max(r.Last, t.Seq), r.N+1
		if err := t.Put(key(t.Session), r); err != nil {
			return err
		}
		return t.Send(t.Session, Answer(t.Seq, t.Data))
	})
	return mux
}

// Answer is the payload of the message that answers send n.
func Answer(n uint64, payload []byte) []byte {
	return fmt.Appendf(nil, "%d %s", n, payload)
}

// ParseAnswer returns the number of the send an answer answers.
func ParseAnswer(b []byte) (n uint64, payload string, ok bool) {
	num, payload, ok := strings.Cut(string(b), " ")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	return n, payload, err == nil
}

// Read returns the record of session (zero if it has sent nothing).
func Read(ctx context.Context, store *kv.Store, session string) (Record, error) {
	var r Record
	err := store.View(ctx, func(tx *kv.Tx) error {
		if err := tx.Get(ctx, key(session), &r); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return nil
	})
	return r, err
}
