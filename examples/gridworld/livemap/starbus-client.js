// @starbus/client, the browser bundle: generated from clients/js/src by
// `npm run bundle` in clients/js. Do not edit; `npm test` checks it is fresh.

// src/errors.ts
var ErrorCode = {
  Malformed: 1,
  FrameTooLarge: 2,
  UnknownOpcode: 3,
  NotLoggedIn: 4,
  LoginTimeout: 5,
  RateLimited: 6,
  SlowConsumer: 7,
  BadCredentials: 8,
  BadVersion: 9,
  BadToken: 10,
  Internal: 11,
  AlreadyLoggedIn: 12,
  BadName: 13,
  RegistrationClosed: 14,
  ShuttingDown: 15,
  Unsupported: 16,
  Throttled: 17,
  OutOfOrder: 18,
  BadLastSeq: 19
};
var errorTable = [
  { code: 1, name: "malformed", closes: "no", meaning: "a body does not match its opcode" },
  { code: 2, name: "frame-too-large", closes: "yes", meaning: "frame over max-frame" },
  { code: 3, name: "unknown-opcode", closes: "no", meaning: "opcode not in PROTOCOL.md" },
  { code: 4, name: "not-logged-in", closes: "no", meaning: "a session frame before login" },
  { code: 5, name: "login-timeout", closes: "yes", meaning: "no LOGIN or RECONNECT in time" },
  { code: 6, name: "rate-limited", closes: "no", meaning: "over the rate limit; the message was dropped" },
  { code: 7, name: "slow-consumer", closes: "yes", meaning: "the client did not read its messages" },
  { code: 8, name: "bad-credentials", closes: "no", meaning: "wrong name or password" },
  { code: 9, name: "bad-version", closes: "yes", meaning: "protocol version not spoken here" },
  { code: 10, name: "bad-token", closes: "no", meaning: "reconnect token unknown or expired" },
  { code: 11, name: "internal", closes: "sometimes", meaning: "the server could not do it now; try again" },
  { code: 12, name: "already-logged-in", closes: "sometimes", meaning: "logged in already, or session taken over" },
  { code: 13, name: "bad-name", closes: "no", meaning: "name not allowed" },
  { code: 14, name: "registration-closed", closes: "no", meaning: "unknown name, and registration is closed" },
  { code: 15, name: "shutting-down", closes: "yes", meaning: "the edge is going away" },
  { code: 16, name: "unsupported", closes: "no", meaning: "a valid frame this edge does not serve" },
  { code: 17, name: "throttled", closes: "no", meaning: "too many failed logins; the reason says when to retry" },
  { code: 18, name: "out-of-order", closes: "yes", meaning: "version 2: a numbered send out of order" },
  { code: 19, name: "bad-last-seq", closes: "no", meaning: "a RECONNECT's last-seq beyond anything sent" }
];
var byCode = new Map(errorTable.map((e) => [e.code, e]));
function errorInfo(code) {
  return byCode.get(code);
}
function errorName(code) {
  return byCode.get(code)?.name ?? `code-${code}`;
}
var ProtocolError = class extends Error {
  code;
  codeName;
  reason;
  /** "error" for an ERROR frame, "login-failed" for LOGIN_FAILED. */
  frame;
  constructor(code, reason, frame = "error") {
    super(`starbus: ${errorName(code)}${reason ? ": " + reason : ""}`);
    this.name = "ProtocolError";
    this.code = code;
    this.codeName = errorName(code);
    this.reason = reason;
    this.frame = frame;
  }
};
var MalformedFrameError = class extends Error {
  constructor(message) {
    super(`starbus: malformed frame: ${message}`);
    this.name = "MalformedFrameError";
  }
};
var NotConnectedError = class extends Error {
  constructor(state) {
    super(`starbus: not connected (${state})`);
    this.name = "NotConnectedError";
  }
};
var ConnectError = class extends Error {
  constructor(message, options) {
    super(`starbus: ${message}`, options);
    this.name = "ConnectError";
  }
};

