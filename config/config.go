// Package config holds Starbus's configuration as plain structs: defaults,
// validation that names the bad field, and JSON for config files. It reads
// no configuration files, environment or flags itself; cmd/starbus does.
// Validate opens the TLS files a configuration names, only to report one
// that cannot be read by its field.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"strconv"
	"time"

	"github.com/starbus/starbus/bus"
)

// Config is the configuration of every starbus subcommand.
type Config struct {
	// World names the world (stream SB_<world>).
	World string `json:"world"`
	// NATS is where the world lives.
	NATS NATS `json:"nats"`
	// Edge configures the client gateway.
	Edge Edge `json:"edge"`
	// Worker configures the handler runtime.
	Worker Worker `json:"worker"`
	// HTTP is the address of the process's HTTP server, "" for none: dev
	// serves the live map and /metrics there (Default: 127.0.0.1:8080);
	// edge and worker serve /metrics and /healthz (cmd/starbus turns it
	// off for them unless it is set).
	HTTP string `json:"http"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log_level"`
	// Pprof is the address of an HTTP server with net/http/pprof's
	// handlers, for profiling under real load; "" (the default) serves
	// none.
	Pprof string `json:"pprof"`
}

// NATS locates the NATS deployment.
type NATS struct {
	// URL of an external NATS cluster (edge and worker subcommands).
	URL string `json:"url"`
	// DataDir is the embedded server's store (dev subcommand).
	DataDir string `json:"data_dir"`
	// Port is the embedded server's client port; -1 picks a free one.
	Port int `json:"port"`
	// Replicas is the world stream's replication factor (1, or 3 on a
	// cluster).
	Replicas int `json:"replicas"`
	// SyncAlways makes the embedded server (dev, nats) fsync every write
	// before acknowledging it: commits then survive a power loss of a
	// single server, at a cost of an fsync per commit group. Off, the
	// server fsyncs every two minutes (README: durability).
	SyncAlways bool `json:"sync_always"`
	// Bucket keeps the world's state visible as a JetStream KV bucket
	// named after the world (a read-only copy, see bus.World.Bucket), so
	// that `nats kv get <world> <key>` and every KV client read it; it
	// costs the server a second copy of every state write.
	Bucket bool `json:"bucket"`

	// User is the NATS user this process connects as (edge, worker,
	// bots), in the role Role: "edge", "worker" or "admin" (default: the
	// subcommand's, edge for `starbus edge`, worker for `starbus worker`,
	// admin for the rest). Its password is the first line of
	// PasswordFile, or else the environment variable
	// STARBUS_NATS_PASSWORD; never a flag, which other users of the
	// machine could read. Empty: no credentials, for a NATS that asks
	// for none.
	User         string `json:"user"`
	PasswordFile string `json:"password_file"`
	Role         string `json:"role"`
	// CAFile, if set, is the PEM certificate of the authority that NATS's
	// TLS certificate is checked against (tls:// URLs).
	CAFile string `json:"ca_file"`
	// Users are the only identities the embedded server (dev, nats)
	// accepts, each allowed only what its role needs in this world (see
	// bus.World.Permissions); one must be an admin. None: the server
	// accepts anyone and allows everything (a dev box on loopback).
	Users []NATSUser `json:"users"`
	// TLSCert and TLSKey make the embedded server (dev, nats) accept TLS
	// connections only.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
}

// NATSUser is an identity of the embedded server: a name, a role, and
// the file whose first line is its password.
type NATSUser struct {
	Name         string `json:"name"`
	Role         string `json:"role"`
	PasswordFile string `json:"password_file"`
}

