package bus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/starbus/starbus/bus"
)

// TestStageInMemory: an R1 file stream's batches are staged through a link
// to tmpfs, committed batches survive a restart (which replaces the link,
// so it is made again), and the tmpfs directory goes with the server.
func TestStageInMemory(t *testing.T) {
	dir := t.TempDir()
	w, err := bus.NewWorld("stage")
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "jetstream", "$G", "streams", w.Stream(), "batches")
	// start starts a server on dir, provisions w, stages it and commits a
	// batch of n messages on subject; it returns the server and the
	// stream's message count.
	start := func(cfg bus.EmbeddedConfig, n int) (*bus.Server, uint64) {
		t.Helper()
		cfg.Dir, cfg.Port = dir, -1
		srv, err := bus.StartEmbedded(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx := t.Context()
		stream, err := bus.Provision(ctx, js, w, bus.StreamConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.StageInMemory(w.Stream()); errors.Is(err, bus.ErrNoTmpfs) {
			srv.Shutdown()
			t.Skip("no tmpfs on this machine")
		} else if err != nil {
			t.Fatal(err)
		}
		var msgs []*nats.Msg
		for i := range n {
			subj, _ := w.Key("k" + string(rune('a'+i)))
			m := nats.NewMsg(subj)
			m.Data = []byte("v")
			msgs = append(msgs, m)
		}
		if _, err := jetstreamext.PublishMsgBatch(ctx, js, msgs); err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return srv, info.State.Msgs
	}

	srv, got := start(bus.EmbeddedConfig{}, 3)
	target, err := os.Readlink(link)
	if err != nil || !strings.HasPrefix(target, "/dev/shm/") {
		t.Fatalf("batches: link to %q, %v; want a link under /dev/shm", target, err)
	}
	if got != 3 {
		t.Fatalf("after a batch of 3: %d messages", got)
	}
	srv.Shutdown()
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("staging directory %s outlives its server: %v", target, err)
	}

	srv, got = start(bus.EmbeddedConfig{}, 2)
	if _, err := os.Readlink(link); err != nil {
		t.Fatalf("after a restart, batches is not a link: %v", err)
	}
	if got != 5 {
		t.Fatalf("after a restart and a batch of 2: %d messages, want 5", got)
	}
	srv.Shutdown()

	// A server that syncs every write stages on disk, fsynced.
	srv, got = start(bus.EmbeddedConfig{SyncAlways: true}, 1)
	defer srv.Shutdown()
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		t.Fatal("SyncAlways: batches staged through a link to tmpfs")
	}
	if got != 6 {
		t.Fatalf("SyncAlways: %d messages, want 6", got)
	}
}
