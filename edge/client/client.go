// Package client is a Go client for the Starbus edge protocol
// (PROTOCOL.md): log in, send messages, receive the session's messages,
// reconnect with the session's token without losing any, log out.
//
// [Connect] takes a [Config]: the edges' addresses (host:port over TCP,
// TLS over TCP with a TLS configuration, or ws:// and wss:// URLs for
// WebSocket, such as starbus dev's ws://127.0.0.1:8080/ws), the player,
// and whether to reconnect by itself. [Dial] and [DialWebSocket], and a
// [Dialer]'s, connect to one edge with manual reconnection. Either way
// the result is the same [Client].
//
// # Protocol versions and sends
//
// The client speaks protocol version 2 and falls back to version 1 with
// an edge that speaks only that. At version 2 every send is numbered and
// kept until the edge acknowledges it stored (at most
// Config.MaxUnacked; Send waits while that many are unacknowledged):
// after a lost connection, the reconnect's answer says which are stored
// and the client sends the others again, in order, so that each is
// handled once, in the order sent. A Send while the connection is down is
// kept and sent once it is back. At version 1 a send on a connection that
// is lost may or may not have been handled, and Send fails with ErrClosed
// while the connection is down.
//
// # Reconnection
//
// With Config.AutoReconnect a lost connection is resumed by the client:
// it tries the addresses in turn, starting with the one it was on,
// waiting between attempts with jittered exponential backoff
// (Config.MinBackoff, doubling up to Config.MaxBackoff), until it resumes
// the session or Config.Grace (the edge's reconnect grace, 30 s by
// default) has passed since the connection was lost. It reports on
// [Client.Events]: [Reconnecting] when the connection is lost, [Resumed]
// when the session runs again (the same session, its missed messages
// replayed on Messages, none twice), [Lost] when it gave up (the session
// is over; [Client.Closed] is closed). Without it, call
// [Client.Reconnect] once [Client.Done] is closed.
//
// # Goroutines
//
// A Client is safe for concurrent use. It owns one reader goroutine per
// connection, stopped by Close, Logout or a lost connection, and with
// Config.AutoReconnect one supervisor goroutine that reconnects, stopped
// by Close, Logout or giving up. Close and Logout wait for them.
//
// # Locks
//
// wmu (the writing of frames, held across a write so that numbered sends
// go out in order) is taken before mu (the client's state), never the
// reverse; the reader takes mu only, so that a write blocked by the edge's
// flow control never stops the reading.
package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/starbus/starbus/edge/wire"
)

// Kind tells what a [Message] is.
type Kind uint8

// Kinds of message.
const (
	// KindMessage is a message to the session, or, with Channel set, to a
	// channel the session belongs to.
	KindMessage Kind = iota
	// KindJoined tells that the session joined Channel.
	KindJoined
	// KindLeft tells that the session left Channel.
	KindLeft
)

// Message is something the world sent this client: a message, or a
// channel membership notice, in the order the edge sent them.
type Message struct {
	Kind    Kind
	Seq     uint64 // stream sequence; increases for the session; 0 for a best-effort channel message
	Channel string // the channel, "" for a message to the session
	Payload []byte
}

// EventKind tells what an [Event] reports.
type EventKind uint8

// Kinds of event.
const (
	// Reconnecting: the connection was lost (Err says why, if known); the
	// client is reconnecting.
	Reconnecting EventKind = iota + 1
	// Resumed: the session runs again, on the edge at Addr, after Attempt
	// attempts.
	Resumed
	// Lost: the client gave up (Err says why): the session is over, and so
	// is the client.
	Lost
)

func (k EventKind) String() string {
	switch k {
	case Reconnecting:
		return "reconnecting"
	case Resumed:
		return "resumed"
	case Lost:
		return "lost"
	}
	return fmt.Sprintf("event-%d", uint8(k))
}

// Event is a change of the client's connection, with Config.AutoReconnect.
type Event struct {
	Kind    EventKind
	Addr    string // Resumed: the edge
	Attempt int    // Resumed: how many attempts it took
	Err     error
}

// Errors.
var (
	// ErrClosed reports use of a client whose connection is gone (at
	// version 1, or after Close or Logout); Reconnect restores a connection
	// of a client that was not closed for good.
	ErrClosed = errors.New("client: connection closed")
	// ErrTakenOver reports a session resumed by another connection (with
	// its token): this client is over.
	ErrTakenOver = errors.New("client: session taken over by another connection")
	// ErrGraceExpired reports a session that could not be resumed within
	// Config.Grace.
	ErrGraceExpired = errors.New("client: reconnect grace expired")
)

