package handlers_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// channelMembers reads channel's members outside a task.
func channelMembers(t testing.TB, s *kv.Store, channel string) []string {
	t.Helper()
	var out []string
	err := s.View(context.Background(), func(tx *kv.Tx) error {
		var err error
		out, err = handlers.ChannelMembers(context.Background(), tx, channel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestChannelJoinsDoNotConflict is #12's acceptance 5: 1,000 sessions
// join one channel at once, each in a task of its own (on its own ordering
// key, so that they run concurrently), and the joins do not conflict with
// each other: each writes its own member key, its session's list and a
// notice.
func TestChannelJoinsDoNotConflict(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	mux := handlers.NewMux()
	mux.HandleFunc("join", func(ctx context.Context, t *handlers.Task) error {
		ch, err := t.Channel(ctx, "all")
		if err != nil {
			return err
		}
		return ch.Join(ctx, t.Session)
	})
	init := handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		_, err := t.CreateChannel(ctx, "all", handlers.ChannelOptions{})
		return err
	})
	w := startWorker(t, env, mux, handlers.Config{Init: init})
	const n = 1000
	ctx := t.Context()
	for i := range n {
		session := "s" + strconv.Itoa(i)
		subj, _ := env.World.Event("r0", session)
		m := nats.NewMsg(subj)
		m.Header.Set(bus.HeaderType, "join")
		m.Header.Set(bus.HeaderSession, session)
		if _, err := env.JS.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-env.JS.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	natstest.Eventually(t, time.Minute, func() bool { return w.rt.Stats().Committed >= n }, "1,000 joins committed")
	st := w.rt.Stats()
	t.Logf("1,000 joins: %d conflicts, %d deadlines, %d retries, %d groups, %d batches", st.Conflicts, st.Deadlines, st.Retries, w.store.Stats().Groups, w.store.Stats().Batches)
	if st.Conflicts > n*5/100 {
		t.Errorf("%d conflicts for %d joins of one channel, want at most 5%%", st.Conflicts, n)
	}
	if got := channelMembers(t, w.store, "all"); len(got) != n {
		t.Errorf("%d members after %d joins", len(got), n)
	}
	// Every session was told, once.
	if got := env.Stored(t, env.World.SessionFilter()); got != n {
		t.Errorf("%d join notices stored, want %d", got, n)
	}
}

// TestChannelMembersMigrated: a world whose channel members were stored
// as one list (before one key per member) has them moved to member keys
// when a worker starts, and the channel works on.
func TestChannelMembersMigrated(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	store, err := kv.Open(t.Context(), env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	err = store.Update(t.Context(), func(tx *kv.Tx) error {
		if err := tx.Put(bus.ChannelKey("old"), map[string]string{"delivery": "reliable"}); err != nil {
			return err
		}
		return tx.Put(bus.ChannelMembersPrefix("old"), []string{"a1", "b2"})
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := handlers.NewMux()
	mux.HandleFunc("join", func(ctx context.Context, t *handlers.Task) error {
		ch, err := t.Channel(ctx, "old")
		if err != nil {
			return err
		}
		if in, err := ch.IsMember(ctx, "a1"); err != nil || !in {
			return handlers.Permanent(err)
		}
		return ch.Join(ctx, t.Session)
	})
	w := startWorker(t, env, mux, handlers.Config{})
	publishAs(t, env, "c3", "join")
	natstest.Eventually(t, 30*time.Second, func() bool { return w.rt.Stats().Committed >= 1 }, "the join committed")
	if st := w.rt.Stats(); st.DeadLetters != 0 {
		t.Fatalf("the migrated member a1 is not a member: %+v", st)
	}
	if got, want := channelMembers(t, store, "old"), []string{"a1", "b2", "c3"}; !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if m, err := env.Stream.GetLastMsgForSubject(t.Context(), mustKey(t, env, bus.ChannelMembersPrefix("old"))); err != nil || !bus.IsDelete(m.Header) {
		t.Fatalf("the old list is still there: %v", err)
	}
}

func mustKey(t testing.TB, env *natstest.Env, key string) string {
	t.Helper()
	subj, err := env.World.Key(key)
	if err != nil {
		t.Fatal(err)
	}
	return subj
}

// publishAs publishes an event of typ from session.
func publishAs(t testing.TB, env *natstest.Env, session, typ string) {
	t.Helper()
	subj, _ := env.World.Event("r0", session)
	m := nats.NewMsg(subj)
	m.Header.Set(bus.HeaderType, typ)
	m.Header.Set(bus.HeaderSession, session)
	if _, err := env.JS.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}
