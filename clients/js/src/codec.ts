// The frame codec of PROTOCOL.md: typed frames in both directions, their
// encoding (op u8 + body; big-endian integers; str = u16 length + UTF-8;
// payload = the rest), and the u32 length prefix of stream transports.
// Pure functions, no I/O.

import { MalformedFrameError } from "./errors.js";

/** The protocol version this package speaks (PROTOCOL.md is version 1). */
export const PROTOCOL_VERSION = 1;

/** The versions a client may ask for. Version 2 (numbered SENDs) is to come. */
export type ProtocolVersion = 1;

/** The WebSocket subprotocol a client offers in its handshake. */
export const SUBPROTOCOL = "starbus.v1";

/** The length prefix of a frame on a stream transport (TCP), in bytes. */
export const HEADER_LENGTH = 4;

/** Opcodes. Client to server below 0x80, server to client from 0x80. */
export const Op = {
  Login: 0x01,
  Reconnect: 0x02,
  Send: 0x03,
  Logout: 0x04,
  Ping: 0x05,
  ChannelSend: 0x06,

  LoginOK: 0x81,
  LoginFailed: 0x82,
  Message: 0x83,
  ChannelJoin: 0x84,
  ChannelLeave: 0x85,
  ChannelMessage: 0x86,
  LogoutOK: 0x87,
  Error: 0x88,
  Pong: 0x89,
} as const;

export type Op = (typeof Op)[keyof typeof Op];

// Client to server.
export interface LoginFrame { op: typeof Op.Login; version: number; name: string; password: string }
export interface ReconnectFrame { op: typeof Op.Reconnect; version: number; token: string; lastSeq: bigint }
export interface SendFrame { op: typeof Op.Send; payload: Uint8Array }
export interface LogoutFrame { op: typeof Op.Logout }
export interface PingFrame { op: typeof Op.Ping; nonce: bigint }
export interface ChannelSendFrame { op: typeof Op.ChannelSend; channel: string; payload: Uint8Array }

// Server to client.
export interface LoginOKFrame {
  op: typeof Op.LoginOK;
  version: number;
  session: string;
  token: string;
  maxFrame: number;
  rate: number;
}
export interface LoginFailedFrame { op: typeof Op.LoginFailed; code: number; reason: string }
export interface MessageFrame { op: typeof Op.Message; seq: bigint; payload: Uint8Array }
export interface ChannelJoinFrame { op: typeof Op.ChannelJoin; seq: bigint; channel: string }
export interface ChannelLeaveFrame { op: typeof Op.ChannelLeave; seq: bigint; channel: string }
export interface ChannelMessageFrame { op: typeof Op.ChannelMessage; channel: string; seq: bigint; payload: Uint8Array }
export interface LogoutOKFrame { op: typeof Op.LogoutOK }
export interface ErrorFrame { op: typeof Op.Error; code: number; reason: string }
export interface PongFrame { op: typeof Op.Pong; nonce: bigint }

/** A frame of an opcode this codec does not know: a client ignores it. */
export interface UnknownFrame { op: number; unknown: true; body: Uint8Array }

export type ClientFrame = LoginFrame | ReconnectFrame | SendFrame | LogoutFrame | PingFrame | ChannelSendFrame;
export type ServerFrame =
  | LoginOKFrame
  | LoginFailedFrame
  | MessageFrame
  | ChannelJoinFrame
  | ChannelLeaveFrame
  | ChannelMessageFrame
  | LogoutOKFrame
  | ErrorFrame
  | PongFrame;
export type Frame = ClientFrame | ServerFrame;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;

/** Builds a body field by field. */
class Writer {
  private parts: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`starbus: u8 out of range: ${v}`);
    return this.push(Uint8Array.of(v));
  }

  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`starbus: u16 out of range: ${v}`);
    return this.push(Uint8Array.of(v >>> 8, v & 0xff));
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new RangeError(`starbus: u32 out of range: ${v}`);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v);
    return this.push(b);
  }

  u64(v: bigint): this {
    if (v < 0n || v > U64_MAX) throw new RangeError(`starbus: u64 out of range: ${v}`);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v);
    return this.push(b);
  }

  str(s: string): this {
    const b = utf8.encode(s);
    if (b.length > 0xffff) throw new RangeError(`starbus: string of ${b.length} bytes, over the 65,535 a str holds`);
    return this.u16(b.length).push(b);
  }

  rest(p: Uint8Array): this {
    return this.push(p);
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Reads a body field by field; throws MalformedFrameError when it runs short. */
class Reader {
  private at = 0;
  private readonly view: DataView;

  constructor(private readonly b: Uint8Array) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  private need(n: number): void {
    if (this.b.length - this.at < n) throw new MalformedFrameError("truncated body");
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.at++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.at);
    this.at += 8;
    return v;
  }

  str(): string {
    const n = this.u16();
    this.need(n);
    const v = this.b.subarray(this.at, this.at + n);
    this.at += n;
    try {
      return utf8Strict.decode(v);
    } catch {
      throw new MalformedFrameError("string is not UTF-8");
    }
  }

  /** The remaining bytes (a copy, so the frame does not pin the message). */
  rest(): Uint8Array {
    const v = this.b.slice(this.at);
    this.at = this.b.length;
    return v;
  }

  end(): void {
    const left = this.b.length - this.at;
    if (left !== 0) throw new MalformedFrameError(`${left} trailing bytes`);
  }
}

