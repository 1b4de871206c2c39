package bus

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
)

// Role is what a process may do in a world's NATS deployment. Edges,
// workers and admin tools connect as distinct users, each allowed only the
// subjects its role needs (see [World.Permissions]), so that a compromised
// edge cannot write the world's state, read the workers' replies or
// reconfigure the stream.
type Role string

// The roles.
const (
	// RoleEdge publishes clients' events, keeps session and account
	// records, and reads what the world sends to sessions and channels.
	RoleEdge Role = "edge"
	// RoleWorker runs tasks: it may write everything of its world.
	RoleWorker Role = "worker"
	// RoleAdmin may do anything: provisioning, tools, `starbus dev`.
	RoleAdmin Role = "admin"
)

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleEdge, RoleWorker, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("bus: unknown role %q (edge, worker or admin)", s)
}

// InboxPrefix is the prefix of the reply subjects of r's connections
// (nats.CustomInboxPrefix): each role may subscribe to its own replies
// only, so that no role reads another's answers (a worker's reads of
// state, say).
func (r Role) InboxPrefix() string { return "_INBOX_" + string(r) }

// Provisions reports whether r creates and updates the world's stream when
// it starts. An edge only looks it up: changing the stream's configuration
// is not an edge's business.
func (r Role) Provisions() bool { return r != RoleEdge }

// Permissions returns what role r may publish and subscribe to in world
// w, for the NATS server's user configuration. Everything not allowed is
// denied.
func (w World) Permissions(r Role) (*server.Permissions, error) {
	stream := w.Stream()
	api := func(ops ...string) []string {
		var s []string
		for _, op := range ops {
			s = append(s, "$JS.API."+op)
		}
		return s
	}
	// What every role of the world needs of JetStream: account and stream
	// info, direct gets (state reads), consumers on the world's stream
	// (ordered consumers to tail it, pull requests).
	common := api(
		"INFO",
		"STREAM.INFO."+stream,
		"DIRECT.GET."+stream, "DIRECT.GET."+stream+".>",
		"STREAM.MSG.GET."+stream,
		"CONSUMER.CREATE."+stream+".>", "CONSUMER.DELETE."+stream+".>",
		"CONSUMER.INFO."+stream+".>", "CONSUMER.MSG.NEXT."+stream+".>",
	)
	switch r {
	case RoleAdmin:
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{">"}},
		}, nil
	case RoleWorker:
		return &server.Permissions{
			Publish: &server.SubjectPermission{Allow: append(common,
				w.All(), "sbe."+w.Name()+".>", // the world, its best-effort channels, forwarded commits
				"$JS.ACK."+stream+".>",                                           // acknowledging events
				"$JS.API.STREAM.CREATE."+stream, "$JS.API.STREAM.UPDATE."+stream, // provisioning
				"$JS.API.STREAM.INFO."+w.BucketStream(), "$JS.API.STREAM.CREATE."+w.BucketStream(), "$JS.API.STREAM.UPDATE."+w.BucketStream(),
				"$JS.API.STREAM.PURGE."+stream, // compaction
				"$JS.API.CONSUMER.DURABLE.CREATE."+stream+".>",
				"$JS.API.CONSUMER.LIST."+stream, "$JS.API.CONSUMER.NAMES."+stream,
			)},
			Subscribe: &server.SubjectPermission{Allow: []string{
				r.InboxPrefix() + ".>",
				"sbe." + w.Name() + ".commit.>", // serving forwarded commits as the leader
			}},
		}, nil
	case RoleEdge:
		return &server.Permissions{
			Publish: &server.SubjectPermission{Allow: append(common,
				w.s.Prefix()+"ev.>",              // clients' events
				w.s.Prefix()+"kv.starbus.sess.>", // session records
				w.s.Prefix()+"kv.starbus.auth.>", // account records
				w.s.Prefix()+"kv.auth.user.>",    // account records where Starbus kept them before (moved at login)
				w.s.Prefix()+"chk.>",             // read checks of its commits (they write nothing)
				w.Edges(),                        // announcing itself to the other edges
			)},
			Subscribe: &server.SubjectPermission{Allow: []string{
				r.InboxPrefix() + ".>",
				w.LiveChannelFilter(), // best-effort channel messages
				w.LiveAreaFilter(),    // best-effort area events
				w.Edges(),             // the other edges' announcements
			}},
		}, nil
	}
	return nil, fmt.Errorf("bus: unknown role %q", r)
}
