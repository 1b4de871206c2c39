// Package bank is the workload of Starbus's scale and failover tests:
// transfers between accounts, one event each, sent on many sessions, each
// session numbering its events 1, 2, 3, ... (bus.HeaderSeq), as an edge
// does.
//
// Its handler applies a transfer and, in the same transaction, records on
// the session's state how many of its events have been applied and any
// event that did not directly follow the previous one. So [Check] can tell
// afterwards that no money was made or lost, that every event accepted was
// applied exactly once (a session's count equals the events accepted on
// it), and that each session's events were applied in the order sent.
//
// The loader chooses how many accounts the transfers move money between
// (at most [MaxAccounts]): few make a contended load, where concurrent
// transfers often touch the same account, many a spread one.
//
// State: bank.acct.<i> (a balance; an account never written holds
// [Initial]) and bank.sess.<session>. `starbus worker -game bank` runs it.
package bank

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

const (
	// MaxAccounts bounds the accounts a transfer may name.
	MaxAccounts = 1 << 20
	// Initial is every account's balance before its first transfer.
	Initial = 1000
	// EventTransfer is the type of a transfer event.
	EventTransfer = "bank.transfer"
)

// Transfer moves Amount from account From to account To, if From holds
// that much; otherwise it changes no balance (but still counts as applied).
type Transfer struct {
	From   int `json:"from"`
	To     int `json:"to"`
	Amount int `json:"amount"`
}

// Random returns a transfer between two distinct random accounts of the
// first accounts (2 <= accounts <= [MaxAccounts]).
func Random(accounts int) Transfer {
	from := rand.IntN(accounts)
	return Transfer{From: from, To: (from + 1 + rand.IntN(accounts-1)) % accounts, Amount: 1 + rand.IntN(100)}
}

// Session is what the handler keeps per session.
type Session struct {
	Last int      `json:"last"`          // the last sequence number applied
	N    int      `json:"n"`             // events applied
	Bad  []string `json:"bad,omitempty"` // events that did not follow the last one (the first 10)
}

func acctKey(i int) string          { return "bank.acct." + strconv.Itoa(i) }
func sessKey(session string) string { return "bank.sess." + session }

// Handler returns the game: it handles [EventTransfer] events.
func Handler() handlers.Handler {
	mux := handlers.NewMux()
	mux.HandleFunc(EventTransfer, transfer)
	return mux
}

func transfer(ctx context.Context, t *handlers.Task) error {
	var x Transfer
	if err := json.Unmarshal(t.Data, &x); err != nil || x.From == x.To || x.Amount <= 0 ||
		x.From < 0 || x.From >= MaxAccounts || x.To < 0 || x.To >= MaxAccounts {
		return handlers.Permanent(fmt.Errorf("bank: bad transfer %q", t.Data))
	}
	if t.Session == "" || t.Seq == 0 {
		return handlers.Permanent(errors.New("bank: a transfer needs a session and a sequence number"))
	}
	var st Session
	if err := t.Get(ctx, sessKey(t.Session), &st); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	if int(t.Seq) != st.Last+1 && len(st.Bad) < 10 {
		st.Bad = append(st.Bad, fmt.Sprintf("%d after %d", t.Seq, st.Last))
	}
	st.Last, st.N = int(t.Seq), st.N+1
	from, err := balance(ctx, t, x.From)
	if err != nil {
		return err
	}
	to, err := balance(ctx, t, x.To)
	if err != nil {
		return err
	}
	if from >= x.Amount {
		if err := errors.Join(t.Put(acctKey(x.From), from-x.Amount), t.Put(acctKey(x.To), to+x.Amount)); err != nil {
			return err
		}
	}
	return t.Put(sessKey(t.Session), st)
}

func balance(ctx context.Context, state lookuper, i int) (int, error) {
	n := Initial
	_, err := state.Lookup(ctx, acctKey(i), &n)
	return n, err
}

// lookuper reads state: a task, or a transaction outside one.
type lookuper interface {
	Lookup(ctx context.Context, key string, v any) (bool, error)
}

// Event returns the message of a session's seq-th transfer, as an edge
// would publish it: on the session's subject in region, numbered, with a
// deduplication id, so that publishing it again is harmless.
func Event(w bus.World, region, session string, seq int, x Transfer) (*nats.Msg, error) {
	subj, err := w.Event(region, session)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subj)
	m.Data = b
	m.Header.Set(bus.HeaderType, EventTransfer)
	m.Header.Set(bus.HeaderSession, session)
	m.Header.Set(bus.HeaderSeq, strconv.Itoa(seq))
	m.Header.Set(jetstream.MsgIDHeader, session+"-"+strconv.Itoa(seq))
	return m, nil
}

// Report is what [Check] found.
type Report struct {
	Total    int // the sum of all balances; accounts*Initial if no money was made or lost
	Applied  int // events applied, over all sessions
	Problems []string
}

// Check reads the world's state and compares it with what was accepted:
// accepted[session] is the number of events published on it and
// acknowledged by the server (1..n), their transfers between the first
// accounts accounts. Every problem found is listed.
func Check(ctx context.Context, store *kv.Store, accepted map[string]int, accounts int) (Report, error) {
	var r Report
	keys := make([]string, 0, accounts+len(accepted))
	for i := range accounts {
		keys = append(keys, acctKey(i))
	}
	for s := range accepted {
		keys = append(keys, sessKey(s))
	}
	err := store.View(ctx, func(tx *kv.Tx) error {
		r = Report{}
		if err := tx.Prefetch(ctx, keys...); err != nil {
			return err
		}
		for i := range accounts {
			n, err := balance(ctx, tx, i)
			if err != nil {
				return err
			}
			r.Total += n
		}
		for s, want := range accepted {
			var st Session
			if err := tx.Get(ctx, sessKey(s), &st); err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			r.Applied += st.N
			if st.N != want || st.Last != want || len(st.Bad) > 0 {
				r.Problems = append(r.Problems, fmt.Sprintf("session %s: applied %d, last %d, out of order %v; want %d, each once, in order", s, st.N, st.Last, st.Bad, want))
			}
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	if r.Total != accounts*Initial {
		r.Problems = append(r.Problems, fmt.Sprintf("total %d, want %d", r.Total, accounts*Initial))
	}
	return r, nil
}

// Applied returns how many events have been applied on the sessions, a
// cheaper read than [Check] for waiting.
func Applied(ctx context.Context, store *kv.Store, sessions []string) (int, error) {
	keys := make([]string, len(sessions))
	for i, s := range sessions {
		keys[i] = sessKey(s)
	}
	n := 0
	err := store.View(ctx, func(tx *kv.Tx) error {
		n = 0
		if err := tx.Prefetch(ctx, keys...); err != nil {
			return err
		}
		for _, s := range sessions {
			var st Session
			if err := tx.Get(ctx, sessKey(s), &st); err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			n += st.N
		}
		return nil
	})
	return n, err
}
