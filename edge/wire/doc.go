// Package wire is the codec of the Starbus client protocol (PROTOCOL.md):
// frames, their opcodes and bodies, the error codes of the one code table,
// and the WebSocket subprotocol's name. It depends on the standard library
// alone (with edge/internal/fields, its body reader, which does too), so
// that a client (package edge/client, or a game's own) links nothing of
// the server: no NATS, no JetStream, no state.
//
// On a stream transport (TCP) a frame is a u32 length, then the opcode and
// the body: [ReadFrame] and [AppendFrame]. On WebSocket a binary message
// is one frame without the length. [Encode] and [Decode] turn the typed
// frames ([Login], [Send], [Message], ...) into [Frame]s and back; a body
// that does not match its opcode is [ErrMalformed].
package wire