// Config configures [Connect].
type Config struct {
	// Addrs are the edges, tried in order: host:port for TCP (TLS over TCP
	// with TLSConfig), or ws:// and wss:// URLs for WebSocket. Required.
	Addrs []string
	// Name and Password log the player in.
	Name, Password string
	// TLSConfig, if set, makes TCP addresses use TLS, and is the TLS
	// configuration of wss:// URLs.
	TLSConfig *tls.Config
	// Header is added to a WebSocket handshake's request (an Origin, a
	// cookie).
	Header http.Header
	// AutoReconnect makes the client resume a lost connection by itself
	// (see the package's documentation).
	AutoReconnect bool
	// Grace is how long after losing its connection the client keeps
	// trying to resume the session: the edge's reconnect grace, which the
	// client cannot learn (default 30s, the edge's default).
	Grace time.Duration
	// MinBackoff and MaxBackoff bound the waits between reconnection
	// attempts: the first is about MinBackoff (default 50ms), each one
	// doubles, up to MaxBackoff (default 2s); each is drawn at random
	// between half of that and all of it.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds one attempt to connect and log in or resume
	// (default 10s).
	DialTimeout time.Duration
	// MaxUnacked bounds the sends kept for the edge's acknowledgement at
	// version 2 (default 1024): Send waits while that many are kept.
	MaxUnacked int
	// Version is the newest protocol version to speak (default
	// wire.ProtocolVersion); the client speaks version 1 with an edge that
	// answers bad-version.
	Version byte
}

func (cfg *Config) setDefaults() error {
	if len(cfg.Addrs) == 0 {
		return errors.New("client: Config.Addrs is empty")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 50 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(2*time.Second, cfg.MinBackoff)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.MaxUnacked <= 0 {
		cfg.MaxUnacked = 1024
	}
	if cfg.Version == 0 || cfg.Version > wire.ProtocolVersion {
		cfg.Version = wire.ProtocolVersion
	}
	return nil
}

// Client is a logged-in session.
type Client struct {
	cfg   Config
	dials []func(ctx context.Context) (link, error) // one per address

	// connMu serialises connecting: a manual Reconnect and the supervisor.
	connMu sync.Mutex
	// wmu orders the writing of frames (see Locks).
	wmu sync.Mutex

	mu       sync.Mutex
	l        link // nil while disconnected
	gen      int  // counts connections
	addr     int  // index of the address of the last connection
	version  byte
	session  string
	token    string
	lastSeq  uint64
	maxFrame int
	ob       *outbox       // version 2
	room     chan struct{} // closed when the outbox has room again
	done     chan struct{} // closed when the current reader ends
	stop     chan struct{} // closed to stop the current reader
	stopOnce *sync.Once
	loggedIn chan struct{} // closed when LogoutOK arrives
	lastErr  error         // the last error frame that closed a connection, or the reader's error
	takenOv  bool          // the edge said the session was taken over
	closing  bool          // Close or Logout: no reconnecting
	over     chan struct{} // closed when the client is over for good
	overErr  error

	// ctx ends when the client is over: it interrupts a reconnection.
	ctx    context.Context
	cancel context.CancelFunc

	super sync.WaitGroup // the supervisor

	msgs   chan Message
	errs   chan *wire.ProtocolError
	events chan Event
}

// Dial connects to the edge at addr (host:port) over TCP and logs in as
// name. It is a zero Dialer's Dial.
func Dial(ctx context.Context, addr, name, password string) (*Client, error) {
	return (&Dialer{}).Dial(ctx, addr, name, password)
}

// DialWebSocket connects to the edge's WebSocket at url (ws:// or wss://)
// and logs in as name. It is a zero Dialer's DialWebSocket.
func DialWebSocket(ctx context.Context, url, name, password string) (*Client, error) {
	return (&Dialer{}).DialWebSocket(ctx, url, name, password)
}

// Dialer holds the options of a connection to an edge. Its zero value
// dials plain TCP, and WebSocket with the system's roots for wss.
type Dialer struct {
	// TLSConfig, if set, makes Dial use TLS over TCP, and is the TLS
	// configuration of DialWebSocket's wss:// URLs.
	TLSConfig *tls.Config
	// Header is added to a WebSocket handshake's request (an Origin, a
	// cookie). Dial does not use it.
	Header http.Header
}

// Dial connects to the edge at addr (host:port) over TCP, or TLS over TCP
// with d.TLSConfig, and logs in as name. Reconnect dials the same way.
func (d *Dialer) Dial(ctx context.Context, addr, name, password string) (*Client, error) {
	return Connect(ctx, Config{Addrs: []string{addr}, Name: name, Password: password, TLSConfig: d.TLSConfig})
}

// DialWebSocket connects to the edge's WebSocket at url (ws:// or wss://),
// offering the subprotocol [wire.WebSocketSubprotocol], and logs in as
// name. Reconnect dials the same way.
func (d *Dialer) DialWebSocket(ctx context.Context, url, name, password string) (*Client, error) {
	if !isWebSocket(url) {
		return nil, fmt.Errorf("client: %q is not a ws:// or wss:// URL", url)
	}
	return Connect(ctx, Config{Addrs: []string{url}, Name: name, Password: password, TLSConfig: d.TLSConfig, Header: d.Header})
}

// Connect logs in to the first edge of cfg.Addrs that lets it, trying them
// in order, within ctx.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:    cfg,
		msgs:   make(chan Message, 1024),
		errs:   make(chan *wire.ProtocolError, 64),
		events: make(chan Event, 64),
		over:   make(chan struct{}),
		done:   closedChan(),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for _, a := range cfg.Addrs {
		c.dials = append(c.dials, dialer(a, cfg.TLSConfig, cfg.Header))
	}
	var err error
	for i := range c.dials {
		if err = c.login(ctx, i); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, err
		}
	}
	if err != nil {
		c.cancel()
		return nil, err
	}
	if cfg.AutoReconnect {
		c.super.Go(c.supervise)
	}
	return c, nil
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func isWebSocket(addr string) bool {
	return strings.HasPrefix(addr, "ws://") || strings.HasPrefix(addr, "wss://")
}

