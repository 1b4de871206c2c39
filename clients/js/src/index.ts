// @starbus/client: a client for the Starbus edge protocol (PROTOCOL.md)
// over WebSocket, for browsers and Node >= 20.

export {
  Client,
  type ClientOptions,
  type ClientState,
  type ClientEvents,
  type LoginInfo,
  type SessionMessage,
  type ChannelMessage,
  type ChannelNotice,
  type ReconnectingEvent,
  type ResumedEvent,
  type CloseEvent,
  type CloseReason,
  type WebSocketLike,
  type WebSocketConstructor,
} from "./client.js";
export * from "./codec.js";
export * from "./errors.js";
export {
  SessionState,
  type Delivery,
  type ReconnectOptions,
  defaultReconnect,
  backoffDelay,
  planAttempt,
  type Attempt,
  verdict,
  type Verdict,
  validChannel,
} from "./session.js";
export { Emitter, type Listener } from "./emitter.js";
