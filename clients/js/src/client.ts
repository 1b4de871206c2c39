// Client: a Starbus session over WebSocket, with automatic reconnection.
// The state logic is session.ts's; this file does the sockets and timers.

import {
  type ClientFrame,
  type Frame,
  type LoginOKFrame,
  type ProtocolVersion,
  type UnknownFrame,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  Op,
  decodeFrame,
  encodeFrame,
  isUnknown,
} from "./codec.js";
import { Emitter } from "./emitter.js";
import { ConnectError, MalformedFrameError, NotConnectedError, ProtocolError } from "./errors.js";
import { type ReconnectOptions, SessionState, defaultReconnect, planAttempt, validChannel, verdict } from "./session.js";

/**
 * The part of the WebSocket API the client uses: the browser's WebSocket,
 * Node's (22 and later), and the `ws` package's all have it.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly protocol: string;
  // Handlers take any: each implementation has its own event types.
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor, such as globalThis.WebSocket or the `ws` package's. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Options of a {@link Client}. Times are in milliseconds. */
export interface ClientOptions {
  /**
   * The edge's WebSocket URL (ws://host:port/ws, or wss://), or several:
   * login tries them in order, reconnection goes round them, starting
   * with the one last used.
   */
  url: string | readonly string[];
  /** The WebSocket implementation; default globalThis.WebSocket (Node 20 has none: pass the `ws` package's). */
  WebSocket?: WebSocketConstructor;
  /** The protocol version to speak; 1, the only one so far. */
  version?: ProtocolVersion;
  /**
   * Automatic reconnection after a lost connection: true (default) with
   * the defaults of {@link defaultReconnect}, some of its fields, or false
   * for none (a lost connection then closes the client; resume() can
   * still resume the session within the server's grace period).
   */
  reconnect?: boolean | Partial<ReconnectOptions>;
  /** How long one connection may take to open and have its LOGIN or RECONNECT answered. Default 10000. */
  connectTimeout?: number;
  /**
   * Send a PING this often, and drop the connection (and reconnect) if
   * its PONG has not come back when the next one is due: this notices a
   * connection that died without closing. Default 0: off.
   */
  pingInterval?: number;
  /** The random source of the reconnection jitter, in [0, 1). Default Math.random. */
  random?: () => number;
}

/** Where a client is: see {@link Client.state}. */
export type ClientState = "idle" | "connecting" | "online" | "reconnecting" | "closed";

/** What LOGIN_OK said, and where. */
export interface LoginInfo {
  session: string;
  token: string;
  version: number;
  maxFrame: number;
  rate: number;
  url: string;
}

/** A message from the world to the session (MESSAGE). */
export interface SessionMessage {
  seq: bigint;
  payload: Uint8Array;
}

/** A message to a channel the session is in (CHANNEL_MESSAGE); seq 0 on a best-effort channel. */
export interface ChannelMessage {
  channel: string;
  seq: bigint;
  payload: Uint8Array;
}

/** The session joined or left a channel (CHANNEL_JOIN, CHANNEL_LEAVE). */
export interface ChannelNotice {
  channel: string;
  seq: bigint;
}

/** A reconnection attempt is about to be made, after delay. */
export interface ReconnectingEvent {
  /** 1 for the first attempt after the connection was lost. */
  attempt: number;
  delay: number;
  url: string;
  /** Why the connection was lost, or why the previous attempt failed. */
  error?: Error;
  /** When the connection was lost (Date.now()). */
  lostAt: number;
}

/** The session was resumed on a new connection; replayed messages follow. */
export interface ResumedEvent {
  session: string;
  url: string;
  attempts: number;
  /** Milliseconds without a connection. */
  downtime: number;
}