// dialer returns the function that opens a connection to addr.
func dialer(addr string, tc *tls.Config, header http.Header) func(ctx context.Context) (link, error) {
	if isWebSocket(addr) {
		opts := &websocket.DialOptions{Subprotocols: []string{wire.WebSocketSubprotocol}, HTTPHeader: header.Clone()}
		if tc != nil {
			// A transport of its own, for its TLS configuration; HTTP/1.1
			// only, which the WebSocket handshake needs.
			opts.HTTPClient = &http.Client{Transport: &http.Transport{
				Proxy:             http.ProxyFromEnvironment,
				TLSClientConfig:   tc.Clone(),
				ForceAttemptHTTP2: false,
			}}
		}
		return func(ctx context.Context) (link, error) {
			ws, _, err := websocket.Dial(ctx, addr, opts)
			if err != nil {
				return nil, err
			}
			ws.SetReadLimit(maxFrame)
			return &wsLink{ws: ws}, nil
		}
	}
	tc = tc.Clone()
	return func(ctx context.Context) (link, error) {
		var nc net.Conn
		var err error
		if tc != nil {
			nc, err = (&tls.Dialer{Config: tc}).DialContext(ctx, "tcp", addr)
		} else {
			nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
		if err != nil {
			return nil, err
		}
		return &streamLink{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}, nil
	}
}

// maxFrame bounds the frames the client reads from the edge.
const maxFrame = 16 << 20

// Session returns the session id.
func (c *Client) Session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// Version returns the protocol version the session runs at.
func (c *Client) Version() byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// Unacked returns the number of sends kept until the edge acknowledges
// them (version 2).
func (c *Client) Unacked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ob == nil {
		return 0
	}
	return c.ob.unacked()
}

// Messages delivers what the world sends, in order: messages and channel
// membership notices. Read it: a client that does not is disconnected by
// the edge once its queue there fills.
func (c *Client) Messages() <-chan Message { return c.msgs }

// Errors delivers the error frames the edge sends (rate limited, and so
// on). It drops errors nobody reads.
func (c *Client) Errors() <-chan *wire.ProtocolError { return c.errs }

// Events delivers the changes of the connection with
// Config.AutoReconnect: Reconnecting, Resumed, Lost. It drops events
// nobody reads (it holds 64).
func (c *Client) Events() <-chan Event { return c.events }

