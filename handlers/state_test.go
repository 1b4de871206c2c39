package handlers_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestTaskCannotForge is #12's acceptance 1, at run time: a handler's
// writes of the platform's keys and events of the platform's types are
// refused with ErrReserved, and nothing of them is stored, while its own
// state commits.
func TestTaskCannotForge(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	refused := make(chan error, 16)
	mux := handlers.NewMux()
	mux.HandleFunc("try", func(ctx context.Context, t *handlers.Task) error {
		for _, err := range []error{
			t.Put(bus.SessionKey("someone"), "forged"),
			t.PutBytes(bus.SessionChannelsKey("someone"), []byte(`{"admins":"reliable"}`)),
			t.Delete(bus.ChannelKey("global")),
			t.Put("starbus", 1),
			t.Put("starbus.auth.user.ann", "hash"),
			t.Emit("r0", "someone", bus.EventLogin, nil),
			t.Emit("r0", "someone", bus.EventDisconnect, nil),
			t.Emit("r0", "someone", "starbus.anything", nil),
		} {
			refused <- err
		}
		return t.Put("game.starbusy", "mine") // a game key that merely starts alike
	})
	w := startWorker(t, env, mux, handlers.Config{})
	publish(t, env, "r0", "p", "try", nil)
	natstest.Eventually(t, 30*time.Second, func() bool { return w.rt.Stats().Committed >= 1 }, "the task committed")
	for range 8 {
		if err := <-refused; !errors.Is(err, handlers.ErrReserved) {
			t.Errorf("a write in the platform's space: %v, want ErrReserved", err)
		}
	}
	for _, key := range []string{bus.SessionKey("someone"), bus.SessionChannelsKey("someone"), "starbus", "starbus.auth.user.ann"} {
		if n := env.Stored(t, mustKey(t, env, key)); n != 0 {
			t.Errorf("%s: %d messages stored", key, n)
		}
	}
	if n := env.Stored(t, env.World.EventFilter()); n != 1 { // the "try" event only
		t.Errorf("%d events stored, want 1: an emitted platform event got through", n)
	}
	var v string
	if err := w.store.View(t.Context(), func(tx *kv.Tx) error { return tx.Get(t.Context(), "game.starbusy", &v) }); err != nil || v != "mine" {
		t.Errorf("the game's own key: %q, %v", v, err)
	}
}

// TestTaskSurface is #12's acceptance 1, at compile time: nothing a
// handler can reach through a Task or a Channel takes a raw NATS message
// or subject, or hands out the transaction, the store or a connection. A
// new method that does fails this test.
func TestTaskSurface(t *testing.T) {
	forbidden := func(typ reflect.Type) bool {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		p, n := typ.PkgPath(), typ.Name()
		return strings.HasPrefix(p, "github.com/nats-io/") && n != "Header" || // event headers are read-only data
			p == "github.com/starbus/starbus/kv" && (n == "Tx" || n == "Store")
	}
	for _, v := range []any{&handlers.Task{}, &handlers.Channel{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			for j := range m.Type.NumIn() {
				if forbidden(m.Type.In(j)) {
					t.Errorf("%v.%s takes a %v", typ, m.Name, m.Type.In(j))
				}
			}
			for j := range m.Type.NumOut() {
				if forbidden(m.Type.Out(j)) {
					t.Errorf("%v.%s returns a %v", typ, m.Name, m.Type.Out(j))
				}
			}
		}
		for i := range typ.Elem().NumField() {
			if f := typ.Elem().Field(i); f.IsExported() && forbidden(f.Type) {
				t.Errorf("%v has the field %s %v", typ, f.Name, f.Type)
			}
		}
	}
}
