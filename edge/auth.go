package edge

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/kv"
)

// An Authenticator decides who a client is. It returns the player's
// canonical name, or an error: [ErrBadCredentials], [ErrBadName] and
// [ErrRegistrationClosed] are reported to the client with their codes;
// anything else as an internal error.
type Authenticator interface {
	Authenticate(ctx context.Context, name, password string) (player string, err error)
}

// Authentication errors.
var (
	ErrBadCredentials     = errors.New("edge: bad credentials")
	ErrBadName            = errors.New("edge: invalid name")
	ErrRegistrationClosed = errors.New("edge: registration closed")
)

// StoreAuth is the default [Authenticator]: salted argon2id password
// hashes kept in the world's state under bus.AuthKey(name)
// (starbus.auth.user.<name>).
type StoreAuth struct {
	Store *kv.Store
	// Register lets an unknown name register with the password it first
	// logs in with.
	Register bool
	// MaxHashing bounds the password hashes computed at once (default
	// 2 × GOMAXPROCS): each takes 19 MiB and a core's worth of time, so a
	// login storm waits its turn (within the edge's login timeout) instead
	// of exhausting memory.
	MaxHashing int

	semOnce sync.Once
	sem     chan struct{}
}

var _ Authenticator = (*StoreAuth)(nil)

// credential is the stored record of a player.
type credential struct {
	Salt []byte `json:"salt"`
	Hash []byte `json:"hash"`
	// argon2id parameters, stored so they can be raised later.
	Time    uint32 `json:"t"`
	Memory  uint32 `json:"m"`
	Threads uint8  `json:"p"`
}

// argon2id parameters for new credentials (RFC 9106's second recommended
// option, with 19 MiB as OWASP suggests for interactive logins).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// errBadRecord reports stored argon2id parameters that cannot be used
// (argon2 panics on them).
var errBadRecord = errors.New("edge: unusable credential record")

// hash computes a password hash, waiting for a turn among MaxHashing.
func (a *StoreAuth) hash(ctx context.Context, password string, salt []byte, t, m uint32, p uint8) ([]byte, error) {
	if t < 1 || p < 1 || m < 8*uint32(p) || m > 4<<20 {
		return nil, errBadRecord
	}
	a.semOnce.Do(func() {
		n := a.MaxHashing
		if n <= 0 {
			n = 2 * runtime.GOMAXPROCS(0)
		}
		a.sem = make(chan struct{}, n)
	})
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-a.sem }()
	return argon2.IDKey([]byte(password), salt, t, m, p, argonKeyLen), nil
}

// Authenticate checks name and password, registering the name if it is new
// and registration is open. While the server cannot answer (a cluster
// electing a stream leader), it tries again until ctx ends: a login then
// waits rather than fails.
func (a *StoreAuth) Authenticate(ctx context.Context, name, password string) (string, error) {
	wait := 50 * time.Millisecond
	for {
		player, err := a.authenticate(ctx, name, password)
		// Unavailable: nothing was decided. Unknown: a registration may
		// have landed, and the next try finds it and checks the password.
		if !errors.Is(err, kv.ErrUnavailable) && !errors.Is(err, kv.ErrCommitUnknown) {
			return player, err
		}
		t := time.NewTimer(wait/2 + mrand.N(wait/2))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", err
		}
		wait = min(2*wait, time.Second)
	}
}

func (a *StoreAuth) authenticate(ctx context.Context, name, password string) (string, error) {
	if bus.ValidName(name) != nil || len(name) > 64 {
		return "", ErrBadName
	}
	if password == "" {
		return "", ErrBadCredentials
	}
	key, legacy := bus.AuthKey(name), bus.LegacyAuthKey(name)
	var cred credential
	var moved bool // found under the legacy key
	err := a.Store.View(ctx, func(tx *kv.Tx) error {
		moved = false
		ok, err := tx.Lookup(ctx, key, &cred)
		if err != nil || ok {
			return err
		}
		if moved, err = tx.Lookup(ctx, legacy, &cred); err == nil && !moved {
			err = kv.ErrNotFound
		}
		return err
	})
	switch {
	case err == nil:
		got, err := a.hash(ctx, password, cred.Salt, cred.Time, cred.Memory, cred.Threads)
		if err != nil {
			return "", fmt.Errorf("edge: check %s: %w", key, err)
		}
		if subtle.ConstantTimeCompare(got, cred.Hash) != 1 {
			return "", ErrBadCredentials
		}
		if moved {
			// Out of the game's key space, where it used to be. A failure
			// costs nothing: the next login moves it.
			_ = a.Store.Update(ctx, func(tx *kv.Tx) error {
				var cur credential
				if ok, err := tx.Lookup(ctx, legacy, &cur); err != nil || !ok {
					return err
				}
				return errors.Join(tx.Put(key, cur), tx.Delete(legacy))
			})
		}
		return name, nil
	case !errors.Is(err, kv.ErrNotFound):
		return "", fmt.Errorf("edge: read credentials: %w", err)
	case !a.Register:
		return "", ErrRegistrationClosed
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	cred = credential{Salt: salt, Time: argonTime, Memory: argonMemory, Threads: argonThreads}
	if cred.Hash, err = a.hash(ctx, password, salt, argonTime, argonMemory, argonThreads); err != nil {
		return "", err
	}
	err = a.Store.Update(ctx, func(tx *kv.Tx) error {
		// Two first logins racing for one name: the first commit wins, the
		// other conflicts, re-runs, and finds the name taken.
		taken, err := tx.Exists(ctx, key)
		if err == nil && !taken {
			taken, err = tx.Exists(ctx, legacy)
		}
		if err != nil || taken {
			if err == nil {
				err = ErrBadCredentials
			}
			return err
		}
		return tx.Put(key, cred)
	})
	if err != nil {
		return "", err
	}
	return name, nil
}

// AuthFunc adapts a function to an [Authenticator].
type AuthFunc func(ctx context.Context, name, password string) (string, error)

// Authenticate calls f.
func (f AuthFunc) Authenticate(ctx context.Context, name, password string) (string, error) {
	return f(ctx, name, password)
}