// Done is closed when the current connection ends.
func (c *Client) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// Closed is closed when the client is over for good: after Logout, after
// Close with Config.AutoReconnect, or when it gave up reconnecting. Err
// then says why.
func (c *Client) Closed() <-chan struct{} { return c.over }

// Err returns why the client is over (nil after Close or Logout), once
// Closed is closed.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.overErr
}

// Send sends one message to the world, where it becomes an event for the
// game's handler. At version 2 it is numbered, kept until acknowledged,
// and sent again after a reconnect if need be; it waits while
// Config.MaxUnacked sends are unacknowledged.
func (c *Client) Send(payload []byte) error {
	return c.send(nil, payload)
}

// SendChannel sends one message to a channel the session belongs to. The
// game decides whether it is forwarded to the channel's members. It is
// numbered like Send.
func (c *Client) SendChannel(channel string, payload []byte) error {
	return c.send(&channel, payload)
}

func (c *Client) send(channel *string, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.ob == nil { // version 1
		l, done, limit := c.l, c.done, c.maxFrame
		c.mu.Unlock()
		var f wire.Frame
		if channel != nil {
			f = wire.Encode(wire.ChannelSend{Channel: *channel, Payload: payload})
		} else {
			f = wire.Encode(wire.Send{Payload: payload})
		}
		return writeChecked(l, done, limit, f)
	}
	// Version 2: the frame is SEQ_SEND or SEQ_CHANNEL_SEND, 8 or more bytes
	// longer.
	size := 1 + 8 + len(payload)
	if channel != nil {
		size += 2 + len(*channel)
	}
	if size > c.maxFrame {
		c.mu.Unlock()
		return fmt.Errorf("client: frame of %d bytes over the edge's limit of %d", size, c.maxFrame)
	}
	for c.ob.full() {
		if c.closing {
			c.mu.Unlock()
			return ErrClosed
		}
		room := c.room
		c.mu.Unlock()
		c.wmu.Unlock()
		select {
		case <-room:
		case <-c.over:
		}
		c.wmu.Lock()
		c.mu.Lock()
	}
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	c.ob.add(channel, payload)
	var out []wire.Frame
	l := c.l
	if l != nil {
		out = c.ob.take()
	}
	c.mu.Unlock()
	for _, f := range out {
		if l.writeFrame(f) != nil {
			// The reader ends too; the send is kept for the reconnect.
			break
		}
	}
	return nil
}

// writeChecked writes f on l unless its reader has ended (done).
func writeChecked(l link, done chan struct{}, limit int, f wire.Frame) error {
	select {
	case <-done:
		return ErrClosed
	default:
	}
	if l == nil {
		return ErrClosed
	}
	if 1+len(f.Body) > limit {
		return fmt.Errorf("client: frame of %d bytes over the edge's limit of %d", 1+len(f.Body), limit)
	}
	return l.writeFrame(f)
}

