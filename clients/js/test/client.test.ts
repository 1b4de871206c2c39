// Client against a scripted edge (fakeedge.ts): login, sends, deliveries,
// ping, logout, and the reconnection rules.

import { strict as assert } from "node:assert";
import { after, afterEach, describe, it } from "node:test";
import { WebSocket } from "ws";

import {
  Client,
  type ClientEvents,
  type ClientOptions,
  ConnectError,
  ErrorCode,
  NotConnectedError,
  Op,
  ProtocolError,
  type WebSocketConstructor,
} from "../src/index.js";
import { FakeEdge, type FakeOptions } from "./fakeedge.js";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const WS = WebSocket as unknown as WebSocketConstructor;

const edges: FakeEdge[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const e of edges.splice(0)) await e.close();
});

async function edge(opts: FakeOptions = {}): Promise<FakeEdge> {
  const e = await FakeEdge.start(opts);
  edges.push(e);
  return e;
}

function client(opts: Partial<ClientOptions> & Pick<ClientOptions, "url">): Client {
  const c = new Client({ WebSocket: WS, reconnect: { initialDelay: 10, maxDelay: 50, grace: 3_000 }, connectTimeout: 2_000, ...opts });
  clients.push(c);
  return c;
}

/** Everything the client emits, in order, as short strings. */
function record(c: Client): string[] {
  const log: string[] = [];
  c.on("message", (m) => log.push(`message ${m.seq} ${text(m.payload)}`));
  c.on("channelMessage", (m) => log.push(`channel ${m.channel} ${m.seq} ${text(m.payload)}`));
  c.on("join", (n) => log.push(`join ${n.channel} ${n.seq}`));
  c.on("leave", (n) => log.push(`leave ${n.channel} ${n.seq}`));
  c.on("error", (e) => log.push(`error ${e.codeName}`));
  c.on("reconnecting", (e) => log.push(`reconnecting ${e.attempt}`));
  c.on("resumed", (e) => log.push(`resumed ${e.attempts}`));
  c.on("close", (e) => log.push(`close ${e.reason}`));
  return log;
}