/**
 * Why a client closed:
 * - "logout": logout() was answered; the session is over.
 * - "closed": close() was called; the session waits on the server for its grace period.
 * - "expired": reconnection gave up after the grace period.
 * - "ended": the session is over on the server (bad-token): log in again.
 * - "taken-over": a RECONNECT on another connection took the session.
 * - "fatal": the server cannot serve this client (bad-version).
 * - "lost": the connection was lost and reconnection is off.
 */
export type CloseReason = "logout" | "closed" | "expired" | "ended" | "taken-over" | "fatal" | "lost";

export interface CloseEvent {
  reason: CloseReason;
  error?: Error;
}

/** The events of a {@link Client}, by name. */
export interface ClientEvents {
  message: SessionMessage;
  channelMessage: ChannelMessage;
  join: ChannelNotice;
  leave: ChannelNotice;
  /** An ERROR frame of the edge (rate-limited, ...) on a logged-in connection. */
  error: ProtocolError;
  reconnecting: ReconnectingEvent;
  resumed: ResumedEvent;
  close: CloseEvent;
}

const encoder = new TextEncoder();

/** A resumption in progress, for the resumed event. */
interface Resume {
  attempts: number;
  lostAt: number;
}

/** One WebSocket of the client, from opening to its end. */
class Conn {
  phase: "handshake" | "online" | "done" = "handshake";
  /** The ERROR frame just received, if the last frame was one: what a close right after it means. */
  lastError: ProtocolError | undefined;
  /** Settles the handshake: the LOGIN_OK, or why there is none. */
  settle: ((err: Error | undefined, f?: LoginOKFrame) => void) | undefined;
  /** Set for an automatic reconnection: the resumed event's figures. */
  resume: Resume | undefined;
  /** Whether the handshake is a RECONNECT (the session's seq and channels carry over). */
  reconnect = false;

  constructor(
    readonly ws: WebSocketLike,
    readonly url: string,
  ) {}

  send(b: Uint8Array): void {
    this.ws.send(b);
  }

  /** Detaches from the socket and closes it; no more events come from it. */
  close(code = 1000): void {
    this.phase = "done";
    const ws = this.ws;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {}; // `ws` throws on an error nobody listens to
    try {
      ws.close(code);
    } catch {
      // already closed
    }
  }
}

/** Converts a WebSocket message's data to bytes; undefined for text. */
function messageBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

function toBytes(p: Uint8Array | string): Uint8Array {
  return typeof p === "string" ? encoder.encode(p) : p;
}

/**
 * A Starbus session over WebSocket (PROTOCOL.md). Create it, listen to
 * its events, then log in:
 *
 * ```ts
 * const c = new Client({ url: "ws://127.0.0.1:8080/ws" });
 * c.on("message", (m) => console.log(m.seq, new TextDecoder().decode(m.payload)));
 * await c.login("ann", "pw");
 * c.send('{"op":"look"}');
 * ```
 *
 * A lost connection is resumed automatically (events "reconnecting",
 * then "resumed" or "close"): RECONNECT with the token and the last seq
 * processed, so the world's messages sent meanwhile arrive, none twice.
 */
export class Client extends Emitter<ClientEvents> {
  readonly #urls: readonly string[];
  readonly #WebSocket: WebSocketConstructor;
  readonly #version: ProtocolVersion;
  readonly #reconnect: ReconnectOptions | undefined;
  readonly #connectTimeout: number;
  readonly #pingInterval: number;
  readonly #random: () => number;