// Reconnect opens a new connection and resumes the session with its token.
// Messages sent to the session meanwhile arrive on Messages, none twice;
// at version 2 the sends the edge has not stored are sent again. It tries
// the addresses in turn, once each, starting with the last one used.
func (c *Client) Reconnect(ctx context.Context) error {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.drop()
	c.mu.Lock()
	closing, start := c.closing, c.addr
	c.mu.Unlock()
	if closing {
		return ErrClosed
	}
	var err error
	for k := range c.dials {
		if err = c.resume(ctx, (start+k)%len(c.dials)); err == nil || fatal(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// Logout ends the session; the game's disconnect handler runs for it.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	loggedOut, l, done := c.loggedIn, c.l, c.done
	c.closing = true
	c.mu.Unlock()
	c.wmu.Lock()
	err := writeChecked(l, done, maxFrame, wire.Encode(wire.Logout{}))
	c.wmu.Unlock()
	if err == nil {
		select {
		case <-loggedOut:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	c.shut(nil)
	return err
}

// Close drops the connection without logging out: the session waits for a
// reconnect for the edge's grace period. With Config.AutoReconnect the
// client is then over (Closed); otherwise Reconnect resumes it.
func (c *Client) Close() error {
	if c.cfg.AutoReconnect {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.shut(nil)
		return nil
	}
	return c.drop()
}

// Drop drops the current connection without logging out, as a network
// failure would: with Config.AutoReconnect the client then reconnects by
// itself; otherwise Reconnect resumes the session.
func (c *Client) Drop() error { return c.drop() }

// shut ends the client for good: no more connection, no more reconnecting.
func (c *Client) shut(why error) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.finish(why) // interrupts a reconnection
	c.super.Wait()
	c.drop()
}

// finish closes over, once, with why.
func (c *Client) finish(why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.over:
	default:
		c.overErr = why
		close(c.over)
		c.cancel()
	}
}

// drop closes the current connection and waits for its reader.
func (c *Client) drop() error {
	c.mu.Lock()
	l, done, stop, once := c.l, c.done, c.stop, c.stopOnce
	c.mu.Unlock()
	if l == nil {
		<-done
		return nil
	}
	once.Do(func() { close(stop) })
	err := l.close()
	<-done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// login logs in on the edge of address i, at the newest version, or at
// version 1 if the edge answers bad-version.
func (c *Client) login(ctx context.Context, i int) error {
	v := c.cfg.Version
	for {
		ok, l, err := c.handshake(ctx, i, wire.Encode(wire.Login{Version: v, Name: c.cfg.Name, Password: c.cfg.Password}))
		var pe *wire.ProtocolError
		if errors.As(err, &pe) && pe.Code == wire.CodeBadVersion && v > wire.Version1 {
			v = wire.Version1
			continue
		}
		if err != nil {
			return err
		}
		return c.attach(ok, l, i, false)
	}
}

// resume resumes the session on the edge of address i.
func (c *Client) resume(ctx context.Context, i int) error {
	c.mu.Lock()
	m := wire.Reconnect{Version: c.version, Token: c.token, LastSeq: c.lastSeq}
	if c.ob != nil {
		m.Acked = c.ob.lastAcked()
	}
	c.mu.Unlock()
	ok, l, err := c.handshake(ctx, i, wire.Encode(m))
	if err != nil {
		return err
	}
	return c.attach(ok, l, i, true)
}

// handshake dials address i, sends hello (a Login or Reconnect frame) and
// waits for the answer, within ctx and Config.DialTimeout.
func (c *Client) handshake(ctx context.Context, i int, hello wire.Frame) (wire.LoginOK, link, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	l, err := c.dials[i](ctx)
	if err != nil {
		return wire.LoginOK{}, nil, err
	}
	// ctx bounds the login: its end interrupts any read or write.
	stop := context.AfterFunc(ctx, l.interrupt)
	defer stop()
	fail := func(err error) (wire.LoginOK, link, error) {
		l.close()
		if ctx.Err() != nil {
			return wire.LoginOK{}, nil, ctx.Err()
		}
		return wire.LoginOK{}, nil, err
	}
	if err := l.writeFrame(hello); err != nil {
		return fail(err)
	}
	for {
		f, err := l.readFrame()
		if err != nil {
			return fail(fmt.Errorf("client: login: %w", err))
		}
		v, err := wire.Decode(f)
		if err != nil {
			return fail(fmt.Errorf("client: login: %w", err))
		}
		switch v := v.(type) {
		case wire.LoginOK:
			if !stop() {
				return fail(ctx.Err())
			}
			l.resume()
			return v, l, nil
		case wire.LoginFailed:
			return fail(&wire.ProtocolError{Code: v.Code, Reason: v.Reason})
		case wire.ErrorInfo:
			return fail(&wire.ProtocolError{Code: v.Code, Reason: v.Reason})
		}
	}
}

// attach makes l, just logged in (or resumed) with ok on address i, the
// client's connection: it starts its reader and, at version 2, writes the
// sends the edge has not stored.
func (c *Client) attach(ok wire.LoginOK, l link, i int, resumed bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.closing { // Close or Logout meanwhile
		c.mu.Unlock()
		l.close()
		return ErrClosed
	}
	var out []wire.Frame
	if ok.Version >= wire.Version2 {
		if !resumed {
			c.ob = newOutbox(c.cfg.MaxUnacked)
			c.room = make(chan struct{})
		}
		if c.ob == nil { // resumed at version 2 a session that ran at 1
			c.mu.Unlock()
			l.close()
			return fmt.Errorf("client: the edge resumed the session at version %d", ok.Version)
		}
		if err := c.ob.resume(ok.LastSend); err != nil {
			c.mu.Unlock()
			l.close()
			return err
		}
		c.freed()
		out = c.ob.take()
	}
	c.l, c.gen, c.addr = l, c.gen+1, i
	c.version = ok.Version
	c.session, c.token, c.maxFrame = ok.Session, ok.Token, int(ok.MaxFrame)
	c.done, c.loggedIn = make(chan struct{}), make(chan struct{})
	c.stop, c.stopOnce = make(chan struct{}), new(sync.Once)
	c.lastErr, c.takenOv = nil, false
	done, stop, loggedIn := c.done, c.stop, c.loggedIn
	c.mu.Unlock()
	go c.read(l, done, stop, loggedIn)
	for _, f := range out {
		if l.writeFrame(f) != nil {
			break // the reader ends too: the sends are kept
		}
	}
	return nil
}

// freed wakes the sends waiting for room in the outbox. c.mu is held.
func (c *Client) freed() {
	if !c.ob.full() {
		close(c.room)
		c.room = make(chan struct{})
	}
}

// supervise reconnects each lost connection, until the client is closed
// or gives up.
func (c *Client) supervise() {
	for {
		c.mu.Lock()
		done, gen := c.done, c.gen
		c.mu.Unlock()
		select {
		case <-done:
		case <-c.over:
			return
		}
		c.connMu.Lock()
		c.mu.Lock()
		closing, replaced, why, takenOver := c.closing, c.gen != gen, c.lastErr, c.takenOv
		c.mu.Unlock()
		if closing {
			c.connMu.Unlock()
			return
		}
		if replaced { // a manual Reconnect came first
			c.connMu.Unlock()
			continue
		}
		if takenOver {
			c.connMu.Unlock()
			c.lost(ErrTakenOver)
			return
		}
		c.emit(Event{Kind: Reconnecting, Err: why})
		err := c.reconnect(time.Now().Add(c.cfg.Grace))
		c.connMu.Unlock()
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return
			}
			c.lost(err)
			return
		}
	}
}

// lost ends the client after it gave up.
func (c *Client) lost(why error) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.emit(Event{Kind: Lost, Err: why})
	c.drop()
	c.finish(why)
}