// Edge configures an edge.
type Edge struct {
	// Listen is the TCP address clients connect to.
	Listen string `json:"listen"`
	// WebSocket is the address of the edge's WebSocket listener, which
	// serves at path /ws; "" (the default) serves none. `starbus dev`
	// also serves /ws on its HTTP address (the live map's), whatever
	// this is.
	WebSocket string `json:"websocket"`
	// WebSocketOrigins lists the origins, besides the page's own host,
	// whose pages may open a WebSocket to the edge: host patterns as
	// path.Match matches them ("*.example.com"), or with a scheme
	// ("https://example.com"). Empty: same origin only.
	WebSocketOrigins []string `json:"websocket_origins"`
	// TLSCert and TLSKey are PEM files of the certificate (chain) and key
	// of the edge's client listeners: TLS over TCP on Listen, wss on
	// WebSocket (and, with `starbus dev`, https for the live map and its
	// /ws). Both or neither; neither (the default) serves plain TCP and
	// ws.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// SGS is the address of the edge's SimpleSgs listener, for Project
	// Darkstar and RedDwarf clients (SimpleSgsProtocol version 5, see
	// PROTOCOL.md); "" (the default) serves none.
	SGS string `json:"sgs"`
	// SGSAdvertise is the host:port other edges send SimpleSgs clients to
	// to reach this one (redirects, relocations); "" (the default): the
	// listener's address, with the machine's host name for an
	// unspecified IP.
	SGSAdvertise string `json:"sgs_advertise"`
	// SGSMaxSessions bounds the edge's SimpleSgs sessions: beyond it, new
	// logins are redirected to a less loaded edge; 0 (the default):
	// never.
	SGSMaxSessions int `json:"sgs_max_sessions"`
	// Register lets unknown names register on first login.
	Register bool `json:"register"`
	// The limits of edge.Server of the same names.
	MaxFrame      int      `json:"max_frame"`
	LoginTimeout  Duration `json:"login_timeout"`
	RatePerSecond int      `json:"rate_per_second"`
	Burst         int      `json:"burst"`
	OutboundQueue int      `json:"outbound_queue"`
	WriteTimeout  Duration `json:"write_timeout"`
	// FanoutDelay is how long a channel's message may wait for others to
	// the same client, to share its write (edge.Server.FanoutDelay); a
	// negative value: none.
	FanoutDelay Duration `json:"fanout_delay"`
	// AreaDelay is FanoutDelay for an area's events (the moves around a
	// player): edge.Server.AreaDelay, a game tick; a negative value: none.
	AreaDelay Duration `json:"area_delay"`
	// ReconnectGrace is how long a session waits for its client to
	// reconnect, keeping its channels; 0 ends it (and its memberships) as
	// soon as its connection is lost.
	ReconnectGrace Duration `json:"reconnect_grace"`
}

// Worker configures a handler runtime.
type Worker struct {
	Concurrency int      `json:"concurrency"`
	TaskTimeout Duration `json:"task_timeout"`
	// Member names the worker in its world's worker group; unique among the
	// world's running workers ("": a random name).
	Member string `json:"member"`
	// Lease is how long a silent worker keeps its partitions before the
	// others take them over: the failover time after a crash.
	Lease Duration `json:"lease"`
	// Game is the game the worker runs: "gridworld" (the reference world)
	// or "bank" (transfers between accounts: the scale and failover
	// workload, internal/bank).
	Game string `json:"game"`
	// Gridworld shapes the reference world (game gridworld); every process
	// of a world must use the same shape. Zero fields keep the defaults.
	Gridworld Gridworld `json:"gridworld"`
	// StatsInterval, if positive, makes the worker print its counters on
	// stdout at that interval, one line each, and once more at exit.
	StatsInterval Duration `json:"stats_interval"`
	// CompactInterval is how often the worker owning partition 0 purges
	// handled events, alarms, markers and the keys' superseded revisions
	// from the world's stream, one purge per fifth of it
	// (handlers.Config.CompactInterval; default 30s, at least 4s). Each
	// purge holds the stream's commits for a while
	// (starbus_runtime_compaction_seconds): a longer interval makes fewer,
	// longer holds, and the stream keeps about an interval of handled
	// events; a shorter one makes shorter holds and a smaller stream, and
	// pays each purge's fixed cost more often (README, Performance).
	CompactInterval Duration `json:"compact_interval"`
}

// Gridworld is the shape of the reference world (examples/gridworld's
// Config): 0 keeps a field's default (4×4 regions of 16 cells, view 8,
// 8 NPCs, 64 items).
type Gridworld struct {
	RegionsX   int `json:"regions_x"`
	RegionsY   int `json:"regions_y"`
	RegionSize int `json:"region_size"`
	// View is the radius, in cells, of what a player hears of moves.
	View    int `json:"view"`
	NPCs    int `json:"npcs"`
	ItemCap int `json:"item_cap"`
}