/** The next event of type, within timeout. */
function next<K extends keyof ClientEvents>(c: Client, type: K, timeout = 5_000): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${String(type)} event in ${timeout} ms`)), timeout);
    c.once(type, (e) => {
      clearTimeout(timer);
      resolve(e);
    });
  });
}

async function until(cond: () => boolean, timeout = 5_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("Client", () => {
  after(() => {
    for (const c of clients) c.close();
  });

  it("needs a WebSocket implementation on Node 20", () => {
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    delete g.WebSocket;
    try {
      assert.throws(() => new Client({ url: "ws://127.0.0.1:1/ws" }), /ClientOptions.WebSocket/);
    } finally {
      if (saved) g.WebSocket = saved;
    }
  });

  it("logs in, sends, and receives messages, channel messages and notices in order", async () => {
    const e = await edge();
    const c = client({ url: e.url });
    const log = record(c);
    const info = await c.login("ann", "pw");
    assert.deepEqual(info, { session: "s1", token: "t1", version: 1, maxFrame: 65536, rate: 50, url: e.url });
    assert.equal(c.state, "online");
    assert.deepEqual((await e.waitFor((f) => f.op === Op.Login)), { op: Op.Login, version: 1, name: "ann", password: "pw" });

    c.send("hello");
    c.send(Uint8Array.of(1, 2));
    c.sendChannel("global", "hi all");
    await e.waitFor((f) => f.op === Op.ChannelSend);
    const sent = e.received.filter((r) => r.frame.op === Op.Send || r.frame.op === Op.ChannelSend).map((r) => r.frame);
    assert.deepEqual(sent, [
      { op: Op.Send, payload: new TextEncoder().encode("hello") },
      { op: Op.Send, payload: Uint8Array.of(1, 2) },
      { op: Op.ChannelSend, channel: "global", payload: new TextEncoder().encode("hi all") },
    ]);

    e.deliver({ op: Op.ChannelJoin, channel: "global" });
    e.deliver({ op: Op.Message, payload: "welcome" });
    e.deliver({ op: Op.ChannelMessage, channel: "global", payload: "yo" });
    e.deliver({ op: Op.ChannelMessage, channel: "pos", payload: "moved", bestEffort: true });
    e.deliver({ op: Op.ChannelLeave, channel: "global" });
    await until(() => log.length === 5);
    assert.deepEqual(log, ["join global 1", "message 2 welcome", "channel global 3 yo", "channel pos 0 moved", "leave global 4"]);
    assert.equal(c.lastSeq, 4n);
    assert.deepEqual([...c.channels], []);
  });

  it("ignores unknown opcodes, malformed frames and text messages", async () => {
    const e = await edge();
    const c = client({ url: e.url });
    const log = record(c);
    await c.login("ann", "pw");
    e.raw(Uint8Array.of(0x8f, 1, 2, 3)); // unknown opcode
    e.raw(Uint8Array.of(Op.Message, 0, 0)); // MESSAGE with half a seq
    e.raw("text");
    e.deliver({ op: Op.Message, payload: "after" });
    await until(() => log.length === 1);
    assert.deepEqual(log, ["message 1 after"]);
    assert.equal(c.state, "online");
  });

  it("reports ERROR frames that do not close, and stays online", async () => {
    const e = await edge();
    const c = client({ url: e.url });
    await c.login("ann", "pw");
    const got = next(c, "error");
    e.frame({ op: Op.Error, code: ErrorCode.RateLimited, reason: "slow down" });
    const err = await got;
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.code, ErrorCode.RateLimited);
    assert.equal(err.codeName, "rate-limited");
    assert.equal(err.reason, "slow down");
    assert.equal(c.state, "online");
  });

  it("a failed login rejects with the code, and the client can log in again", async () => {
    const e = await edge({ loginFails: ErrorCode.BadCredentials });
    const c = client({ url: e.url });
    await assert.rejects(c.login("ann", "bad"), (err: unknown) => err instanceof ProtocolError && err.codeName === "bad-credentials" && err.frame === "login-failed");
    assert.equal(c.state, "idle");
    e.opts = {};
    await c.login("ann", "pw");
    assert.equal(c.state, "online");
  });

  it("login goes down the URL list past edges that cannot be reached", async () => {
    const dead = await edge();
    const deadURL = dead.url;
    await dead.close();
    edges.splice(edges.indexOf(dead), 1);
    const e = await edge();
    const c = client({ url: [deadURL, e.url] });
    const info = await c.login("ann", "pw");
    assert.equal(info.url, e.url);
    assert.equal(c.url, e.url);
  });

  it("no edge at all: ConnectError", async () => {
    const dead = await edge();
    await dead.close();
    edges.splice(edges.indexOf(dead), 1);
    const c = client({ url: dead.url });
    await assert.rejects(c.login("ann", "pw"), ConnectError);
    assert.equal(c.state, "idle");
  });

  it("sends need a connection and fit max-frame; channel names are tokens", async () => {
    const e = await edge({ maxFrame: 16 });
    const c = client({ url: e.url });
    assert.throws(() => c.send("x"), NotConnectedError);
    await c.login("ann", "pw");
    c.send("x".repeat(15)); // op + 15 bytes = 16
    assert.throws(() => c.send("x".repeat(16)), RangeError);
    assert.throws(() => c.sendChannel("no spaces", "x"), TypeError);
  });

  it("ping resolves with the round trip", async () => {
    const e = await edge();
    const c = client({ url: e.url });
    await c.login("ann", "pw");
    const rtt = await c.ping();
    assert.ok(rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
  });

  it("logout ends the session: LOGOUT_OK, close event, no reconnection", async () => {
    const e = await edge();
    const c = client({ url: e.url });
    const log = record(c);
    await c.login("ann", "pw");
    await c.logout();
    assert.equal(c.state, "closed");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(log, ["close logout"]);
    assert.equal(e.reconnects.length, 0);
  });

  it("a connection lost during logout is not resumed", async () => {
    const e = await edge({ logoutDrops: true });
    const c = client({ url: e.url });
    const log = record(c);
    await c.login("ann", "pw");
    await assert.rejects(c.logout(), ConnectError);
    assert.equal(c.state, "closed");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(log, ["close closed"]);
    assert.equal(e.reconnects.length, 0);
  });

  it("a lost connection is resumed: RECONNECT with token and last seq, replay without doubles", async () => {
    const e = await edge({ overlap: 2 }); // the fake replays 2 seqs the client already has
    const c = client({ url: e.url });
    const log = record(c);
    await c.login("ann", "pw");
    e.deliver({ op: Op.ChannelJoin, channel: "chat" });
    e.deliver({ op: Op.Message, payload: "one" });
    e.deliver({ op: Op.ChannelMessage, channel: "chat", payload: "two" });
    await until(() => log.length === 3);

    const reconnecting = next(c, "reconnecting");
    e.drop();
    const r = await reconnecting;
    assert.equal(r.attempt, 1);
    assert.equal(c.state, "reconnecting");
    assert.throws(() => c.send("lost?"), NotConnectedError);
    // Sent while the client had no connection:
    e.deliver({ op: Op.Message, payload: "three" });
    e.deliver({ op: Op.ChannelMessage, channel: "chat", payload: "four" });

    await next(c, "resumed");
    await until(() => log.length >= 7);
    assert.deepEqual(e.reconnects, [{ token: "t1", lastSeq: 3n }]);
    assert.deepEqual(log, [
      "join chat 1",
      "message 2 one",
      "channel chat 3 two",
      "reconnecting 1",
      "resumed 1",
      "message 4 three",
      "channel chat 5 four",
    ]);
    assert.equal(c.state, "online");
    assert.deepEqual([...c.channels], ["chat"]);
    c.send("back");
    await e.waitFor((f) => f.op === Op.Send);
  });

  it("reconnection goes round the URLs", async () => {
    const a = await edge();
    const b = await edge();
    const c = client({ url: [a.url, b.url] });
    await c.login("ann", "pw");
    a.deliver({ op: Op.Message, payload: "from a" });
    await until(() => c.lastSeq === 1n);
    // a goes away; b knows the session (a real world shares it through the stream).
    b.outbox.push({ op: Op.Message, seq: 1n, payload: new TextEncoder().encode("from a") });
    await a.close();
    edges.splice(edges.indexOf(a), 1);
    const resumed = await next(c, "resumed");
    assert.equal(resumed.url, b.url);
    assert.equal(c.url, b.url);
    assert.deepEqual(b.reconnects, [{ token: "t1", lastSeq: 1n }]);
  });

  it("after an ERROR that closes (shutting-down, slow-consumer), it resumes", async () => {
    for (const code of [ErrorCode.ShuttingDown, ErrorCode.SlowConsumer]) {
      const e = await edge();
      const c = client({ url: e.url });
      await c.login("ann", "pw");
      const resumed = next(c, "resumed");
      e.frame({ op: Op.Error, code, reason: "bye" });
      e.current!.close(4000 + code);
      await resumed;
      assert.equal(c.state, "online");
    }
  });

  it("gives up after the grace period: close expired", async () => {
    const e = await edge();
    const c = client({ url: e.url, reconnect: { grace: 400, initialDelay: 20, maxDelay: 100 } });
    const log = record(c);
    await c.login("ann", "pw");
    const closed = next(c, "close");
    const t0 = Date.now();
    await e.close();
    edges.splice(edges.indexOf(e), 1);
    const ev = await closed;
    const took = Date.now() - t0;
    assert.equal(ev.reason, "expired");
    assert.ok(ev.error instanceof Error);
    assert.ok(took < 1_500, `gave up after ${took} ms`);
    assert.ok(log.filter((l) => l.startsWith("reconnecting")).length >= 2, log.join(", "));
    assert.equal(c.state, "closed");
  });

  it("a session that is over (bad-token) is not retried", async () => {
    const e = await edge();
    const c = client({ url: e.url });
    await c.login("ann", "pw");
    e.opts.reconnectFails = ErrorCode.BadToken;
    const closed = next(c, "close");
    e.drop();
    const ev = await closed;
    assert.equal(ev.reason, "ended");
    assert.equal((ev.error as ProtocolError).codeName, "bad-token");
    assert.equal(e.reconnects.length, 1);
  });

  it("a session taken over by another connection is not fought for", async () => {
    const e = await edge();
    const c = client({ url: e.url });
    await c.login("ann", "pw");
    const closed = next(c, "close");
    // Another client resumes the session with its token.
    const thief = client({ url: e.url, reconnect: false });
    await thief.resume(c.token, c.lastSeq);
    const ev = await closed;
    assert.equal(ev.reason, "taken-over");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(e.reconnects.length, 1, "only the thief's RECONNECT");
  });

  it("with reconnection off, a lost connection closes the client; resume() takes the session up", async () => {
    const e = await edge();
    const c = client({ url: e.url, reconnect: false });
    await c.login("ann", "pw");
    e.deliver({ op: Op.Message, payload: "one" });
    await until(() => c.lastSeq === 1n);
    const closed = next(c, "close");
    e.drop();
    assert.equal((await closed).reason, "lost");
    e.deliver({ op: Op.Message, payload: "two" });

    const d = client({ url: e.url });
    const log = record(d);
    await d.resume(c.token, c.lastSeq);
    await until(() => log.length === 1);
    assert.deepEqual(log, ["message 2 two"]);
  });

  it("keepalive: a connection that stops answering PINGs is dropped and resumed", async () => {
    const e = await edge();
    const c = client({ url: e.url, pingInterval: 50 });
    await c.login("ann", "pw");
    await e.waitFor((f) => f.op === Op.Ping);
    e.opts.silent = true;
    const r = await next(c, "reconnecting");
    assert.match(String(r.error), /no PONG/);
    e.opts.silent = false;
    await next(c, "resumed");
  });

  it("close() stops reconnecting and keeps the session resumable", async () => {
    const e = await edge();
    const c = client({ url: e.url, reconnect: { grace: 3_000, initialDelay: 200, maxDelay: 200 } });
    const log = record(c);
    await c.login("ann", "pw");
    e.drop();
    await next(c, "reconnecting");
    c.close();
    assert.equal(c.state, "closed");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(e.reconnects.length, 0);
    assert.deepEqual(log, ["reconnecting 1", "close closed"]);
    assert.equal(c.token, "t1");
  });

});
