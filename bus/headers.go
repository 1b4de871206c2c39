package bus

import "github.com/nats-io/nats.go"

// Headers Starbus sets on the messages it stores. NATS and JetStream's own
// headers (Nats-*) are used through the jetstream package's constants.
const (
	// HeaderType names the event type an event is routed by.
	HeaderType = "Starbus-Type"
	// HeaderSession carries the session an event came from or a message
	// belongs to.
	HeaderSession = "Starbus-Session"
	// HeaderSeq carries the per-session sequence number of a client event.
	HeaderSeq = "Starbus-Seq"
	// HeaderOp marks a state write that is not a plain value; "DEL" is a
	// deletion. It is JetStream KV's own header, so that a KV client
	// reading the world's state (see [World.Bucket]) sees deletions as
	// deletions.
	HeaderOp = "KV-Operation"
	// legacyHeaderOp marked deletions before Starbus used KV's header;
	// worlds may still hold such tombstones.
	legacyHeaderOp = "Starbus-Op"
	// HeaderTombstoneTTL carries the lifetime of a deletion's tombstone,
	// in whole seconds, or [TombstoneNever]: once it has stood that long,
	// compaction removes it (package kv, Settling). A tombstone as a
	// deletion first writes it has no Nats-TTL: the server would remove it
	// alone, and a value it superseded, still stored, would be the key's
	// again.
	HeaderTombstoneTTL = "Starbus-TTL"
	// HeaderReason explains why an event was dead-lettered.
	HeaderReason = "Starbus-Reason"
	// HeaderDue carries the due time of a schedule's alarm, in Unix
	// nanoseconds.
	HeaderDue = "Starbus-Due"
	// HeaderEventSeq carries the stream sequence of the event a dead letter
	// or an outgoing message came from.
	HeaderEventSeq = "Starbus-Event-Seq"
	// HeaderNotice marks a message on a session's subject that is not for
	// the client as is but tells its edge of a change: see the Notice
	// constants.
	HeaderNotice = "Starbus-Notice"
	// HeaderChannel names the channel of a notice, or of a channel message
	// a client sent.
	HeaderChannel = "Starbus-Channel"
	// HeaderDelivery carries a channel's delivery ("reliable" or
	// "best-effort") on a join notice.
	HeaderDelivery = "Starbus-Delivery"
	// HeaderRegion carries the new region of a region notice.
	HeaderRegion = "Starbus-Region"
)

// Values of [HeaderNotice].
const (
	// NoticeJoin: the session joined the channel in [HeaderChannel].
	NoticeJoin = "join"
	// NoticeLeave: the session left the channel in [HeaderChannel].
	NoticeLeave = "leave"
	// NoticeRegion: the session's later events go to the region in
	// [HeaderRegion].
	NoticeRegion = "region"
	// NoticeInterest: the session's interest in an area changed; the body
	// is an [InterestNotice].
	NoticeInterest = "interest"
)

// Values of [HeaderDelivery].
const (
	DeliveryReliable   = "reliable"
	DeliveryBestEffort = "best-effort"
)

// OpDelete is the [HeaderOp] value of a deletion.
const OpDelete = "DEL"

// TombstoneNever is the [HeaderTombstoneTTL] of a tombstone that never
// expires.
const TombstoneNever = "never"

// IsDelete reports whether a state message with headers h is a deletion
// (a tombstone), in the header Starbus writes or in the one it wrote
// before.
func IsDelete(h nats.Header) bool {
	return h.Get(HeaderOp) == OpDelete || h.Get(legacyHeaderOp) == OpDelete
}

// Event types that edges publish for client activity. Games define their own
// types for the events their tasks emit; these are reserved.
const (
	// EventLogin is published once a client has authenticated; its payload is
	// the player's name.
	EventLogin = "starbus.login"
	// EventMessage carries one message a client sent on its session.
	EventMessage = "starbus.message"
	// EventDisconnect is published when a session ends, cleanly or not.
	EventDisconnect = "starbus.disconnect"
	// EventInit is the type of the task that initialises a world, once.
	EventInit = "starbus.init"
	// EventChannel carries one message a client sent to a channel, named
	// in [HeaderChannel]; the game's handler for it decides whether to
	// forward it (see handlers.ForwardChannel).
	EventChannel = "starbus.channel"
)