// Default returns the configuration of `starbus dev`.
func Default() Config {
	return Config{
		World: "demo",
		NATS:  NATS{URL: "nats://127.0.0.1:4222", DataDir: "starbus-data", Port: -1, Replicas: 1, Bucket: true},
		Edge: Edge{
			Listen: "127.0.0.1:7400", Register: true, MaxFrame: 64 << 10, LoginTimeout: Duration(10 * time.Second),
			RatePerSecond: 50, Burst: 100, OutboundQueue: 256, WriteTimeout: Duration(10 * time.Second),
			FanoutDelay: Duration(20 * time.Millisecond), AreaDelay: Duration(50 * time.Millisecond),
			ReconnectGrace: Duration(30 * time.Second),
		},
		Worker:   Worker{Concurrency: 256, TaskTimeout: Duration(100 * time.Millisecond), Lease: Duration(3 * time.Second), Game: "gridworld", CompactInterval: Duration(30 * time.Second)},
		HTTP:     "127.0.0.1:8080",
		LogLevel: "info",
	}
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("config: invalid")

func bad(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

// Validate reports the first field that is wrong, by its JSON path.
func (c Config) Validate() error {
	if err := bus.ValidName(c.World); err != nil {
		return bad("world", "%q is not a name of letters, digits, '-' and '_'", c.World)
	}
	if c.NATS.URL == "" {
		return bad("nats.url", "empty")
	}
	if c.NATS.DataDir == "" {
		return bad("nats.data_dir", "empty")
	}
	if c.NATS.Port < -1 || c.NATS.Port > 65535 {
		return bad("nats.port", "%d is not a port (or -1)", c.NATS.Port)
	}
	if c.NATS.Replicas != 1 && c.NATS.Replicas != 3 {
		return bad("nats.replicas", "%d; use 1, or 3 on a cluster", c.NATS.Replicas)
	}
	if !hostPort(c.Edge.Listen) {
		return bad("edge.listen", "%q is not host:port", c.Edge.Listen)
	}
	if c.Edge.WebSocket != "" {
		if !hostPort(c.Edge.WebSocket) {
			return bad("edge.websocket", "%q is not host:port (or empty for none)", c.Edge.WebSocket)
		}
	}
	if c.Edge.SGS != "" && !hostPort(c.Edge.SGS) {
		return bad("edge.sgs", "%q is not host:port (or empty for none)", c.Edge.SGS)
	}
	if c.Edge.SGSAdvertise != "" && !hostPort(c.Edge.SGSAdvertise) {
		return bad("edge.sgs_advertise", "%q is not host:port (or empty for the listener's)", c.Edge.SGSAdvertise)
	}
	if c.Edge.SGSMaxSessions < 0 {
		return bad("edge.sgs_max_sessions", "%d; use 0 for no bound", c.Edge.SGSMaxSessions)
	}
	for _, p := range c.Edge.WebSocketOrigins {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return bad("edge.websocket_origins", "%q is not a host pattern", p)
		}
	}
	if err := validTLS("nats.", c.NATS.TLSCert, c.NATS.TLSKey); err != nil {
		return err
	}
	if c.NATS.Role != "" {
		if _, err := bus.ParseRole(c.NATS.Role); err != nil {
			return bad("nats.role", "%q; use edge, worker or admin", c.NATS.Role)
		}
	}
	if err := readable("nats.password_file", c.NATS.PasswordFile); err != nil {
		return err
	}
	if err := readable("nats.ca_file", c.NATS.CAFile); err != nil {
		return err
	}
	admin := false
	for i, u := range c.NATS.Users {
		field := fmt.Sprintf("nats.users[%d]", i)
		if bus.ValidName(u.Name) != nil {
			return bad(field+".name", "%q is not a name of letters, digits, '-' and '_'", u.Name)
		}
		r, err := bus.ParseRole(u.Role)
		if err != nil {
			return bad(field+".role", "%q; use edge, worker or admin", u.Role)
		}
		admin = admin || r == bus.RoleAdmin
		if u.PasswordFile == "" {
			return bad(field+".password_file", "empty")
		}
		if err := readable(field+".password_file", u.PasswordFile); err != nil {
			return err
		}
	}
	if len(c.NATS.Users) > 0 && !admin {
		return bad("nats.users", "no user has the role admin; the embedded server's own parts connect as one")
	}
	if err := validTLS("edge.", c.Edge.TLSCert, c.Edge.TLSKey); err != nil {
		return err
	}
	if c.Edge.MaxFrame < 64 || c.Edge.MaxFrame > 8<<20 {
		return bad("edge.max_frame", "%d is outside 64 bytes to 8 MiB", c.Edge.MaxFrame)
	}
	if c.Edge.LoginTimeout <= 0 {
		return bad("edge.login_timeout", "must be positive")
	}
	if c.Edge.RatePerSecond <= 0 {
		return bad("edge.rate_per_second", "must be positive")
	}
	if c.Edge.Burst < c.Edge.RatePerSecond {
		return bad("edge.burst", "%d is below edge.rate_per_second (%d)", c.Edge.Burst, c.Edge.RatePerSecond)
	}
	if c.Edge.OutboundQueue <= 0 {
		return bad("edge.outbound_queue", "must be positive")
	}
	if c.Edge.WriteTimeout <= 0 {
		return bad("edge.write_timeout", "must be positive")
	}
	if c.Edge.FanoutDelay > Duration(time.Second) {
		return bad("edge.fanout_delay", "%v is more than a second: the world's news would lag behind it", c.Edge.FanoutDelay.D())
	}
	if c.Edge.AreaDelay > Duration(time.Second) {
		return bad("edge.area_delay", "%v is more than a second: the world's news would lag behind it", c.Edge.AreaDelay.D())
	}
	if c.Edge.ReconnectGrace < 0 {
		return bad("edge.reconnect_grace", "must not be negative (0: a lost connection ends its session)")
	}
	if c.Worker.Concurrency <= 0 {
		return bad("worker.concurrency", "must be positive")
	}
	if c.Worker.TaskTimeout <= 0 {
		return bad("worker.task_timeout", "must be positive")
	}
	if c.Worker.Member != "" && bus.ValidName(c.Worker.Member) != nil {
		return bad("worker.member", "%q is not a name of letters, digits, '-' and '_'", c.Worker.Member)
	}
	if c.Worker.Lease < Duration(600*time.Millisecond) {
		return bad("worker.lease", "%v is below 600ms", time.Duration(c.Worker.Lease))
	}
	if c.Worker.CompactInterval < Duration(4*time.Second) {
		return bad("worker.compact_interval", "%v is below 4s: a purge a second at most", c.Worker.CompactInterval.D())
	}
	if c.Worker.Game != "gridworld" && c.Worker.Game != "bank" {
		return bad("worker.game", "%q; use gridworld or bank", c.Worker.Game)
	}
	if g := c.Worker.Gridworld; g.RegionsX < 0 || g.RegionsY < 0 || g.RegionSize < 0 || g.View < 0 || g.NPCs < 0 || g.ItemCap < 0 {
		return bad("worker.gridworld", "sizes must not be negative")
	}
	if c.Worker.StatsInterval < 0 {
		return bad("worker.stats_interval", "must not be negative")
	}
	if c.HTTP != "" && !hostPort(c.HTTP) {
		return bad("http", "%q is not host:port (or empty for none)", c.HTTP)
	}
	if c.Pprof != "" && !hostPort(c.Pprof) {
		return bad("pprof", "%q is not host:port (or empty for none)", c.Pprof)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "%q; use debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// validTLS checks that cert and key (the fields <prefix>tls_cert and
// <prefix>tls_key) are both set, or neither, and readable.
func validTLS(prefix, cert, key string) error {
	switch {
	case cert == "" && key == "":
		return nil
	case key == "":
		return bad(prefix+"tls_key", "empty, and %stls_cert is set: give both or neither", prefix)
	case cert == "":
		return bad(prefix+"tls_cert", "empty, and %stls_key is set: give both or neither", prefix)
	}
	if err := readable(prefix+"tls_cert", cert); err != nil {
		return err
	}
	return readable(prefix+"tls_key", key)
}

// readable checks that the file named by field, if set, can be opened.
func readable(field, name string) error {
	if name == "" {
		return nil
	}
	f, err := os.Open(name)
	if err != nil {
		return bad(field, "%v", err)
	}
	return f.Close()
}

// hostPort reports whether addr is a TCP address to listen on: host:port
// with a port number (0: any free port); the host may be empty (all
// interfaces).
func hostPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

// Duration is a time.Duration written as "10s" in JSON.
type Duration time.Duration

// MarshalJSON writes d as a string like "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a string like "250ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
