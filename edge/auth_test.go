package edge_test

import (
	"context"
	"errors"
	"testing"

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
		return tx.Put("auth.user.broken", map[string]any{"salt": []byte("s"), "hash": []byte("h"), "t": 0, "m": 0, "p": 0})
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