function toBytes(p: Uint8Array | string): Uint8Array {
  return typeof p === "string" ? utf8.encode(p) : p;
}

/**
 * Encodes a frame as its opcode and body: one WebSocket message, or what
 * follows the length prefix on a stream (see {@link withLength}).
 */
export function encodeFrame(f: Frame): Uint8Array {
  const w = new Writer().u8(f.op);
  switch (f.op) {
    case Op.Login:
      w.u8(f.version).str(f.name).str(f.password);
      break;
    case Op.Reconnect:
      w.u8(f.version).str(f.token).u64(f.lastSeq);
      break;
    case Op.Send:
      w.rest(toBytes(f.payload));
      break;
    case Op.Logout:
    case Op.LogoutOK:
      break;
    case Op.Ping:
    case Op.Pong:
      w.u64(f.nonce);
      break;
    case Op.ChannelSend:
      w.str(f.channel).rest(toBytes(f.payload));
      break;
    case Op.LoginOK:
      w.u8(f.version).str(f.session).str(f.token).u32(f.maxFrame).u32(f.rate);
      break;
    case Op.LoginFailed:
    case Op.Error:
      w.u16(f.code).str(f.reason);
      break;
    case Op.Message:
      w.u64(f.seq).rest(f.payload);
      break;
    case Op.ChannelJoin:
    case Op.ChannelLeave:
      w.u64(f.seq).str(f.channel);
      break;
    case Op.ChannelMessage:
      w.str(f.channel).u64(f.seq).rest(f.payload);
      break;
    default: {
      const never: never = f;
      throw new TypeError(`starbus: cannot encode ${JSON.stringify(never)}`);
    }
  }
  return w.bytes();
}

/**
 * Decodes one frame (op u8 + body, as one WebSocket message holds it).
 * A body that does not match its opcode throws MalformedFrameError, as
 * does an empty message; an unknown opcode gives an {@link UnknownFrame}.
 */
export function decodeFrame(msg: Uint8Array): Frame | UnknownFrame {
  if (msg.length === 0) throw new MalformedFrameError("empty frame (no opcode)");
  const op = msg[0]!;
  const r = new Reader(msg.subarray(1));
  let f: Frame;
  switch (op) {
    case Op.Login:
      f = { op, version: r.u8(), name: r.str(), password: r.str() };
      break;
    case Op.Reconnect:
      f = { op, version: r.u8(), token: r.str(), lastSeq: r.u64() };
      break;
    case Op.Send:
      f = { op, payload: r.rest() };
      break;
    case Op.Logout:
    case Op.LogoutOK:
      f = { op };
      break;
    case Op.Ping:
    case Op.Pong:
      f = { op, nonce: r.u64() };
      break;
    case Op.ChannelSend:
      f = { op, channel: r.str(), payload: r.rest() };
      break;
    case Op.LoginOK:
      f = { op, version: r.u8(), session: r.str(), token: r.str(), maxFrame: r.u32(), rate: r.u32() };
      break;
    case Op.LoginFailed:
    case Op.Error:
      f = { op, code: r.u16(), reason: r.str() };
      break;
    case Op.Message:
      f = { op, seq: r.u64(), payload: r.rest() };
      break;
    case Op.ChannelJoin:
    case Op.ChannelLeave:
      f = { op, seq: r.u64(), channel: r.str() };
      break;
    case Op.ChannelMessage:
      f = { op, channel: r.str(), seq: r.u64(), payload: r.rest() };
      break;
    default:
      return { op, unknown: true, body: msg.slice(1) };
  }
  r.end();
  return f;
}

/** Reports whether f is a frame of an opcode the codec does not know. */
export function isUnknown(f: Frame | UnknownFrame): f is UnknownFrame {
  return "unknown" in f;
}

/** Prefixes an encoded frame with its u32 big-endian length, for a stream transport. */
export function withLength(frame: Uint8Array): Uint8Array {
  if (frame.length === 0) throw new RangeError("starbus: a frame has at least its opcode");
  const out = new Uint8Array(HEADER_LENGTH + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length);
  out.set(frame, HEADER_LENGTH);
  return out;
}

/**
 * Splits a byte stream (TCP) into frames: push the bytes as they come,
 * take the frames (op + body) that are complete. A length of 0 is a
 * malformed frame that the stream survives; a length over maxFrame
 * throws, and the stream cannot be resynchronised after it.
 */
export class StreamDecoder {
  private buf: Uint8Array = new Uint8Array(0);

  constructor(private readonly maxFrame: number = 65536) {}

  /** Adds bytes and returns the frames they complete, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    const b = new Uint8Array(this.buf.length + chunk.length);
    b.set(this.buf);
    b.set(chunk, this.buf.length);
    const out: Uint8Array[] = [];
    let at = 0;
    while (b.length - at >= HEADER_LENGTH) {
      const n = new DataView(b.buffer, at, HEADER_LENGTH).getUint32(0);
      if (n > this.maxFrame) throw new RangeError(`starbus: frame of ${n} bytes, limit ${this.maxFrame}`);
      if (b.length - at - HEADER_LENGTH < n) break;
      out.push(b.slice(at + HEADER_LENGTH, at + HEADER_LENGTH + n));
      at += HEADER_LENGTH + n;
    }
    this.buf = b.slice(at);
    return out;
  }

  /** Bytes of an incomplete frame still held. */
  get pending(): number {
    return this.buf.length;
  }
}
