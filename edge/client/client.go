// Package client is a Go client for the Starbus edge protocol
// (PROTOCOL.md): log in, send messages, receive the session's messages,
// reconnect with the session's token without losing any, log out.
//
// [Dial] connects over TCP, [DialWebSocket] over WebSocket (ws:// or
// wss:// URLs, such as starbus dev's ws://127.0.0.1:8080/ws); a [Dialer]
// adds TLS (over TCP, or for wss) and handshake headers. Either way the
// result is the same [Client].
//
// A Client is safe for concurrent use. It owns one reader goroutine per
// connection, stopped by Close, Logout or a lost connection.
package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
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

// ErrClosed reports use of a client whose connection is gone; Reconnect
// restores it.
var ErrClosed = errors.New("client: connection closed")

// Client is a logged-in session.
type Client struct {
	dial func(ctx context.Context) (link, error) // a new connection to the edge

	mu       sync.Mutex
	l        link
	session  string
	token    string
	lastSeq  uint64
	maxFrame int
	done     chan struct{} // closed when the current reader ends
	stop     chan struct{} // closed to stop the current reader
	stopOnce *sync.Once
	loggedIn chan struct{} // closed when LogoutOK arrives

	msgs chan Message
	errs chan *wire.ProtocolError
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
	cfg := d.TLSConfig.Clone()
	return login(ctx, name, password, func(ctx context.Context) (link, error) {
		var nc net.Conn
		var err error
		if cfg != nil {
			nc, err = (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
		} else {
			nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
		if err != nil {
			return nil, err
		}
		return &streamLink{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}, nil
	})
}

// DialWebSocket connects to the edge's WebSocket at url (ws:// or wss://),
// offering the subprotocol [wire.WebSocketSubprotocol], and logs in as
// name. Reconnect dials the same way.
func (d *Dialer) DialWebSocket(ctx context.Context, url, name, password string) (*Client, error) {
	opts := &websocket.DialOptions{Subprotocols: []string{wire.WebSocketSubprotocol}, HTTPHeader: d.Header.Clone()}
	if d.TLSConfig != nil {
		// A transport of its own, for its TLS configuration; HTTP/1.1 only,
		// which the WebSocket handshake needs.
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:             http.ProxyFromEnvironment,
			TLSClientConfig:   d.TLSConfig.Clone(),
			ForceAttemptHTTP2: false,
		}}
	}
	return login(ctx, name, password, func(ctx context.Context) (link, error) {
		ws, _, err := websocket.Dial(ctx, url, opts)
		if err != nil {
			return nil, err
		}
		ws.SetReadLimit(maxFrame)
		return &wsLink{ws: ws}, nil
	})
}

// login dials with dial and logs in.
func login(ctx context.Context, name, password string, dial func(context.Context) (link, error)) (*Client, error) {
	c := &Client{dial: dial, msgs: make(chan Message, 1024), errs: make(chan *wire.ProtocolError, 64)}
	if err := c.connect(ctx, wire.Encode(wire.Login{Version: wire.Version1, Name: name, Password: password})); err != nil {
		return nil, err
	}
	return c, nil
}

// maxFrame bounds the frames the client reads from the edge.
const maxFrame = 16 << 20

// Session returns the session id.
func (c *Client) Session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// Messages delivers what the world sends, in order: messages and channel
// membership notices. Read it: a client that does not is disconnected by
// the edge once its queue there fills.
func (c *Client) Messages() <-chan Message { return c.msgs }

// Errors delivers the error frames the edge sends (rate limited, and so
// on). It drops errors nobody reads.
func (c *Client) Errors() <-chan *wire.ProtocolError { return c.errs }

// Done is closed when the current connection ends.
func (c *Client) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// Send sends one message to the world, where it becomes an event for the
// game's handler.
func (c *Client) Send(payload []byte) error {
	return c.write(wire.Encode(wire.Send{Payload: payload}))
}