// reconnect tries the addresses in turn, from the last one used, with
// backoff between attempts, until the session is resumed, the deadline,
// an answer that no attempt can change, or Close.
func (c *Client) reconnect(deadline time.Time) error {
	ctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	c.mu.Lock()
	start := c.addr
	c.mu.Unlock()
	var last error
	for attempt := 1; ; attempt++ {
		i := (start + attempt - 1) % len(c.dials)
		err := c.resume(ctx, i)
		if err == nil {
			c.emit(Event{Kind: Resumed, Addr: c.cfg.Addrs[i], Attempt: attempt})
			return nil
		}
		if fatal(err) {
			return err
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) || last == nil {
			last = err
		}
		wait := backoff(attempt, c.cfg.MinBackoff, c.cfg.MaxBackoff, rand.Int64N)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if c.ctx.Err() != nil {
				return ErrClosed
			}
			return fmt.Errorf("%w after %d attempts: %w", ErrGraceExpired, attempt, last)
		}
	}
}

// fatal reports an answer to a RECONNECT that no other attempt changes:
// the session is over, or the client and the edges disagree.
func fatal(err error) bool {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		switch pe.Code {
		case wire.CodeBadToken, wire.CodeBadVersion, wire.CodeBadLastSeq:
			return true
		}
	}
	return errors.Is(err, ErrClosed)
}

// backoff is the wait before attempt+1: about min, doubling with each
// attempt up to max, drawn at random in [d/2, d] (rnd(n) is in [0, n)).
func backoff(attempt int, min, max time.Duration, rnd func(int64) int64) time.Duration {
	d := max
	if attempt < 32 && min<<(attempt-1) < max {
		d = min << (attempt - 1)
	}
	half := d / 2
	return half + time.Duration(rnd(int64(d-half)+1))
}

// emit reports e on Events, unless nobody reads it.
func (c *Client) emit(e Event) {
	select {
	case c.events <- e:
	default:
	}
}

