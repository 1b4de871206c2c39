package edge

import (
	"encoding/json"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// peerInfo is what an edge with a SimpleSgs listener announces to the
// world's other edges on bus.World.Edges, every PeerInterval: where its
// listener is and how many SimpleSgs sessions it holds. It is the one
// record of the announcements, encoded here only.
type peerInfo struct {
	ID string `json:"id"`
	// SGS is the host:port of its SimpleSgs listener, as clients reach it.
	SGS string `json:"sgs"`
	// Sessions is the number of SimpleSgs sessions it holds.
	Sessions int `json:"sessions"`
	// Draining: it is relocating its sessions away; send it none.
	Draining bool `json:"draining,omitempty"`
}

// peerTable is what an edge knows of the others: a pure table, fed with
// announcements and asked for the least loaded live peer; the I/O is
// Server.announce's. An entry expires when its edge has not been heard
// of for peerExpiry intervals. Safe for concurrent use.
type peerTable struct {
	self   string        // this edge's id, whose own announcements are ignored
	expiry time.Duration // silence after which a peer is forgotten

	mu    sync.Mutex
	peers map[string]*peerEntry
}

type peerEntry struct {
	info peerInfo
	seen time.Time
	// sent counts the sessions sent there (redirected or relocated) since
	// its last announcement, so that a burst of them is spread.
	sent int
}

// maxHostLen bounds the host name of an announced address (DNS's limit).
const maxHostLen = 253

// peerExpiry is how many announcement intervals of silence expire a peer.
const peerExpiry = 3

func newPeerTable(self string, interval time.Duration) *peerTable {
	return &peerTable{self: self, expiry: peerExpiry * interval, peers: map[string]*peerEntry{}}
}

// observe records an announcement received at now. One without a
// usable address (host:port, the host at most maxHostLen bytes) is
// ignored.
func (pt *peerTable) observe(info peerInfo, now time.Time) {
	if host, _, ok := hostPort(info.SGS); !ok || len(host) > maxHostLen || info.ID == "" || info.ID == pt.self {
		return
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.peers[info.ID] = &peerEntry{info: info, seen: now}
}

// pick returns the address of the live, not draining peer with the
// fewest sessions (counting those sent there since it last spoke), if it
// has fewer than below (below < 0: any), and counts one more sent there.
func (pt *peerTable) pick(now time.Time, below int) (string, bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	var best *peerEntry
	for id, e := range pt.peers {
		if now.Sub(e.seen) > pt.expiry {
			delete(pt.peers, id)
			continue
		}
		if e.info.Draining || below >= 0 && e.info.Sessions+e.sent >= below {
			continue
		}
		if best == nil || e.info.Sessions+e.sent < best.info.Sessions+best.sent ||
			e.info.Sessions+e.sent == best.info.Sessions+best.sent && e.info.ID < best.info.ID {
			best = e
		}
	}
	if best == nil {
		return "", false
	}
	best.sent++
	return best.info.SGS, true
}

// startPeers starts, once, the announcements of this edge's SimpleSgs
// listener at addr and the table of the other edges' (see doc.go,
// SimpleSgs). Its goroutine stops with the server's lifetime.
func (s *Server) startPeers(addr net.Addr) {
	s.peerOnce.Do(func() {
		s.sgsAddr = s.SGSAddress
		if s.sgsAddr == "" {
			s.sgsAddr = advertised(addr)
		}
		sub, err := s.JS.Conn().Subscribe(s.World.Edges(), func(m *nats.Msg) {
			var info peerInfo
			if json.Unmarshal(m.Data, &info) == nil {
				s.peers.observe(info, time.Now())
			}
		})
		if err != nil {
			s.log.Warn("edge announcements not subscribed: no redirect or relocation", logErr, err)
			return
		}
		s.peering.Go(func() {
			defer func() { _ = sub.Unsubscribe() }()
			t := time.NewTicker(s.PeerInterval)
			defer t.Stop()
			for {
				s.announce()
				select {
				case <-s.ctx.Done():
					return
				case <-t.C:
				case <-s.announceNow:
				}
			}
		})
	})
}

// announce publishes this edge's announcement.
func (s *Server) announce() {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	b, err := json.Marshal(peerInfo{ID: s.id, SGS: s.sgsAddr, Sessions: int(s.sgsSessions.Load()), Draining: draining})
	if err != nil {
		return
	}
	if err := s.JS.Conn().Publish(s.World.Edges(), b); err != nil {
		s.log.Debug("edge announcement not published", logErr, err)
	}
}

// advertised is the address clients reach a listener at addr by: addr,
// with this machine's host name for an unspecified IP.
func advertised(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// hostPort splits a peer's address into the host and Java int port of a
// LOGIN_REDIRECT or RELOCATE_NOTIFICATION.
func hostPort(addr string) (string, int32, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || host == "" {
		return "", 0, false
	}
	return host, int32(p), true
}
