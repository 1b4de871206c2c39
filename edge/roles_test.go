package edge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/edge"
	"github.com/starbus/starbus/edge/client"
	"github.com/starbus/starbus/handlers"
	"github.com/starbus/starbus/kv"
)

// connectAs opens an in-process connection to srv as user, with its role's
// inbox prefix, recording the server's asynchronous errors.
func connectAs(t testing.TB, srv *bus.Server, user string, role bus.Role, errs chan<- error) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect(nats.UserInfo(user, user+"-pw"), nats.CustomInboxPrefix(role.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestRoles is #12's acceptance 7 (roles): a world runs with its edge and
// its worker connected as users of their own roles, a client plays through
// it (login, a message round trip, a channel), and the edge's credentials
// can neither write the world's state, nor forge what the world sends, nor
// read another role's replies, nor reconfigure or purge the stream.
func TestRoles(t *testing.T) {
	w, err := bus.NewWorld("roles")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: t.TempDir(), Port: -1, Users: []bus.User{
		{Name: "admin", Password: "admin-pw", Role: bus.RoleAdmin},
		{Name: "worker", Password: "worker-pw", Role: bus.RoleWorker, World: w},
		{Name: "edge", Password: "edge-pw", Role: bus.RoleEdge, World: w},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// Nobody gets in without credentials.
	if nc, err := nats.Connect(srv.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}

	// The worker provisions and runs the game; the edge only looks up.
	werrs, eerrs := make(chan error, 16), make(chan error, 16)
	wjs, _ := jetstream.New(connectAs(t, srv, "worker", bus.RoleWorker, werrs))
	if _, err := bus.Provision(ctx, wjs, w, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	wstore, err := kv.Open(ctx, wjs, w, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := game()
	open := func(ctx context.Context, t *handlers.Task, name string, d handlers.Delivery) (*handlers.Channel, error) {
		ch, err := t.Channel(ctx, name)
		if errors.Is(err, handlers.ErrNoChannel) {
			ch, err = t.CreateChannel(ctx, name, handlers.ChannelOptions{Delivery: d})
		}
		return ch, err
	}
	mux.HandleFunc("join", func(ctx context.Context, t *handlers.Task) error {
		room, err := open(ctx, t, "room", handlers.Reliable)
		if err != nil {
			return err
		}
		live, err := open(ctx, t, "live", handlers.BestEffort)
		if err != nil {
			return err
		}
		if err := errors.Join(room.Join(ctx, t.Session), live.Join(ctx, t.Session)); err != nil {
			return err
		}
		return room.Send([]byte("hello room"))
	})
	mux.HandleFunc("live", func(ctx context.Context, t *handlers.Task) error {
		live, err := t.Channel(ctx, "live")
		if err != nil {
			return err
		}
		return live.Send([]byte("hello live"))
	})
	near := handlers.Area{Name: "near", Cell: 8, Radius: 8, Delivery: handlers.BestEffort}
	mux.HandleFunc("look", func(ctx context.Context, t *handlers.Task) error {
		return t.SetInterest(ctx, near, t.Session, 3, 4)
	})
	mux.HandleFunc("near", func(ctx context.Context, t *handlers.Task) error {
		return t.PublishAt(near, 5, 6, []byte("hello near"))
	})
	rt, err := handlers.New(handlers.Config{Store: wstore, JS: wjs, Handler: routeJoin(mux), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stopRT := context.WithCancel(context.Background())
	rtDone := make(chan error, 1)
	go func() { rtDone <- rt.Run(rctx) }()
	t.Cleanup(func() { stopRT(); <-rtDone; wstore.Close() })

	enc := connectAs(t, srv, "edge", bus.RoleEdge, eerrs)
	ejs, _ := jetstream.New(enc)
	if _, err := bus.Lookup(ctx, ejs, w); err != nil {
		t.Fatal(err)
	}
	estore, err := kv.Open(ctx, ejs, w, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { estore.Close() })
	e := &edge.Server{JS: ejs, World: w, Store: estore, Auth: &edge.StoreAuth{Store: estore, Register: true}, Logger: testLogger(t)}
	addr := serve(t, e)

	// A player plays: login (registration), a message, a channel.
	cctx, c := dialClient(t, addr, "ann")
	if m := nextMessage(cctx, t, c); string(m.Payload) != "welcome ann" {
		t.Fatalf("first message %q", m.Payload)
	}
	if err := c.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(cctx, t, c); string(m.Payload) != "echo: hi" {
		t.Fatalf("echo %q", m.Payload)
	}
	if err := c.Send([]byte("join")); err != nil {
		t.Fatal(err)
	}
	for m := nextMessage(cctx, t, c); string(m.Payload) != "hello room"; m = nextMessage(cctx, t, c) {
	}
	// A best-effort channel: the edge subscribes to its core subject.
	if err := c.Send([]byte("live")); err != nil {
		t.Fatal(err)
	}
	for m := nextMessage(cctx, t, c); string(m.Payload) != "hello live"; m = nextMessage(cctx, t, c) {
	}
	// A best-effort area: the edge subscribes to the cells its sessions
	// look at.
	if err := c.Send([]byte("look")); err != nil {
		t.Fatal(err)
	}
	for m := nextMessage(cctx, t, c); m.Kind != client.KindJoined || m.Channel != "near"; m = nextMessage(cctx, t, c) {
	}
	if err := c.Send([]byte("near")); err != nil {
		t.Fatal(err)
	}
	for m := nextMessage(cctx, t, c); string(m.Payload) != "hello near"; m = nextMessage(cctx, t, c) {
	}
	select {
	case err := <-eerrs:
		t.Fatalf("the edge was refused something it needs: %v", err)
	case err := <-werrs:
		t.Fatalf("the worker was refused something it needs: %v", err)
	default:
	}

	// What the edge's credentials may not do.
	stateSubj, _ := w.Key("gold.ann")
	sessSubj, _ := w.Session(c.Session())
	for _, tc := range []struct{ what, subject string }{
		{"write the game's state", stateSubj},
		{"forge a message to a session", sessSubj},
		{"forge an applied marker", w.Done(1)},
		{"purge the stream", "$JS.API.STREAM.PURGE." + w.Stream()},
		{"reconfigure the stream", "$JS.API.STREAM.UPDATE." + w.Stream()},
		{"delete the stream", "$JS.API.STREAM.DELETE." + w.Stream()},
		{"forward a commit to the leader", "sbe." + w.Name() + ".commit.anyone"},
	} {
		if err := enc.Publish(tc.subject, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := refused(eerrs, tc.subject); err != nil {
			t.Errorf("the edge may %s: %v", tc.what, err)
		}
	}
	for _, subject := range []string{bus.RoleWorker.InboxPrefix() + ".>", w.All(), "sbe." + w.Name() + ".commit.>"} {
		if _, err := enc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		if err := refused(eerrs, subject); err != nil {
			t.Errorf("the edge may read %s: %v", subject, err)
		}
	}
	// And nothing of it was stored.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	if _, err := ejs.Publish(pctx, stateSubj, []byte("1")); err == nil {
		t.Error("the edge stored a state write")
	}
	var got int
	err = wstore.View(ctx, func(tx *kv.Tx) error { _, err := tx.Lookup(ctx, "gold.ann", &got); return err })
	if err != nil || got != 0 {
		t.Fatalf("gold.ann = %d, %v: the edge wrote state", got, err)
	}
}

// routeJoin sends the payloads "join", "live", "look" and "near" to the
// handlers of those types, the rest to h.
func routeJoin(h *handlers.Mux) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, t *handlers.Task) error {
		if d := string(t.Data); t.Type == bus.EventMessage && (d == "join" || d == "live" || d == "look" || d == "near") {
			t.Type = d
		}
		return h.ServeTask(ctx, t)
	})
}

// refused waits for the server's permissions violation on subject.
func refused(errs <-chan error, subject string) error {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
				return nil
			}
		case <-timeout:
			return errors.New("no permissions violation")
		}
	}
}
