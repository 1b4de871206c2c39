// Package sgs is the codec of SimpleSgsProtocol version 5, the wire
// protocol of Project Darkstar and RedDwarf Server clients (the Java
// SimpleClient, the C client), so that an edge can serve them unchanged
// (see PROTOCOL.md, "SimpleSgsProtocol"). It depends on the standard
// library alone (with edge/internal/fields, its body reader, which does too): a client (package sgsclient) links nothing of the server.
//
// The authoritative text is RedDwarf's SimpleSgsProtocol.java (sgs-shared,
// com/sun/sgs/protocol/simple/SimpleSgsProtocol.java, version 0x05, as in
// the dworkin/reddwarf repository, and the server's reading of it in
// sgs-server's impl/protocol/simple/SimpleSgsProtocolImpl.java). This
// package follows it:
//
//   - A message is a u16 big-endian length, then the opcode and the
//     content; the length counts the opcode and the content. A whole
//     message, length included, is at most [MaxMessageLength] (65,535)
//     bytes, so the length is at most 65,533 and an application payload
//     at most [MaxPayloadLength] (65,532) bytes.
//   - A String is a u16 byte length, then the string in modified UTF-8 as
//     java.io.DataOutput.writeUTF writes it: NUL as 0xC0 0x80, characters
//     outside the Basic Multilingual Plane as their two UTF-16 surrogates
//     of three bytes each, never a four-byte sequence. [AppendString] and
//     [ParseString] encode and decode it; decoding accepts exactly what
//     writeUTF writes (no raw NUL, no overlong form, no lone surrogate),
//     so that decoding and encoding again gives the same bytes.
//   - A ByteArray that ends the content is the rest of the message; one
//     that does not (a channel message's id) has a u16 length first.
//   - A port (LOGIN_REDIRECT, RELOCATE_NOTIFICATION) is a Java int: four
//     bytes, big-endian, signed.
//
// [ReadFrame] reads a message as a [Frame] (opcode and content) and
// [AppendFrame] writes one; [Decode] and [Encode] turn frames into the
// typed messages ([LoginRequest], [SessionMessage], ...) and back. A frame
// whose content does not match its opcode is [ErrMalformed]; an opcode
// the protocol does not define is [ErrUnknownOpcode]. Darkstar's server
// closes the connection on both.
package sgs
