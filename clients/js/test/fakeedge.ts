// A scripted edge for the client's tests: a WebSocket server on loopback
// that speaks PROTOCOL.md's frames, keeps one session's outbox and
// replays it on RECONNECT, and lets a test drop, refuse or misbehave.

import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";

import { type ClientFrame, type Frame, type ServerFrame, Op, SUBPROTOCOL, decodeFrame, encodeFrame, isUnknown } from "../src/index.js";

export interface FakeOptions {
  /** Answer to LOGIN: LOGIN_OK (default), or a LOGIN_FAILED code. */
  loginFails?: number;
  /** Answer every RECONNECT with LOGIN_FAILED of this code. */
  reconnectFails?: number;
  /** Replay from this many seqs before the client's last-seq too (to check the client skips them). */
  overlap?: number;
  /** Do not answer PINGs. */
  silent?: boolean;
  /** Drop the connection on LOGOUT, without LOGOUT_OK. */
  logoutDrops?: boolean;
  maxFrame?: number;
}

export class FakeEdge {
  readonly wss: WebSocketServer;
  readonly url: string;
  /** Every frame received, with the connection's number. */
  readonly received: { conn: number; frame: Frame }[] = [];
  /** What the session was sent (seq > 0 ones are kept for replay). */
  readonly outbox: ServerFrame[] = [];
  /** The RECONNECT frames, in order. */
  readonly reconnects: { token: string; lastSeq: bigint }[] = [];
  current: WebSocket | undefined;
  opts: FakeOptions;
  private conns = 0;
  private seq = 0n;
  private waiters: (() => void)[] = [];

  private constructor(wss: WebSocketServer, opts: FakeOptions) {
    this.wss = wss;
    this.opts = opts;
    this.url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`;
    wss.on("connection", (ws) => this.serve(ws));
  }

  static start(opts: FakeOptions = {}): Promise<FakeEdge> {
    return new Promise((resolve) => {
      const wss = new WebSocketServer({
        host: "127.0.0.1",
        port: 0,
        handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
      });
      wss.on("listening", () => resolve(new FakeEdge(wss, opts)));
    });
  }

  private write(ws: WebSocket, f: ServerFrame): void {
    ws.send(encodeFrame(f));
  }

  /** Sends a delivery with the next seq (or seq 0 for best effort), to the connection if any. */
  deliver(f: { op: typeof Op.Message; payload: string } | { op: typeof Op.ChannelMessage | typeof Op.ChannelJoin | typeof Op.ChannelLeave; channel: string; payload?: string; bestEffort?: boolean }): bigint {
    const bestEffort = "bestEffort" in f && f.bestEffort;
    const seq = bestEffort ? 0n : ++this.seq;
    const payload = new TextEncoder().encode(f.payload ?? "");
    let frame: ServerFrame;
    if (f.op === Op.Message) frame = { op: f.op, seq, payload };
    else if (f.op === Op.ChannelMessage) frame = { op: f.op, channel: f.channel, seq, payload };
    else frame = { op: f.op, channel: f.channel, seq };
    if (seq !== 0n) this.outbox.push(frame);
    if (this.current?.readyState === WebSocket.OPEN) this.write(this.current, frame);
    return seq;
  }

  /** Sends any frame to the current connection. */
  raw(b: Uint8Array | string): void {
    this.current?.send(b);
  }

  frame(f: ServerFrame): void {
    if (this.current) this.write(this.current, f);
  }

  /** Drops the current connection without a close frame. */
  drop(): void {
    this.current?.terminate();
    this.current = undefined;
  }

  /** Resolves when a frame matching match has been received. */
  async waitFor(match: (f: Frame) => boolean, timeout = 5_000): Promise<Frame> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const hit = this.received.find((r) => match(r.frame));
      if (hit) return hit.frame;
      if (Date.now() > deadline) throw new Error("fake edge: no matching frame");
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  private serve(ws: WebSocket): void {
    const conn = ++this.conns;
    ws.binaryType = "arraybuffer";
    ws.on("message", (data: ArrayBuffer) => {
      const f = decodeFrame(new Uint8Array(data));
      if (isUnknown(f)) return;
      this.received.push({ conn, frame: f });
      for (const w of this.waiters.splice(0)) w();
      this.handle(ws, f as ClientFrame);
    });
  }

  private handle(ws: WebSocket, f: ClientFrame): void {
    const o = this.opts;
    switch (f.op) {
      case Op.Login:
        if (o.loginFails) {
          this.write(ws, { op: Op.LoginFailed, code: o.loginFails, reason: "no" });
          return;
        }
        this.current = ws;
        this.write(ws, { op: Op.LoginOK, version: 1, session: "s1", token: "t1", maxFrame: o.maxFrame ?? 65536, rate: 50 });
        return;
      case Op.Reconnect: {
        this.reconnects.push({ token: f.token, lastSeq: f.lastSeq });
        if (o.reconnectFails) {
          this.write(ws, { op: Op.LoginFailed, code: o.reconnectFails, reason: "no" });
          return;
        }
        const old = this.current;
        this.current = ws;
        if (old && old !== ws && old.readyState === WebSocket.OPEN) {
          this.write(old, { op: Op.Error, code: 12, reason: "session taken over" });
          old.close(4012);
        }
        this.write(ws, { op: Op.LoginOK, version: 1, session: "s1", token: "t1", maxFrame: o.maxFrame ?? 65536, rate: 50 });
        const from = f.lastSeq - BigInt(o.overlap ?? 0);
        for (const d of this.outbox) if ("seq" in d && d.seq > from) this.write(ws, d);
        return;
      }
      case Op.Ping:
        if (!o.silent) this.write(ws, { op: Op.Pong, nonce: f.nonce });
        return;
      case Op.Logout:
        if (o.logoutDrops) {
          ws.terminate();
          return;
        }
        this.write(ws, { op: Op.LogoutOK });
        ws.close(1000);
        this.current = undefined;
        return;
      case Op.Send:
      case Op.ChannelSend:
        return;
    }
  }

  close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}
