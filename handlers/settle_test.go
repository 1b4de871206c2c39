package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
)

// TestSettle: keys written once, under a stream of traffic that comes and
// goes, are copied forward by compaction, values unchanged; the check
// messages of their commits are purged and the partitions' records stored
// again: nothing of the early stream is left that would keep its blocks.
func TestSettle(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	mux := handlers.NewMux()
	mux.HandleFunc("set", func(ctx context.Context, t *handlers.Task) error {
		var limit int // read, not written: a check message
		if err := t.Get(ctx, "limit", &limit); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return t.Put("cold."+string(t.Data), string(t.Data))
	})
	mux.HandleFunc("tick", func(ctx context.Context, t *handlers.Task) error {
		return errors.Join(t.Put("hot", string(t.Data)), t.Send("watcher", t.Data))
	})
	setup, err := kv.Open(ctx, env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	if err := setup.Update(ctx, func(tx *kv.Tx) error { return tx.Put("limit", 10) }); err != nil {
		t.Fatal(err)
	}
	startWorker(t, env, mux, handlers.Config{CompactInterval: 100 * time.Millisecond, OutboxTTL: time.Second})

	const cold = 10
	for i := range cold {
		publish(t, env, "r", fmt.Sprint("p", i), "set", []byte(fmt.Sprint(i)))
	}
	early := map[string]uint64{}
	natstest.Eventually(t, 10*time.Second, func() bool {
		for i := range cold {
			subj, _ := env.World.Key(fmt.Sprint("cold.", i))
			m, err := env.Stream.GetLastMsgForSubject(ctx, subj)
			if err != nil {
				return false
			}
			early[subj] = m.Sequence
		}
		return true
	}, "the cold keys were not written")
	var top uint64
	for _, seq := range early {
		top = max(top, seq)
	}

	// Traffic until every cold key has moved above where it was, and no
	// check message is left below.
	settled := func() error {
		for subj, seq := range early {
			m, err := env.Stream.GetLastMsgForSubject(ctx, subj)
			if err != nil {
				return err
			}
			if m.Sequence <= top {
				return fmt.Errorf("%s still at %d (was %d)", subj, m.Sequence, seq)
			}
			key, _ := env.World.ParseKey(subj)
			if want := key[len("cold."):]; string(m.Data) != fmt.Sprintf("%q", want) {
				return fmt.Errorf("%s = %s, want %q", subj, m.Data, want)
			}
		}
		// Nothing else is left down there either (the partitions'
		// records were stored before the keys): the stream's first
		// message is above them, and the blocks below can go.
		info, err := env.Stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.FirstSeq <= top {
			return fmt.Errorf("the stream's first message is at %d, at or below %d", info.State.FirstSeq, top)
		}
		for _, m := range messages(t, env, env.World.CheckFilter()) {
			if meta, _ := m.Metadata(); meta.Sequence.Stream <= top {
				return fmt.Errorf("check %s at %d still stored", m.Subject(), meta.Sequence.Stream)
			}
		}
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; ; n++ {
		err := settled()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after %d ticks: %v", n*50, err)
		}
		var ticks []*nats.Msg
		for i := range 50 {
			subj, _ := env.World.Event("r", fmt.Sprint("t", i%4))
			m := nats.NewMsg(subj)
			m.Header.Set(bus.HeaderType, "tick")
			m.Data = []byte(fmt.Sprint(n*50 + i))
			ticks = append(ticks, m)
		}
		if err := natstest.PublishAsync(ctx, env.JS, ticks); err != nil {
			t.Fatal(err)
		}
		// Handled and purged before more come: traffic comes and goes.
		natstest.Eventually(t, 10*time.Second, func() bool {
			info, err := env.Stream.Info(ctx, jetstream.WithSubjectFilter(env.World.EventFilter()))
			return err == nil && len(info.State.Subjects) == 0
		}, "ticks not handled")
	}
}

// TestCompactionRevisions: a key's superseded revisions, which its writes
// leave stored, are purged by compaction, after a key left unwritten
// below them has been copied forward; every key keeps its latest value. A
// tombstone that has stood its TTL goes too, with the value it deleted.
func TestCompactionRevisions(t *testing.T) {
	env := natstest.Start(t, natstest.Options{})
	ctx := t.Context()
	mux := handlers.NewMux()
	mux.HandleFunc("tick", func(ctx context.Context, t *handlers.Task) error {
		return t.Put("hot", string(t.Data))
	})
	setup, err := kv.Open(ctx, env.JS, env.World, kv.Options{TombstoneTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	for _, f := range []func(tx *kv.Tx) error{
		func(tx *kv.Tx) error { return tx.Put("cold", "c") },
		func(tx *kv.Tx) error { return tx.Put("gone", "g") },
		func(tx *kv.Tx) error { return tx.Delete("gone") },
	} {
		if err := setup.Update(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	coldSubj, _ := env.World.Key("cold")
	first, err := env.Stream.GetLastMsgForSubject(ctx, coldSubj)
	if err != nil {
		t.Fatal(err)
	}
	const ticks = 100
	for i := range ticks {
		publish(t, env, "r", "p", "tick", []byte(fmt.Sprint(i)))
	}
	startWorker(t, env, mux, handlers.Config{CompactInterval: 100 * time.Millisecond})
	hotSubj, _ := env.World.Key("hot")
	natstest.Eventually(t, 10*time.Second, func() bool {
		m, err := env.Stream.GetLastMsgForSubject(ctx, hotSubj)
		return err == nil && string(m.Data) == fmt.Sprintf("%q", fmt.Sprint(ticks-1))
	}, "the ticks were not handled")
	goneSubj, _ := env.World.Key("gone")
	natstest.Eventually(t, 20*time.Second, func() bool {
		rv, err := setup.Revisions(ctx)
		return err == nil && rv.Superseded() == 0 && env.Stored(t, goneSubj) == 0
	}, "the superseded revisions and the expired tombstone were not purged")

	cold, err := env.Stream.GetLastMsgForSubject(ctx, coldSubj)
	if err != nil {
		t.Fatalf("cold: %v", err)
	}
	if cold.Sequence <= first.Sequence || string(cold.Data) != `"c"` {
		t.Errorf("cold: revision %d %s, want a copy above %d of \"c\"", cold.Sequence, cold.Data, first.Sequence)
	}
	fresh, err := kv.Open(ctx, env.JS, env.World, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	err = fresh.View(ctx, func(tx *kv.Tx) error {
		var hot, cold string
		if err := tx.Get(ctx, "hot", &hot); err != nil || hot != fmt.Sprint(ticks-1) {
			t.Errorf("hot = %q, %v; want %q", hot, err, fmt.Sprint(ticks-1))
		}
		if err := tx.Get(ctx, "cold", &cold); err != nil || cold != "c" {
			t.Errorf("cold = %q, %v; want \"c\"", cold, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
