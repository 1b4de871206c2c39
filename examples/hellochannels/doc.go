// Package hellochannels is RedDwarf's server tutorial lesson 6,
// HelloChannels, ported to Starbus handlers: the channel chat a Darkstar
// studio would bring along, served to its Darkstar clients unchanged over
// the edge's SimpleSgs listener and to Starbus clients alike, in one
// world.
//
// The tutorial's AppListener.initialize creates two reliable channels,
// "Foo" (no ChannelListener: members' messages go to every member
// unfiltered) and "Bar" (a ChannelListener that forwards them); its
// ClientSessionListener joins each session to both on login and echoes
// every session message back (lesson 5, HelloEcho). Here:
//
//   - [Init] creates the channels, once per world (initialize);
//   - the login handler joins the session to both (the session
//     listener's constructor);
//   - the message handler echoes (receivedMessage);
//   - the disconnect handler does nothing (disconnected only logs); the
//     platform takes the ended session out of its channels;
//   - channel messages of members are forwarded to the channel
//     (handlers.ForwardChannel), which is what both of the tutorial's
//     channels do; a message to a channel the session is not in is
//     dropped.
//
// It keeps no state of its own: sessions and memberships are the
// platform's.
package hellochannels
