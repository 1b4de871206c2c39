package edge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

func TestStoreAuth(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	store, err := kv.Open(t.Context(), env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	open := &edge.StoreAuth{Store: store, Register: true, MaxHashing: 1}
	closed := &edge.StoreAuth{Store: store}
	// A record that would make argon2 panic: an error instead.
	if err := store.Update(t.Context(), func(tx *kv.Tx) error {
		return tx.Put(bus.AuthKey("broken"), map[string]any{"salt": []byte("s"), "hash": []byte("h"), "t": 0, "m": 0, "p": 0})
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		auth           *edge.StoreAuth
		user, password string
		fails          bool
		want           error // the error, if it is one of edge's
	}{
		{"registers", open, "ann", "pw", false, nil},
		{"logs in", closed, "ann", "pw", false, nil},
		{"wrong password", open, "ann", "nope", true, edge.ErrBadCredentials},
		{"empty password", open, "bob", "", true, edge.ErrBadCredentials},
		{"bad name", open, "a.b", "pw", true, edge.ErrBadName},
		{"registration closed", closed, "cat", "pw", true, edge.ErrRegistrationClosed},
		{"unusable record", open, "broken", "pw", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			player, err := tc.auth.Authenticate(context.Background(), tc.user, tc.password)
			switch {
			case !tc.fails && (err != nil || player != tc.user):
				t.Fatalf("got %q, %v; want %q", player, err, tc.user)
			case tc.fails && err == nil:
				t.Fatal("logged in; want an error")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestStoreAuthMovesLegacyRecords: an account stored where Starbus kept
// accounts before (auth.user.<name>, in the game's key space) still logs
// in, and the login moves it to bus.AuthKey; the name stays taken
// meanwhile.
func TestStoreAuthMovesLegacyRecords(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	store, err := kv.Open(ctx, env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	auth := &edge.StoreAuth{Store: store, Register: true}
	if _, err := auth.Authenticate(ctx, "ann", "pw"); err != nil {
		t.Fatal(err)
	}
	// Make it a record of the older layout.
	err = store.Update(ctx, func(tx *kv.Tx) error {
		b, err := tx.GetBytes(ctx, bus.AuthKey("ann"))
		if err != nil {
			return err
		}
		return errors.Join(tx.PutBytes(bus.LegacyAuthKey("ann"), b), tx.Delete(bus.AuthKey("ann")))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, "ann", "other"); !errors.Is(err, edge.ErrBadCredentials) {
		t.Fatalf("registering a name held by a legacy record: %v, want ErrBadCredentials", err)
	}
	if _, err := auth.Authenticate(ctx, "ann", "pw"); err != nil {
		t.Fatalf("login with a legacy record: %v", err)
	}
	err = store.View(ctx, func(tx *kv.Tx) error {
		now, err := tx.Exists(ctx, bus.AuthKey("ann"))
		if err != nil {
			return err
		}
		old, err := tx.Exists(ctx, bus.LegacyAuthKey("ann"))
		if err == nil && (!now || old) {
			t.Errorf("after the login: record at AuthKey %v, at the legacy key %v", now, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