  #state: ClientState = "idle";
  #session = new SessionState();
  #conn: Conn | undefined;
  /** The connection whose LOGIN or RECONNECT is not answered yet. */
  #pending: Conn | undefined;
  #urlIndex = 0;
  /** Bumped by close() and every end: a wait or attempt of an older epoch stops. */
  #epoch = 0;
  #wake: (() => void) | undefined;
  #nonce = 0n;
  #pings = new Map<bigint, { sentAt: number; resolve: (rtt: number) => void; reject: (e: Error) => void }>();
  #keepalive: ReturnType<typeof setInterval> | undefined;
  #keepaliveNonce: bigint | undefined;
  #logout: { resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(opts: ClientOptions) {
    super();
    const urls = typeof opts.url === "string" ? [opts.url] : [...opts.url];
    if (urls.length === 0) throw new TypeError("starbus: ClientOptions.url: no URL");
    this.#urls = urls;
    const ws = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ws) {
      throw new TypeError("starbus: no global WebSocket here (Node 20): pass ClientOptions.WebSocket, e.g. the ws package's");
    }
    this.#WebSocket = ws;
    this.#version = opts.version ?? PROTOCOL_VERSION;
    if (this.#version !== PROTOCOL_VERSION) throw new RangeError(`starbus: protocol version ${this.#version} is not spoken by this client`);
    const rc = opts.reconnect ?? true;
    this.#reconnect = rc === false ? undefined : { ...defaultReconnect, ...(rc === true ? {} : rc) };
    this.#connectTimeout = opts.connectTimeout ?? 10_000;
    this.#pingInterval = opts.pingInterval ?? 0;
    this.#random = opts.random ?? Math.random;
  }

  /** "idle" (never logged in, or a login failed), "connecting", "online", "reconnecting", or "closed". */
  get state(): ClientState {
    return this.#state;
  }

  /** The session id ("" before login). */
  get session(): string {
    return this.#session.session;
  }

  /** The reconnect token (keep it secret): with {@link lastSeq}, what resume() needs. */
  get token(): string {
    return this.#session.token;
  }

  /** The last non-zero seq processed. */
  get lastSeq(): bigint {
    return this.#session.lastSeq;
  }

  /** The channels the session is in. */
  get channels(): ReadonlySet<string> {
    return this.#session.channels;
  }

  /** The server's limit on a frame (op + body), from LOGIN_OK. */
  get maxFrame(): number {
    return this.#session.maxFrame;
  }

  /** The server's limit on messages per second, from LOGIN_OK. */
  get rate(): number {
    return this.#session.rate;
  }

  /** The URL of the current (or last) connection. */
  get url(): string {
    return this.#urls[this.#urlIndex]!;
  }

  /**
   * Logs in as name: LOGIN on the first URL that connects. Rejects with a
   * ProtocolError for LOGIN_FAILED (its code says why: bad-credentials,
   * throttled, ...), or a ConnectError if no URL could be reached.
   */
  login(name: string, password: string): Promise<LoginInfo> {
    return this.#start(new SessionState(), { op: Op.Login, version: this.#version, name, password });
  }

  /**
   * Resumes a session known by its token (from an earlier client's
   * {@link token} and {@link lastSeq}, e.g. kept across a page reload):
   * RECONNECT, then the messages after lastSeq. Rejects with a
   * ProtocolError "bad-token" if the session is over.
   */
  resume(token: string, lastSeq: bigint): Promise<LoginInfo> {
    return this.#start(new SessionState({ token, lastSeq }), { op: Op.Reconnect, version: this.#version, token, lastSeq });
  }

  async #start(session: SessionState, hello: ClientFrame): Promise<LoginInfo> {
    if (this.#state !== "idle" && this.#state !== "closed") throw new Error(`starbus: cannot log in: client is ${this.#state}`);
    this.#state = "connecting";
    this.#session = session;
    const epoch = ++this.#epoch;
    let last: unknown;
    for (let i = 0; i < this.#urls.length; i++) {
      try {
        const f = await this.#connect(i, hello, undefined, this.#connectTimeout, epoch);
        return { session: f.session, token: f.token, version: f.version, maxFrame: f.maxFrame, rate: f.rate, url: this.#urls[i]! };
      } catch (err) {
        last = err;
        // An answer from an edge is the answer; only unreachable edges move on.
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
  send(payload: Uint8Array | string): void {
    this.#write({ op: Op.Send, payload: toBytes(payload) });
  }

  /** Sends one message to a channel the session is in (CHANNEL_SEND); the game decides whether it is forwarded. */
  sendChannel(channel: string, payload: Uint8Array | string): void {
    if (!validChannel(channel)) throw new TypeError(`starbus: channel ${JSON.stringify(channel)} is not a token of letters, digits, - and _`);
    this.#write({ op: Op.ChannelSend, channel, payload: toBytes(payload) });
  }

  /** PING; resolves with the round trip in milliseconds when the PONG comes. */
  ping(): Promise<number> {
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
  logout(): Promise<void> {
    if (this.#state !== "online" || !this.#conn) {
      const state = this.#state;
      this.close();
      return Promise.reject(new NotConnectedError(state));
    }
    const conn = this.#conn;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#logout = undefined;
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
        },
      };
      conn.send(encodeFrame({ op: Op.Logout }));
    });
  }

  /**
   * Closes the connection without logging out and stops reconnecting. The
   * session stays on the server for its grace period: resume() with
   * {@link token} and {@link lastSeq} takes it up again.
   */
  close(): void {
    if (this.#state === "idle" || this.#state === "closed") return;
    this.#finish("closed");
  }

  // The one place SEND and CHANNEL_SEND frames leave: protocol version 2
  // (numbered SENDs) numbers them here, keeps them until acknowledged, and
  // writes the unacknowledged ones again after a RECONNECT.
  #write(f: ClientFrame): void {
    const conn = this.#online();
    const b = encodeFrame(f);
    if (b.length > this.#session.maxFrame) throw new RangeError(`starbus: a frame of ${b.length} bytes is over the edge's max-frame ${this.#session.maxFrame}`);
    conn.send(b);
  }

  #online(): Conn {
    // readyState 1 is OPEN: a socket already closing takes nothing.
    if (this.#state !== "online" || !this.#conn || this.#conn.ws.readyState !== 1) throw new NotConnectedError(this.#state);
    return this.#conn;
  }

  /** Opens a WebSocket to url; rejects with ConnectError if it does not open within timeout. */
  #open(url: string, timeout: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
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
      ws.onerror = () => {}; // the close event follows
      ws.onclose = (e: { code?: number }) => {
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
  async #connect(i: number, hello: ClientFrame, resume: Resume | undefined, timeout: number, epoch: number): Promise<LoginOKFrame> {
    const url = this.#urls[i]!;
    const deadline = Date.now() + timeout;
    const conn = await this.#open(url, timeout);
    if (epoch !== this.#epoch) {
      conn.close();
      throw new ConnectError("client closed");
    }
    conn.resume = resume;
    conn.reconnect = hello.op === Op.Reconnect;
    this.#pending = conn;
    return new Promise<LoginOKFrame>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          conn.close();
          conn.settle?.(new ConnectError(`${url}: no answer to ${hello.op === Op.Login ? "LOGIN" : "RECONNECT"} in ${timeout} ms`));
        },
        Math.max(0, deadline - Date.now()),
      );
      conn.settle = (err, f) => {
        clearTimeout(timer);
        conn.settle = undefined;
        if (this.#pending === conn) this.#pending = undefined;
        if (f) {
          this.#urlIndex = i;
          resolve(f);
        } else {
          reject(err);
        }
      };
      conn.ws.onmessage = (e: { data: unknown }) => this.#message(conn, e.data);
      conn.ws.onclose = (e: { code?: number }) => this.#ended(conn, e?.code);
      conn.ws.onerror = () => {};
      conn.send(encodeFrame(hello));
    });
  }

  #message(conn: Conn, data: unknown): void {
    const b = messageBytes(data);
    if (!b) return; // a text message: the edge sends none
    let f: Frame | UnknownFrame;
    try {
      f = decodeFrame(b);
    } catch (err) {
      if (err instanceof MalformedFrameError) return; // nothing to answer: skip it
      throw err;
    }
    if (isUnknown(f)) return; // PROTOCOL.md: ignore unknown opcodes
    this.#frame(conn, f);
  }

  #frame(conn: Conn, f: Frame): void {
    if (conn.phase === "done") return;
    conn.lastError = undefined;
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
        this.#pending = undefined;
        this.#session.loggedIn(f, conn.reconnect);
        this.#startKeepalive();
        conn.settle?.(undefined, f);
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
        if (f.nonce === this.#keepaliveNonce) this.#keepaliveNonce = undefined;
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
        this.#logout = undefined;
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
        return; // client-to-server opcodes: not for a client
    }
  }

  /** The socket of conn closed (code: its close code, if any) or was given up. */
  #ended(conn: Conn, code?: number, cause?: Error): void {
    if (conn.phase === "done") return;
    const wasOnline = conn.phase === "online";
    const lastError = conn.lastError;
    conn.close();
    if (!wasOnline) {
      conn.settle?.(lastError ?? cause ?? new ConnectError(`${conn.url}: connection closed before an answer (close code ${code ?? "none"})`));
      return;
    }
    if (conn !== this.#conn) return;
    this.#conn = undefined;
    this.#stopKeepalive();
    this.#failPings(new ConnectError("connection lost"));
    // After an ERROR that closes, the WebSocket close code is 4000 + its code.
    const errCode = lastError?.code ?? (code !== undefined && code >= 4000 && code < 5000 ? code - 4000 : undefined);
    const why = lastError ?? cause ?? new ConnectError(`connection lost (close code ${code ?? "none"})`);
    if (this.#logout) {
      // Leaving anyway: no reconnection to a session being logged out.
      this.#logout.reject(new ConnectError("connection lost before LOGOUT_OK"));
      this.#logout = undefined;
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
  async #resume(cause: Error): Promise<void> {
    const opts = this.#reconnect!;
    this.#state = "reconnecting";
    const epoch = ++this.#epoch;
    const lostAt = Date.now();
    const first = this.#urlIndex;
    let error: Error = cause;
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
      const hello: ClientFrame = { op: Op.Reconnect, version: this.#version, token: this.#session.token, lastSeq: this.#session.lastSeq };
      try {
        await this.#connect(this.#urls.indexOf(plan.url), hello, { attempts: n + 1, lostAt }, Math.max(1, Math.min(this.#connectTimeout, remaining)), epoch);
        return; // online; #frame emitted "resumed"
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

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  #startKeepalive(): void {
    this.#stopKeepalive();
    if (this.#pingInterval <= 0) return;
    this.#keepalive = setInterval(() => {
      const conn = this.#conn;
      if (!conn) return;
      if (this.#keepaliveNonce !== undefined) {
        this.#ended(conn, undefined, new ConnectError(`no PONG within ${this.#pingInterval} ms`));
        return;
      }
      const nonce = ++this.#nonce;
      this.#keepaliveNonce = nonce;
      conn.send(encodeFrame({ op: Op.Ping, nonce }));
    }, this.#pingInterval);
  }

  #stopKeepalive(): void {
    if (this.#keepalive !== undefined) clearInterval(this.#keepalive);
    this.#keepalive = undefined;
    this.#keepaliveNonce = undefined;
  }

  #failPings(err: Error): void {
    for (const p of this.#pings.values()) p.reject(err);
    this.#pings.clear();
  }

  /** Ends the client: no connection, no attempts, the close event. */
  #finish(reason: CloseReason, error?: Error): void {
    this.#epoch++;
    this.#wake?.();
    this.#wake = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    conn?.close();
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.close();
    pending?.settle?.(new ConnectError("client closed"));
    this.#stopKeepalive();
    this.#failPings(new ConnectError(`client ${reason}`));
    this.#logout?.reject(new ConnectError(`client ${reason}`));
    this.#logout = undefined;
    const was = this.#state;
    this.#state = "closed";
    // A login that never got online rejects instead.
    if (was === "online" || was === "reconnecting") this.emit("close", error ? { reason, error } : { reason });
  }
}
