package sgsclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/starbus/starbus/edge/sgs"
)

// ErrClosed is returned by a Client's calls once its session is over.
var ErrClosed = errors.New("sgsclient: closed")

// dialTimeout bounds the connection to a server the client is sent to.
const dialTimeout = 10 * time.Second

// Client is a session over TCP: it runs a [Machine], follows
// LOGIN_REDIRECT and RELOCATE_NOTIFICATION to other servers as Darkstar's
// SimpleClient does, and reports what the session receives on Events.
// Sends wait while the server has suspended the client's messages, until
// the session runs again, relocated. It is safe for concurrent use.
type Client struct {
	events   chan Event
	done     chan struct{} // closed when the reader has ended
	stop     chan struct{} // closed by Close: the reader gives up delivering
	stopOnce sync.Once
	wg       sync.WaitGroup

	// wmu orders writes and the state changes that decide whether a send
	// may be written (a suspension); taken before mu.
	wmu sync.Mutex
	mu  sync.Mutex
	m   *Machine
	nc  net.Conn
	// changed is closed, and replaced, whenever the state changes.
	changed chan struct{}
	closing bool
	err     error
}

// Dial connects to the server at addr and logs in as name, following a
// redirect. It returns once the login succeeded; a refused login is an
// error that says why.
func Dial(ctx context.Context, addr, name, password string) (*Client, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Client{events: make(chan Event, 1024), done: make(chan struct{}), stop: make(chan struct{}),
		m: NewMachine(name, password), nc: nc, changed: make(chan struct{})}
	if err := c.write(nc, c.m.Login()); err != nil {
		nc.Close()
		return nil, err
	}
	c.wg.Go(func() { c.read(nc) })
	for {
		c.mu.Lock()
		state, changed, cerr := c.m.State(), c.changed, c.err
		c.mu.Unlock()
		switch state {
		case StateLoggedIn:
			return c, nil
		case StateDone:
			c.Close()
			if cerr == nil {
				cerr = ErrClosed
			}
			return nil, fmt.Errorf("sgsclient: login as %s: %w", name, cerr)
		}
		select {
		case <-changed:
		case <-c.done:
			if cerr = c.Err(); cerr == nil {
				cerr = ErrClosed
			}
			c.Close()
			return nil, fmt.Errorf("sgsclient: login as %s: %w", name, cerr)
		case <-ctx.Done():
			c.Close()
			return nil, ctx.Err()
		}
	}
}

// Events returns the session's events, in order: its messages, channel
// joins, leaves and messages, suspension and relocation. It is closed
// when the session is over. While 1,024 events wait unread, the client
// reads nothing more from the server.
func (c *Client) Events() <-chan Event { return c.events }

// Done is closed when the session is over; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the session ended: nil after a logout or Close.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Key returns the session's last reconnection key.
func (c *Client) Key() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Key()
}

// State returns where the session stands.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.State()
}

// Send sends a session message, waiting while the session is suspended
// or relocating.
func (c *Client) Send(ctx context.Context, payload []byte) error {
	return c.send(ctx, func(m *Machine) (sgs.Message, error) { return m.Send(payload) })
}

// SendChannel sends a message to the channel called name, waiting while
// the session is suspended or relocating.
func (c *Client) SendChannel(ctx context.Context, name string, payload []byte) error {
	return c.send(ctx, func(m *Machine) (sgs.Message, error) { return m.SendChannel(name, payload) })
}

// SendRaw writes m as it is, whatever the state: for tests of a server's
// answer to what a client should not send.
func (c *Client) SendRaw(m sgs.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	return c.write(nc, m)
}

func (c *Client) send(ctx context.Context, make func(*Machine) (sgs.Message, error)) error {
	for {
		c.wmu.Lock()
		c.mu.Lock()
		state, changed, nc := c.m.State(), c.changed, c.nc
		var msg sgs.Message
		var err error
		if state == StateLoggedIn {
			msg, err = make(c.m)
		}
		c.mu.Unlock()
		switch state {
		case StateLoggedIn:
			if err == nil {
				err = c.write(nc, msg)
			}
			c.wmu.Unlock()
			return err
		case StateDone, StateLoggingOut:
			c.wmu.Unlock()
			return ErrClosed
		}
		c.wmu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return ErrClosed
		}
	}
}

// Logout logs out and waits for LOGOUT_SUCCESS, then closes.
func (c *Client) Logout(ctx context.Context) error {
	c.wmu.Lock()
	c.mu.Lock()
	msg, err := c.m.Logout()
	nc := c.nc
	c.mu.Unlock()
	if err == nil {
		err = c.write(nc, msg)
	}
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.Close()
		return ctx.Err()
	}
	c.wg.Wait()
	return c.Err()
}

// Close closes the connection without logging out, and waits for the
// reader.
func (c *Client) Close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	c.mu.Lock()
	c.closing = true
	nc := c.nc
	c.mu.Unlock()
	nc.Close()
	c.wg.Wait()
	return nil
}

func (c *Client) write(nc net.Conn, m sgs.Message) error {
	b, err := sgs.Append(nil, m)
	if err != nil {
		return err
	}
	_, err = nc.Write(b)
	return err
}

// read runs the session: it reads the server's messages, steps the
// machine, and does what it says, on nc and the connections it moves to.
func (c *Client) read(nc net.Conn) {
	defer close(c.events)
	defer close(c.done)
	r := bufio.NewReader(nc)
	for {
		f, err := sgs.ReadFrame(r)
		if err == nil {
			var msg sgs.Message
			if msg, err = sgs.Decode(f); err == nil {
				var next net.Conn
				next, err = c.step(msg)
				if next != nil {
					nc, r = next, bufio.NewReader(next)
				}
			}
		}
		if err != nil {
			c.mu.Lock()
			if !c.closing && c.m.State() != StateDone {
				c.err = err
			}
			c.setState()
			c.mu.Unlock()
			nc.Close()
			return
		}
		if c.State() == StateDone {
			nc.Close()
			c.mu.Lock()
			c.setState()
			c.mu.Unlock()
			return
		}
	}
}

// step hands msg to the machine and does its actions; it returns the
// connection it moved to, if it did.
func (c *Client) step(msg sgs.Message) (net.Conn, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	before := c.m.State()
	actions, err := c.m.Step(msg)
	if c.m.State() != before {
		c.setState()
	}
	nc := c.nc
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var moved net.Conn
	for _, a := range actions {
		switch {
		case a.Event != nil:
			select {
			case c.events <- *a.Event:
			case <-c.stop:
				return moved, ErrClosed
			}
		case a.Send != nil:
			if err := c.write(nc, a.Send); err != nil {
				return moved, err
			}
		case a.Dial != "":
			nc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
			next, err := (&net.Dialer{}).DialContext(ctx, "tcp", a.Dial)
			cancel()
			if err != nil {
				return moved, err
			}
			c.mu.Lock()
			c.nc = next
			closing := c.closing
			c.mu.Unlock()
			if closing {
				next.Close()
			}
			nc, moved = next, next
			if err := c.write(nc, a.Then); err != nil {
				return moved, err
			}
		case a.Close:
		}
	}
	return moved, nil
}

// setState wakes those waiting for a change of state. c.mu is held.
func (c *Client) setState() {
	close(c.changed)
	c.changed = make(chan struct{})
}
