// Package client is a Go client for the Starbus edge protocol
// (PROTOCOL.md): log in, send messages, receive the session's messages,
// reconnect with the session's token without losing any, log out.
//
// A Client is safe for concurrent use. It owns one reader goroutine per
// connection, stopped by Close, Logout or a lost connection.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/starbus/starbus/edge"
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
	addr string

	mu       sync.Mutex
	nc       net.Conn
	w        *bufio.Writer
	session  string
	token    string
	lastSeq  uint64
	maxFrame int
	done     chan struct{} // closed when the current reader ends
	stop     chan struct{} // closed to stop the current reader
	stopOnce *sync.Once
	loggedIn chan struct{} // closed when LogoutOK arrives

	msgs chan Message
	errs chan *edge.ProtocolError
}

// Dial connects to the edge at addr and logs in as name.
func Dial(ctx context.Context, addr, name, password string) (*Client, error) {
	c := &Client{addr: addr, msgs: make(chan Message, 1024), errs: make(chan *edge.ProtocolError, 64)}
	if err := c.connect(ctx, edge.Encode(edge.Login{Version: edge.ProtocolVersion, Name: name, Password: password})); err != nil {
		return nil, err
	}
	return c, nil
}

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
func (c *Client) Errors() <-chan *edge.ProtocolError { return c.errs }

// Done is closed when the current connection ends.
func (c *Client) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// Send sends one message to the world, where it becomes an event for the
// game's handler.
func (c *Client) Send(payload []byte) error {
	return c.write(edge.Encode(edge.Send{Payload: payload}))
}

// SendChannel sends one message to a channel the session belongs to. The
// game decides whether it is forwarded to the channel's members.
func (c *Client) SendChannel(channel string, payload []byte) error {
	return c.write(edge.Encode(edge.ChannelSend{Channel: channel, Payload: payload}))
}

// Reconnect opens a new connection and resumes the session with its token.
// Messages sent to the session meanwhile arrive on Messages, none twice.
func (c *Client) Reconnect(ctx context.Context) error {
	_ = c.Close()
	c.mu.Lock()
	token, last := c.token, c.lastSeq
	c.mu.Unlock()
	return c.connect(ctx, edge.Encode(edge.Reconnect{Version: edge.ProtocolVersion, Token: token, LastSeq: last}))
}

// Logout ends the session; the game's disconnect handler runs for it.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	loggedOut := c.loggedIn
	c.mu.Unlock()
	if err := c.write(edge.Encode(edge.Logout{})); err != nil {
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
	nc, done, stop, once := c.nc, c.done, c.stop, c.stopOnce
	c.mu.Unlock()
	if nc == nil {
		return nil
	}
	once.Do(func() { close(stop) })
	err := nc.Close()
	<-done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (c *Client) write(f edge.Frame) error {
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
	if _, err := c.w.Write(edge.AppendFrame(nil, f)); err != nil {
		return err
	}
	return c.w.Flush()
}

// connect dials, sends hello (a Login or Reconnect frame), waits for the
// answer and starts the reader.
func (c *Client) connect(ctx context.Context, hello edge.Frame) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	// ctx bounds the login: its end interrupts any read or write.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r := bufio.NewReader(nc)
	if _, err := nc.Write(edge.AppendFrame(nil, hello)); err != nil {
		nc.Close()
		return err
	}
	for {
		f, err := edge.ReadFrame(r, 16<<20)
		if err != nil {
			nc.Close()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("client: login: %w", err)
		}
		v, err := edge.Decode(f)
		if err != nil {
			nc.Close()
			return fmt.Errorf("client: login: %w", err)
		}
		switch v := v.(type) {
		case edge.LoginOK:
			if !stop() {
				nc.Close()
				return ctx.Err()
			}
			_ = nc.SetDeadline(time.Time{})
			c.mu.Lock()
			c.nc, c.w = nc, bufio.NewWriter(nc)
			c.session, c.token, c.maxFrame = v.Session, v.Token, int(v.MaxFrame)
			c.done, c.loggedIn = make(chan struct{}), make(chan struct{})
			c.stop, c.stopOnce = make(chan struct{}), new(sync.Once)
			done, stop, loggedIn := c.done, c.stop, c.loggedIn
			c.mu.Unlock()
			go c.read(nc, r, done, stop, loggedIn)
			return nil
		case edge.LoginFailed:
			nc.Close()
			return &edge.ProtocolError{Code: v.Code, Reason: v.Reason}
		case edge.ErrorInfo:
			nc.Close()
			return &edge.ProtocolError{Code: v.Code, Reason: v.Reason}
		}
	}
}

func (c *Client) read(nc net.Conn, r *bufio.Reader, done, stop, loggedIn chan struct{}) {
	defer close(done)
	defer nc.Close()
	for {
		f, err := edge.ReadFrame(r, 16<<20)
		if err != nil {
			return
		}
		v, err := edge.Decode(f)
		if err != nil {
			continue
		}
		switch v := v.(type) {
		case edge.Message:
			if !c.deliver(Message{Seq: v.Seq, Payload: v.Payload}, stop) {
				return
			}
		case edge.ChannelMessage:
			if !c.deliver(Message{Seq: v.Seq, Channel: v.Channel, Payload: v.Payload}, stop) {
				return
			}
		case edge.ChannelJoin:
			if !c.deliver(Message{Kind: KindJoined, Seq: v.Seq, Channel: v.Channel}, stop) {
				return
			}
		case edge.ChannelLeave:
			if !c.deliver(Message{Kind: KindLeft, Seq: v.Seq, Channel: v.Channel}, stop) {
				return
			}
		case edge.ErrorInfo:
			select {
			case c.errs <- &edge.ProtocolError{Code: v.Code, Reason: v.Reason}:
			default:
			}
		case edge.LogoutOK:
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
