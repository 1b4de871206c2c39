// Package bus is the one place in Starbus that knows NATS: the subject scheme
// of a world, the stream that holds it, connecting to an external NATS
// deployment, and the embedded JetStream server used for single-box
// development and for tests.
//
// # Subjects
//
// Every subject of a world lives under sb.<world>. and is stored in one
// stream, SB_<world>, because an atomic batch (the unit of a task's commit)
// may only touch one stream. The scheme is declared once, in [World]:
//
//	sb.<w>.kv.<key>             state: the latest value of a key (rolled up per write)
//	sb.<w>.chk                  read checks: revision assertions inside a commit
//	sb.<w>.done.<seq>           applied-event markers (exactly-once effects)
//	sb.<w>.ev.<p>.<region>.<part> events: the work the handler runtime consumes;
//	                            p = Partition(part), so a part keeps its partition
//	                            when it moves between regions
//	sb.<w>.sched.<id>           durable schedules that fire into ev.
//	sb.<w>.out.s.<session>      messages to a client session
//	sb.<w>.out.c.<channel>      messages to a channel
//	sb.<w>.dlq.<seq>            dead letters
//	sb.<w>.grp.<g>.m.<member>   heartbeats of the members of worker group g
//	sb.<w>.grp.<g>.p.<p>        who owns partition p in worker group g
//
// Two core NATS subjects, outside the stream, carry what need not be
// stored:
//
//	sbe.<w>.c.<channel>         best-effort channel messages
//	sbe.<w>.commit.<member>     commits forwarded to a worker's store (kv)
//
// Builders validate their tokens; parsers return ok=false for anything that
// is not theirs. No other package spells a subject.
//
// # Goroutines
//
// [Server] owns the embedded nats-server and its goroutines; [Server.Shutdown]
// stops them and waits. Nothing else in this package starts a goroutine.
package bus