// src/codec.ts
var PROTOCOL_VERSION = 1;
var SUBPROTOCOL = "starbus.v1";
var HEADER_LENGTH = 4;
var Op = {
  Login: 1,
  Reconnect: 2,
  Send: 3,
  Logout: 4,
  Ping: 5,
  ChannelSend: 6,
  LoginOK: 129,
  LoginFailed: 130,
  Message: 131,
  ChannelJoin: 132,
  ChannelLeave: 133,
  ChannelMessage: 134,
  LogoutOK: 135,
  Error: 136,
  Pong: 137
};
var utf8 = new TextEncoder();
var utf8Strict = new TextDecoder("utf-8", { fatal: true });
var U32_MAX = 4294967295;
var U64_MAX = (1n << 64n) - 1n;
var Writer = class {
  parts = [];
  size = 0;
  push(b) {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
  u8(v) {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`starbus: u8 out of range: ${v}`);
    return this.push(Uint8Array.of(v));
  }
  u16(v) {
    if (!Number.isInteger(v) || v < 0 || v > 65535) throw new RangeError(`starbus: u16 out of range: ${v}`);
    return this.push(Uint8Array.of(v >>> 8, v & 255));
  }
  u32(v) {
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new RangeError(`starbus: u32 out of range: ${v}`);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v);
    return this.push(b);
  }
  u64(v) {
    if (v < 0n || v > U64_MAX) throw new RangeError(`starbus: u64 out of range: ${v}`);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v);
    return this.push(b);
  }
  str(s) {
    const b = utf8.encode(s);
    if (b.length > 65535) throw new RangeError(`starbus: string of ${b.length} bytes, over the 65,535 a str holds`);
    return this.u16(b.length).push(b);
  }
  rest(p) {
    return this.push(p);
  }
  bytes() {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
};
var Reader = class {
  constructor(b) {
    this.b = b;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  b;
  at = 0;
  view;
  need(n) {
    if (this.b.length - this.at < n) throw new MalformedFrameError("truncated body");
  }
  u8() {
    this.need(1);
    return this.view.getUint8(this.at++);
  }
  u16() {
    this.need(2);
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u32() {
    this.need(4);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  u64() {
    this.need(8);
    const v = this.view.getBigUint64(this.at);
    this.at += 8;
    return v;
  }
  str() {
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
  rest() {
    const v = this.b.slice(this.at);
    this.at = this.b.length;
    return v;
  }
  end() {
    const left = this.b.length - this.at;
    if (left !== 0) throw new MalformedFrameError(`${left} trailing bytes`);
  }
};
function toBytes(p) {
  return typeof p === "string" ? utf8.encode(p) : p;
}
function encodeFrame(f) {
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
      const never = f;
      throw new TypeError(`starbus: cannot encode ${JSON.stringify(never)}`);
    }
  }
  return w.bytes();
}
function decodeFrame(msg) {
  if (msg.length === 0) throw new MalformedFrameError("empty frame (no opcode)");
  const op = msg[0];
  const r = new Reader(msg.subarray(1));
  let f;
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
function isUnknown(f) {
  return "unknown" in f;
}
function withLength(frame) {
  if (frame.length === 0) throw new RangeError("starbus: a frame has at least its opcode");
  const out = new Uint8Array(HEADER_LENGTH + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length);
  out.set(frame, HEADER_LENGTH);
  return out;
}
var StreamDecoder = class {
  constructor(maxFrame = 65536) {
    this.maxFrame = maxFrame;
  }
  maxFrame;
  buf = new Uint8Array(0);
  /** Adds bytes and returns the frames they complete, in order. */
  push(chunk) {
    const b = new Uint8Array(this.buf.length + chunk.length);
    b.set(this.buf);
    b.set(chunk, this.buf.length);
    const out = [];
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
  get pending() {
    return this.buf.length;
  }
};

// src/emitter.ts
var Emitter = class {
  listeners = /* @__PURE__ */ new Map();
  /** Calls fn for every event of type; returns a function that stops it. */
  on(type, fn) {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, set = /* @__PURE__ */ new Set());
    set.add(fn);
    return () => this.off(type, fn);
  }
  /** Stops calling fn for events of type. */
  off(type, fn) {
    this.listeners.get(type)?.delete(fn);
  }
  /** Calls fn for the next event of type only. */
  once(type, fn) {
    const off = this.on(type, (e) => {
      off();
      fn(e);
    });
    return off;
  }
  emit(type, event) {
    const set = this.listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
};

// src/session.ts
var SessionState = class {
  session = "";
  token = "";
  version = 0;
  maxFrame = 0;
  rate = 0;
  /** The last non-zero seq processed: RECONNECT's last-seq. */
  lastSeq = 0n;
  /** The channels the session is in, by the JOIN and LEAVE notices processed. */
  channels = /* @__PURE__ */ new Set();
  constructor(init) {
    if (init?.token) this.token = init.token;
    if (init?.lastSeq) this.lastSeq = init.lastSeq;
  }
  /** Records a LOGIN_OK: a new session (login) or the same one resumed. */
  loggedIn(f, resumed) {
    if (!resumed) {
      this.lastSeq = 0n;
      this.channels.clear();
    }
    this.session = f.session;
    this.token = f.token;
    this.version = f.version;
    this.maxFrame = f.maxFrame;
    this.rate = f.rate;
  }
  /**
   * Reports whether d is new, and if so records it (its seq, and for a
   * JOIN or LEAVE the membership). A false answer means: skip it.
   */
  accept(d) {
    if (d.seq !== 0n) {
      if (d.seq <= this.lastSeq) return false;
      this.lastSeq = d.seq;
    }
    if (d.op === Op.ChannelJoin) this.channels.add(d.channel);
    if (d.op === Op.ChannelLeave) this.channels.delete(d.channel);
    return true;
  }
};
var defaultReconnect = { grace: 3e4, initialDelay: 100, maxDelay: 5e3 };
function backoffDelay(n, opts, random) {
  const step = Math.min(opts.maxDelay, opts.initialDelay * 2 ** Math.min(n, 30));
  return Math.round(step / 2 + step / 2 * random());
}
function planAttempt(n, lostAt, now, urls, first, opts, random) {
  const delay = backoffDelay(n, opts, random);
  if (now + delay - lostAt >= opts.grace) return { giveUp: true };
  return { giveUp: false, delay, url: urls[(first + n) % urls.length] };
}
function verdict(code) {
  switch (code) {
    case ErrorCode.BadToken:
      return "ended";
    case ErrorCode.AlreadyLoggedIn:
      return "taken-over";
    case ErrorCode.BadVersion:
    case ErrorCode.BadLastSeq:
      return "fatal";
    default:
      return "retry";
  }
}
function validChannel(name) {
  return /^[A-Za-z0-9_-]+$/.test(name);
}

// src/client.ts
var encoder = new TextEncoder();
var Conn = class {
  constructor(ws, url) {
    this.ws = ws;
    this.url = url;
  }
  ws;
  url;
  phase = "handshake";
  /** The ERROR frame just received, if the last frame was one: what a close right after it means. */
  lastError;
  /** Settles the handshake: the LOGIN_OK, or why there is none. */
  settle;
  /** Set for an automatic reconnection: the resumed event's figures. */
  resume;
  /** Whether the handshake is a RECONNECT (the session's seq and channels carry over). */
  reconnect = false;
  send(b) {
    this.ws.send(b);
  }
  /** Detaches from the socket and closes it; no more events come from it. */
  close(code = 1e3) {
    this.phase = "done";
    const ws = this.ws;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {
    };
    try {
      ws.close(code);
    } catch {
    }
  }
};
function messageBytes(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return void 0;
}
function toBytes2(p) {
  return typeof p === "string" ? encoder.encode(p) : p;
}
var Client = class extends Emitter {
  #urls;
  #WebSocket;
  #version;
  #reconnect;
  #connectTimeout;
  #pingInterval;
  #random;
  #state = "idle";
  #session = new SessionState();
  #conn;
  /** The connection whose LOGIN or RECONNECT is not answered yet. */
  #pending;
  #urlIndex = 0;
  /** Bumped by close() and every end: a wait or attempt of an older epoch stops. */
  #epoch = 0;
  #wake;
  #nonce = 0n;
  #pings = /* @__PURE__ */ new Map();
  #keepalive;
  #keepaliveNonce;
  #logout;
  constructor(opts) {
    super();
    const urls = typeof opts.url === "string" ? [opts.url] : [...opts.url];
    if (urls.length === 0) throw new TypeError("starbus: ClientOptions.url: no URL");
    this.#urls = urls;
    const ws = opts.WebSocket ?? globalThis.WebSocket;
    if (!ws) {
      throw new TypeError("starbus: no global WebSocket here (Node 20): pass ClientOptions.WebSocket, e.g. the ws package's");
    }
    this.#WebSocket = ws;
    this.#version = opts.version ?? PROTOCOL_VERSION;
    if (this.#version !== PROTOCOL_VERSION) throw new RangeError(`starbus: protocol version ${this.#version} is not spoken by this client`);
    const rc = opts.reconnect ?? true;
    this.#reconnect = rc === false ? void 0 : { ...defaultReconnect, ...rc === true ? {} : rc };
    this.#connectTimeout = opts.connectTimeout ?? 1e4;
    this.#pingInterval = opts.pingInterval ?? 0;
    this.#random = opts.random ?? Math.random;
  }
  /** "idle" (never logged in, or a login failed), "connecting", "online", "reconnecting", or "closed". */
  get state() {
    return this.#state;
  }
  /** The session id ("" before login). */
  get session() {
    return this.#session.session;
  }
  /** The reconnect token (keep it secret): with {@link lastSeq}, what resume() needs. */
  get token() {
    return this.#session.token;
  }
  /** The last non-zero seq processed. */
  get lastSeq() {
    return this.#session.lastSeq;
  }
  /** The channels the session is in. */
  get channels() {
    return this.#session.channels;
  }
  /** The server's limit on a frame (op + body), from LOGIN_OK. */
  get maxFrame() {
    return this.#session.maxFrame;
  }
  /** The server's limit on messages per second, from LOGIN_OK. */
  get rate() {
    return this.#session.rate;
  }
  /** The URL of the current (or last) connection. */
  get url() {
    return this.#urls[this.#urlIndex];
  }
  /**
   * Logs in as name: LOGIN on the first URL that connects. Rejects with a
   * ProtocolError for LOGIN_FAILED (its code says why: bad-credentials,
   * throttled, ...), or a ConnectError if no URL could be reached.
   */
  login(name, password) {
    return this.#start(new SessionState(), { op: Op.Login, version: this.#version, name, password });
  }
  /**
   * Resumes a session known by its token (from an earlier client's
   * {@link token} and {@link lastSeq}, e.g. kept across a page reload):
   * RECONNECT, then the messages after lastSeq. Rejects with a
   * ProtocolError "bad-token" if the session is over.
   */
  resume(token, lastSeq) {
    return this.#start(new SessionState({ token, lastSeq }), { op: Op.Reconnect, version: this.#version, token, lastSeq });
  }
  async #start(session, hello) {
    if (this.#state !== "idle" && this.#state !== "closed") throw new Error(`starbus: cannot log in: client is ${this.#state}`);
    this.#state = "connecting";
    this.#session = session;
    const epoch = ++this.#epoch;
    let last;
    for (let i = 0; i < this.#urls.length; i++) {
      try {
        const f = await this.#connect(i, hello, void 0, this.#connectTimeout, epoch);
        return { session: f.session, token: f.token, version: f.version, maxFrame: f.maxFrame, rate: f.rate, url: this.#urls[i] };
      } catch (err) {
        last = err;
        if (!(err instanceof ConnectError) || epoch !== this.#epoch) break;
      }
    }
    if (epoch === this.#epoch) this.#state = "idle";
    if (last instanceof ConnectError || last instanceof ProtocolError) throw last;
    throw new ConnectError("no edge reachable", { cause: last });
  }
  /**
   * Sends one message to the world (SEND): one event for the game. A
   * string is sent as UTF-8. Throws NotConnectedError unless online:
   * protocol version 1 does not number SENDs, so a SEND is not kept for a
   * later connection (one written just before a connection is lost may be
   * lost with it).
   */
  send(payload) {
    this.#write({ op: Op.Send, payload: toBytes2(payload) });
  }
  /** Sends one message to a channel the session is in (CHANNEL_SEND); the game decides whether it is forwarded. */
  sendChannel(channel, payload) {
    if (!validChannel(channel)) throw new TypeError(`starbus: channel ${JSON.stringify(channel)} is not a token of letters, digits, - and _`);
    this.#write({ op: Op.ChannelSend, channel, payload: toBytes2(payload) });
  }
  /** PING; resolves with the round trip in milliseconds when the PONG comes. */
  ping() {
    const conn = this.#online();
    const nonce = ++this.#nonce;
    return new Promise((resolve, reject) => {
      this.#pings.set(nonce, { sentAt: Date.now(), resolve, reject });
      conn.send(encodeFrame({ op: Op.Ping, nonce }));
    });
  }
  /**
   * Ends the session (LOGOUT; resolves on LOGOUT_OK). Not online (e.g.
   * reconnecting), it closes the client and rejects with
   * NotConnectedError: the session then ends on the server when its grace
   * period runs out.
   */
  logout() {
    if (this.#state !== "online" || !this.#conn) {
      const state = this.#state;
      this.close();
      return Promise.reject(new NotConnectedError(state));
    }
    const conn = this.#conn;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#logout = void 0;
        reject(new ConnectError(`no LOGOUT_OK in ${this.#connectTimeout} ms`));
        this.#finish("closed");
      }, this.#connectTimeout);
      this.#logout = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        }
      };
      conn.send(encodeFrame({ op: Op.Logout }));
    });
  }
  /**
   * Closes the connection without logging out and stops reconnecting. The
   * session stays on the server for its grace period: resume() with
   * {@link token} and {@link lastSeq} takes it up again.
   */
  close() {
    if (this.#state === "idle" || this.#state === "closed") return;
    this.#finish("closed");
  }
  // The one place SEND and CHANNEL_SEND frames leave: protocol version 2
  // (numbered SENDs) numbers them here, keeps them until acknowledged, and
  // writes the unacknowledged ones again after a RECONNECT.
  #write(f) {
    const conn = this.#online();
    const b = encodeFrame(f);
    if (b.length > this.#session.maxFrame) throw new RangeError(`starbus: a frame of ${b.length} bytes is over the edge's max-frame ${this.#session.maxFrame}`);
    conn.send(b);
  }
  #online() {
    if (this.#state !== "online" || !this.#conn || this.#conn.ws.readyState !== 1) throw new NotConnectedError(this.#state);
    return this.#conn;
  }
  /** Opens a WebSocket to url; rejects with ConnectError if it does not open within timeout. */
  #open(url, timeout) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this.#WebSocket(url, SUBPROTOCOL);
      } catch (err) {
        reject(new ConnectError(`${url}: ${String(err)}`, { cause: err }));
        return;
      }
      ws.binaryType = "arraybuffer";
      const timer = setTimeout(() => {
        new Conn(ws, url).close();
        reject(new ConnectError(`${url}: not connected in ${timeout} ms`));
      }, timeout);
      ws.onerror = () => {
      };
      ws.onclose = (e) => {
        clearTimeout(timer);
        reject(new ConnectError(`${url}: connection failed (close code ${e?.code ?? "none"})`));
      };
      ws.onopen = () => {
        clearTimeout(timer);
        if (ws.protocol !== "" && ws.protocol !== SUBPROTOCOL) {
          new Conn(ws, url).close();
          reject(new ConnectError(`${url}: the server chose subprotocol ${ws.protocol}`));
          return;
        }
        resolve(new Conn(ws, url));
      };
    });
  }
  /**
   * Connects to urls[i] and sends hello (LOGIN or RECONNECT); resolves
   * with LOGIN_OK, by which the connection is the client's and the client
   * online (set in #frame, before any frame after LOGIN_OK is handled).
   */
  async #connect(i, hello, resume, timeout, epoch) {
    const url = this.#urls[i];
    const deadline = Date.now() + timeout;
    const conn = await this.#open(url, timeout);
    if (epoch !== this.#epoch) {
      conn.close();
      throw new ConnectError("client closed");
    }
    conn.resume = resume;
    conn.reconnect = hello.op === Op.Reconnect;
    this.#pending = conn;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          conn.close();
          conn.settle?.(new ConnectError(`${url}: no answer to ${hello.op === Op.Login ? "LOGIN" : "RECONNECT"} in ${timeout} ms`));
        },
        Math.max(0, deadline - Date.now())
      );
      conn.settle = (err, f) => {
        clearTimeout(timer);
        conn.settle = void 0;
        if (this.#pending === conn) this.#pending = void 0;
        if (f) {
          this.#urlIndex = i;
          resolve(f);
        } else {
          reject(err);
        }
      };
      conn.ws.onmessage = (e) => this.#message(conn, e.data);
      conn.ws.onclose = (e) => this.#ended(conn, e?.code);
      conn.ws.onerror = () => {
      };
      conn.send(encodeFrame(hello));
    });
  }
  #message(conn, data) {
    const b = messageBytes(data);
    if (!b) return;
    let f;
    try {
      f = decodeFrame(b);
    } catch (err) {
      if (err instanceof MalformedFrameError) return;
      throw err;
    }
    if (isUnknown(f)) return;
    this.#frame(conn, f);
  }
  #frame(conn, f) {
    if (conn.phase === "done") return;
    conn.lastError = void 0;
    switch (f.op) {
      case Op.LoginOK:
        if (conn.phase !== "handshake") return;
        if (f.version !== this.#version) {
          conn.close();
          conn.settle?.(new ConnectError(`the edge answered version ${f.version}, not ${this.#version}`));
          return;
        }
        conn.phase = "online";
        this.#conn = conn;
        this.#state = "online";
        this.#pending = void 0;
        this.#session.loggedIn(f, conn.reconnect);
        this.#startKeepalive();
        conn.settle?.(void 0, f);
        if (conn.resume) {
          this.emit("resumed", { session: f.session, url: conn.url, attempts: conn.resume.attempts, downtime: Date.now() - conn.resume.lostAt });
        }
        return;
      case Op.LoginFailed:
        if (conn.phase !== "handshake") return;
        conn.close();
        conn.settle?.(new ProtocolError(f.code, f.reason, "login-failed"));
        return;
      case Op.Error: {
        const err = new ProtocolError(f.code, f.reason);
        conn.lastError = err;
        if (conn.phase === "online") this.emit("error", err);
        return;
      }
      case Op.Pong: {
        if (f.nonce === this.#keepaliveNonce) this.#keepaliveNonce = void 0;
        const p = this.#pings.get(f.nonce);
        if (p) {
          this.#pings.delete(f.nonce);
          p.resolve(Date.now() - p.sentAt);
        }
        return;
      }
      case Op.LogoutOK:
        if (conn.phase !== "online") return;
        this.#logout?.resolve();
        this.#logout = void 0;
        this.#finish("logout");
        return;
      case Op.Message:
      case Op.ChannelJoin:
      case Op.ChannelLeave:
      case Op.ChannelMessage:
        if (conn.phase !== "online" || !this.#session.accept(f)) return;
        switch (f.op) {
          case Op.Message:
            this.emit("message", { seq: f.seq, payload: f.payload });
            break;
          case Op.ChannelMessage:
            this.emit("channelMessage", { channel: f.channel, seq: f.seq, payload: f.payload });
            break;
          case Op.ChannelJoin:
            this.emit("join", { channel: f.channel, seq: f.seq });
            break;
          case Op.ChannelLeave:
            this.emit("leave", { channel: f.channel, seq: f.seq });
            break;
        }
        return;
      default:
        return;
    }
  }
  /** The socket of conn closed (code: its close code, if any) or was given up. */
  #ended(conn, code, cause) {
    if (conn.phase === "done") return;
    const wasOnline = conn.phase === "online";
    const lastError = conn.lastError;
    conn.close();
    if (!wasOnline) {
      conn.settle?.(lastError ?? cause ?? new ConnectError(`${conn.url}: connection closed before an answer (close code ${code ?? "none"})`));
      return;
    }
    if (conn !== this.#conn) return;
    this.#conn = void 0;
    this.#stopKeepalive();
    this.#failPings(new ConnectError("connection lost"));
    const errCode = lastError?.code ?? (code !== void 0 && code >= 4e3 && code < 5e3 ? code - 4e3 : void 0);
    const why = lastError ?? cause ?? new ConnectError(`connection lost (close code ${code ?? "none"})`);
    if (this.#logout) {
      this.#logout.reject(new ConnectError("connection lost before LOGOUT_OK"));
      this.#logout = void 0;
      this.#finish("closed", why);
      return;
    }
    const v = verdict(errCode);
    if (v === "retry" && this.#reconnect) {
      void this.#resume(why);
      return;
    }
    this.#finish(v === "retry" ? "lost" : v, why);
  }
  /** Automatic reconnection: attempts until one resumes the session, the session is over, or the grace period is. */
  async #resume(cause) {
    const opts = this.#reconnect;
    this.#state = "reconnecting";
    const epoch = ++this.#epoch;
    const lostAt = Date.now();
    const first = this.#urlIndex;
    let error = cause;
    for (let n = 0; ; n++) {
      const plan = planAttempt(n, lostAt, Date.now(), this.#urls, first, opts, this.#random);
      if (plan.giveUp) {
        this.#finish("expired", error);
        return;
      }
      this.emit("reconnecting", { attempt: n + 1, delay: plan.delay, url: plan.url, error, lostAt });
      await this.#sleep(plan.delay);
      if (epoch !== this.#epoch) return;
      const remaining = opts.grace - (Date.now() - lostAt);
      const hello = { op: Op.Reconnect, version: this.#version, token: this.#session.token, lastSeq: this.#session.lastSeq };
      try {
        await this.#connect(this.#urls.indexOf(plan.url), hello, { attempts: n + 1, lostAt }, Math.max(1, Math.min(this.#connectTimeout, remaining)), epoch);
        return;
      } catch (err) {
        if (epoch !== this.#epoch) return;
        error = err instanceof Error ? err : new Error(String(err));
        if (err instanceof ProtocolError) {
          const v = verdict(err.code);
          if (v !== "retry") {
            this.#finish(v, err);
            return;
          }
        }
      }
    }
  }
  #sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
  #startKeepalive() {
    this.#stopKeepalive();
    if (this.#pingInterval <= 0) return;
    this.#keepalive = setInterval(() => {
      const conn = this.#conn;
      if (!conn) return;
      if (this.#keepaliveNonce !== void 0) {
        this.#ended(conn, void 0, new ConnectError(`no PONG within ${this.#pingInterval} ms`));
        return;
      }
      const nonce = ++this.#nonce;
      this.#keepaliveNonce = nonce;
      conn.send(encodeFrame({ op: Op.Ping, nonce }));
    }, this.#pingInterval);
  }
  #stopKeepalive() {
    if (this.#keepalive !== void 0) clearInterval(this.#keepalive);
    this.#keepalive = void 0;
    this.#keepaliveNonce = void 0;
  }
  #failPings(err) {
    for (const p of this.#pings.values()) p.reject(err);
    this.#pings.clear();
  }
  /** Ends the client: no connection, no attempts, the close event. */
  #finish(reason, error) {
    this.#epoch++;
    this.#wake?.();
    this.#wake = void 0;
    const conn = this.#conn;
    this.#conn = void 0;
    conn?.close();
    const pending = this.#pending;
    this.#pending = void 0;
    pending?.close();
    pending?.settle?.(new ConnectError("client closed"));
    this.#stopKeepalive();
    this.#failPings(new ConnectError(`client ${reason}`));
    this.#logout?.reject(new ConnectError(`client ${reason}`));
    this.#logout = void 0;
    const was = this.#state;
    this.#state = "closed";
    if (was === "online" || was === "reconnecting") this.emit("close", error ? { reason, error } : { reason });
  }
};
export {
  Client,
  ConnectError,
  Emitter,
  ErrorCode,
  HEADER_LENGTH,
  MalformedFrameError,
  NotConnectedError,
  Op,
  PROTOCOL_VERSION,
  ProtocolError,
  SUBPROTOCOL,
  SessionState,
  StreamDecoder,
  backoffDelay,
  decodeFrame,
  defaultReconnect,
  encodeFrame,
  errorInfo,
  errorName,
  errorTable,
  isUnknown,
  planAttempt,
  validChannel,
  verdict,
  withLength
};