// SendChannel sends one message to a channel the session belongs to. The
// game decides whether it is forwarded to the channel's members.
func (c *Client) SendChannel(channel string, payload []byte) error {
	return c.write(wire.Encode(wire.ChannelSend{Channel: channel, Payload: payload}))
}

// Reconnect opens a new connection and resumes the session with its token.
// Messages sent to the session meanwhile arrive on Messages, none twice.
func (c *Client) Reconnect(ctx context.Context) error {
	_ = c.Close()
	c.mu.Lock()
	token, last := c.token, c.lastSeq
	c.mu.Unlock()
	return c.connect(ctx, wire.Encode(wire.Reconnect{Version: wire.Version1, Token: token, LastSeq: last}))
}

// Logout ends the session; the game's disconnect handler runs for it.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	loggedOut := c.loggedIn
	c.mu.Unlock()
	if err := c.write(wire.Encode(wire.Logout{})); err != nil {
		return err
	}
	select {
	case <-loggedOut:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.Close()
}

// Close drops the connection without logging out: the session waits for a
// reconnect for the edge's grace period.
func (c *Client) Close() error {
	c.mu.Lock()
	l, done, stop, once := c.l, c.done, c.stop, c.stopOnce
	c.mu.Unlock()
	if l == nil {
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

func (c *Client) write(f wire.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	if 1+len(f.Body) > c.maxFrame {
		return fmt.Errorf("client: frame of %d bytes over the edge's limit of %d", 1+len(f.Body), c.maxFrame)
	}
	return c.l.writeFrame(f)
}

// connect dials, sends hello (a Login or Reconnect frame), waits for the
// answer and starts the reader.
func (c *Client) connect(ctx context.Context, hello wire.Frame) error {
	l, err := c.dial(ctx)
	if err != nil {
		return err
	}
	// ctx bounds the login: its end interrupts any read or write.
	stop := context.AfterFunc(ctx, l.interrupt)
	defer stop()
	if err := l.writeFrame(hello); err != nil {
		l.close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	for {
		f, err := l.readFrame()
		if err != nil {
			l.close()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("client: login: %w", err)
		}
		v, err := wire.Decode(f)
		if err != nil {
			l.close()
			return fmt.Errorf("client: login: %w", err)
		}
		switch v := v.(type) {
		case wire.LoginOK:
			if !stop() {
				l.close()
				return ctx.Err()
			}
			l.resume()
			c.mu.Lock()
			c.l = l
			c.session, c.token, c.maxFrame = v.Session, v.Token, int(v.MaxFrame)
			c.done, c.loggedIn = make(chan struct{}), make(chan struct{})
			c.stop, c.stopOnce = make(chan struct{}), new(sync.Once)
			done, stop, loggedIn := c.done, c.stop, c.loggedIn
			c.mu.Unlock()
			go c.read(l, done, stop, loggedIn)
			return nil
		case wire.LoginFailed:
			l.close()
			return &wire.ProtocolError{Code: v.Code, Reason: v.Reason}
		case wire.ErrorInfo:
			l.close()
			return &wire.ProtocolError{Code: v.Code, Reason: v.Reason}
		}
	}
}

func (c *Client) read(l link, done, stop, loggedIn chan struct{}) {
	defer close(done)
	defer l.close()
	for {
		f, err := l.readFrame()
		if err != nil {
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
		case wire.ErrorInfo:
			select {
			case c.errs <- &wire.ProtocolError{Code: v.Code, Reason: v.Reason}:
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
	case c.msgs <- m:
	case <-stop:
		return false
	}
	if m.Seq != 0 { // 0: a best-effort channel message, never replayed
		c.mu.Lock()
		c.lastSeq = max(c.lastSeq, m.Seq)
		c.mu.Unlock()
	}
	return true
}

// link is one connection to the edge: a byte stream (TCP, TLS) or a
// WebSocket. Reads are the reader's; writes are made under Client.mu.
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