func (c *Client) read(l link, done, stop, loggedIn chan struct{}) {
	defer close(done)
	defer l.close()
	defer func() {
		c.mu.Lock()
		if c.l == l {
			c.l = nil
		}
		c.mu.Unlock()
	}()
	for {
		f, err := l.readFrame()
		if err != nil {
			c.mu.Lock()
			if c.lastErr == nil {
				c.lastErr = err
			}
			c.mu.Unlock()
			return
		}
		v, err := wire.Decode(f)
		if err != nil {
			continue
		}
		switch v := v.(type) {
		case wire.Message:
			if !c.deliver(Message{Seq: v.Seq, Payload: v.Payload}, stop) {
				return
			}
		case wire.ChannelMessage:
			if !c.deliver(Message{Seq: v.Seq, Channel: v.Channel, Payload: v.Payload}, stop) {
				return
			}
		case wire.ChannelJoin:
			if !c.deliver(Message{Kind: KindJoined, Seq: v.Seq, Channel: v.Channel}, stop) {
				return
			}
		case wire.ChannelLeave:
			if !c.deliver(Message{Kind: KindLeft, Seq: v.Seq, Channel: v.Channel}, stop) {
				return
			}
		case wire.Ack:
			c.mu.Lock()
			err := errors.New("client: ACK at version 1")
			if c.ob != nil {
				if err = c.ob.ack(v.Seq); err == nil {
					c.freed()
				}
			}
			c.mu.Unlock()
			if err != nil { // the edge and the client disagree: start again
				c.mu.Lock()
				c.lastErr = err
				c.mu.Unlock()
				return
			}
		case wire.ErrorInfo:
			pe := &wire.ProtocolError{Code: v.Code, Reason: v.Reason}
			c.mu.Lock()
			c.lastErr = pe
			if v.Code == wire.CodeAlreadyLoggedIn {
				// On a logged-in connection, only a takeover says so.
				c.takenOv = true
			}
			c.mu.Unlock()
			select {
			case c.errs <- pe:
			default:
			}
		case wire.LogoutOK:
			close(loggedIn)
			return
		}
	}
}

// deliver hands m to the application. Only then does it count as
// received: a reconnect resumes after the last message delivered.
func (c *Client) deliver(m Message, stop chan struct{}) bool {
	select {
	case c.msgs <- m: // the common case, without selectgo's locking of both channels
	default:
		select {
		case c.msgs <- m:
		case <-stop:
			return false
		}
	}
	if m.Seq != 0 { // 0: a best-effort channel message, never replayed
		c.mu.Lock()
		c.lastSeq = max(c.lastSeq, m.Seq)
		c.mu.Unlock()
	}
	return true
}

// link is one connection to the edge: a byte stream (TCP, TLS) or a
// WebSocket. Reads are the reader's; writes are made under Client.wmu.
type link interface {
	readFrame() (wire.Frame, error)
	writeFrame(f wire.Frame) error
	// interrupt makes the login's reads and writes fail: its context
	// ended. resume undoes it, if it can.
	interrupt()
	resume()
	close() error
}

// streamLink is PROTOCOL.md's byte stream: frames with their length
// prefix.
type streamLink struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

func (l *streamLink) readFrame() (wire.Frame, error) { return wire.ReadFrame(l.r, maxFrame) }

func (l *streamLink) writeFrame(f wire.Frame) error {
	if _, err := l.w.Write(wire.AppendFrame(nil, f)); err != nil {
		return err
	}
	return l.w.Flush()
}

func (l *streamLink) interrupt()   { _ = l.nc.SetDeadline(time.Unix(1, 0)) }
func (l *streamLink) resume()      { _ = l.nc.SetDeadline(time.Time{}) }
func (l *streamLink) close() error { return l.nc.Close() }

// wsLink is PROTOCOL.md over WebSocket: one frame per binary message,
// opcode and body, without the length prefix.
type wsLink struct {
	ws *websocket.Conn
}

func (l *wsLink) readFrame() (wire.Frame, error) {
	for {
		typ, b, err := l.ws.Read(context.Background())
		if err != nil {
			return wire.Frame{}, err
		}
		if typ == websocket.MessageBinary && len(b) > 0 {
			return wire.Frame{Op: b[0], Body: b[1:]}, nil
		}
		// Not a frame: ignored, as frames of unknown opcodes are.
	}
}

func (l *wsLink) writeFrame(f wire.Frame) error {
	msg := make([]byte, 0, 1+len(f.Body))
	msg = append(append(msg, f.Op), f.Body...)
	return l.ws.Write(context.Background(), websocket.MessageBinary, msg)
}

// interrupt closes the connection: a WebSocket read or write cannot be
// interrupted otherwise, and a login whose context ended is over.
func (l *wsLink) interrupt() { _ = l.ws.CloseNow() }
func (l *wsLink) resume()    {}

// close drops the connection without a close handshake, as closing a TCP
// connection does: the edge keeps the session for a reconnect.
func (l *wsLink) close() error { return l.ws.CloseNow() }
