// Package starbustest tests a game's handlers on the real Starbus engine,
// in the shape of net/http/httptest: one call starts a whole world in the
// test's process, the test plays it as clients do, and the test's cleanup
// stops it.
//
//	func TestGreeting(t *testing.T) {
//		w := starbustest.NewWorld(t, game.Handler())
//		ann := w.Login("ann")
//		ann.Expect(t.Context(), starbustest.Text("welcome, ann"))
//		ann.Send([]byte("click"))
//		ann.Expect(t.Context(), starbustest.Text("clicks: 1"))
//		if n := starbustest.Get[int](t, w, "clicks.ann"); n != 1 {
//			t.Fatalf("clicks: %d", n)
//		}
//	}
//
// Nothing is mocked and nothing runs outside the test: no docker, no
// network beyond loopback. The package examples/lobby of the Starbus
// module is a small game tested this way, to copy.
//
// # What a world starts
//
// [NewWorld] (defaults) and [Start] ([Options]) start, in order:
//
//   - an embedded NATS server with JetStream on a random loopback port,
//     its store in t.TempDir(), logging nothing and installing no signal
//     handlers, with one in-process connection ([bustest.Start]);
//   - the world's stream, provisioned as in production (R1, file storage);
//   - the world's state, a [kv.Store];
//   - a [handlers.Runtime] running the game's handler, after its Init if
//     [Options.Init] is set; its warnings and errors (a task retried too
//     often, an event dead-lettered) go to the test's log. Start returns
//     once Init has run and the runtime consumes every partition of the
//     world's events;
//   - unless [Options.NoEdge], an [edge.Server] on 127.0.0.1:0 ([World.Addr])
//     that accepts any name and password (set [Options.Edge] to configure
//     it, an Authenticator included).
//
// The returned [World] exposes each of them (Server, JS, World, Stream,
// Store, Runtime, Edge), for what the kit does not cover.
//
// # What it cleans up
//
// Cleanups of the test registered by Start and by each [World.Login] stop
// everything, last started first: the sessions' connections (without
// logging out), the edge (Shutdown, waiting for its connections), the
// runtime (waiting for the tasks in flight), the store, the connection
// and the server, whose directory the test framework then removes. Each
// waits for the goroutines it stops: none the kit started outlives the
// test. A runtime that stopped with an error fails the test.
//
// # Playing: sessions
//
// [World.Login] logs a player in and returns a [Session]. Through the edge
// (the default) a session is a real client (package edge/client), speaking
// the protocol over TCP. Without an edge, the session does what an edge
// would: it publishes its events to the world's stream (on the session's
// subject, with its headers, per-session sequence numbers and
// deduplication ids), and reads its messages from the stream, following
// its channel memberships and region moves; its id is then the player's
// name (name-2, name-3 for the same name again).
//
// [Session.Send] and [Session.SendChannel] send what a client sends;
// [Session.Logout] ends the session. [Session.Next] returns the next
// message the session receives, and [Session.Expect] the first that a
// [Match] accepts ([Text], [OnChannel], [ChannelText], [Joined], [Left],
// or a function of your own), keeping the messages it passes over, in
// order, for later calls; [ExpectJSON] decodes what it waits for.
// [Session.Drain] takes what has arrived without waiting.
//
// # Checking: state and membership
//
// [World.View] runs a function in a read-only transaction of the world's
// state; [Get] and [Lookup] read one key into a typed value;
// [World.Members] lists a channel's sessions. Reads see every commit of
// the world's tasks so far, and tasks run asynchronously: to check the
// effect of an event, wait for the message that its task sends, or wait
// for the state with [World.Eventually], which polls a condition. No test
// should sleep for a fixed time.
//
// [World.Emit] publishes an event of the game's own types, as a task's
// Emit would, for tasks a test triggers itself. The stream's own counts
// are there too: w.Stored(t, w.World.DeadLetterFilter()) is the number of
// events the runtime gave up on.
//
// # Timers
//
// Scheduled tasks ([handlers.Task.After], [handlers.Task.Every]) run on
// the real clock. [World.Fire] runs those of a type now, without waiting
// for their time, and exactly once each, as the runtime would at their
// time (a periodic one then goes on one period later); timers a test does
// not fire run at their time, so a test may also just wait for their
// effects. Fire finds the schedules committed so far: wait for the task
// that sets a timer before firing it.
//
// # Failures and time limits
//
// Every wait (a login, [Session.Next], [Session.Expect], [World.Eventually])
// lasts at most the world's Timeout ([DefaultTimeout], or
// [Options.Timeout]) and then fails the test, naming the session and
// listing what it received instead; the waits that take a context end
// with it too. Failures are reported to the test that started the world,
// so call a world's methods from that test's goroutine, and start a world
// per subtest rather than share one.
//
// # Examples
//
// An Example function has no *testing.T: [RunExample] runs a function as a
// test of its own, so that examples of a game use the kit as its tests do
// and their output is checked.
package starbustest
