package bus

// State keys of the platform's own records, in the "starbus." key space
// that games must leave alone. Edges and the worker runtime share them.

// SessionKey holds the edge's record of a session: who it is, how it
// reconnects, where its events go.
func SessionKey(id string) string { return "starbus.sess." + id }

// SessionChannelsKey holds the channels a session is in.
func SessionChannelsKey(id string) string { return "starbus.sess." + id + ".ch" }

// SessionRegionKey holds the region a task moved a session to.
func SessionRegionKey(id string) string { return "starbus.sess." + id + ".region" }

// ChannelKey holds a channel's configuration.
func ChannelKey(name string) string { return "starbus.ch." + name }

// ChannelMembersPrefix is the prefix of the keys of a channel's members:
// one key per member (see ChannelMemberKey), so that joins and leaves of
// different sessions write different keys and never conflict. Before
// Starbus kept them this way, the whole member list was the value of this
// key itself.
func ChannelMembersPrefix(name string) string { return "starbus.ch." + name + ".m" }

// ChannelMemberKey exists while session is a member of the channel name.
func ChannelMemberKey(name, session string) string { return ChannelMembersPrefix(name) + "." + session }

// SessionRecordsFilter matches the subjects of every session record (and
// nothing else).
func (w World) SessionRecordsFilter() string { return w.s.Prefix() + "kv.starbus.sess.*" }

// AuthKey holds the account record (password hash) of the player name.
func AuthKey(name string) string { return "starbus.auth.user." + name }

// LegacyAuthKey is where Starbus kept the account record of name before
// AuthKey, in the game's key space; edges move a record from there to
// AuthKey at its player's next login.
func LegacyAuthKey(name string) string { return "auth.user." + name }
