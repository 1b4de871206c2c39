// The TypeScript client against a real `starbus dev` (issue #13,
// acceptance 1): a player over WebSocket and a player over TCP (the Go
// client, `starbus client`) in one region of the reference world hear
// each other; the WebSocket player's socket is dropped, the world goes on
// talking to it, and when it comes back it has missed nothing and
// received nothing twice.
//
// Needs go on PATH (it builds ./cmd/starbus); skipped without it, unless
// STARBUS_REQUIRE_E2E is set (scripts/test sets it). Loopback only; every
// process it starts is stopped. STARBUS_E2E_VERBOSE=1 echoes their output.

import { strict as assert } from "node:assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";

import { Client, type WebSocketConstructor } from "../../src/index.js";
import { namesInOneRegion } from "./gridworld.js";
import { type Dev, Proc, buildStarbus, haveGo, startDev } from "./starbus.js";

const go = await haveGo();
if (!go && process.env.STARBUS_REQUIRE_E2E) throw new Error("STARBUS_REQUIRE_E2E is set but go is not on PATH");

// The network as the client sees it: while offline, no connection opens.
let offline = false;
const sockets: WebSocket[] = [];
class TestWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    if (offline) throw new Error("test: the network is down");
    super(url, protocols);
    sockets.push(this);
  }
}

interface Reply {
  t: string;
  from?: string;
  text?: string;
  region?: string;
  n?: string;
  want?: Record<string, number>;
}

const decode = (b: Uint8Array): Reply => JSON.parse(new TextDecoder().decode(b));

describe("@starbus/client against starbus dev", { skip: !go && "go is not on PATH: this test builds and runs ./cmd/starbus", timeout: 360_000 }, () => {
  let tmp: string;
  let bin: string;
  let dev: Dev;
  const procs: Proc[] = [];
  const clients: Client[] = [];

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "starbus-e2e-bin-"));
    bin = await buildStarbus(tmp, 300_000);
    dev = await startDev(bin, 60_000);
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(procs.map((p) => p.stop(5_000, "stdin")));
    await dev?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("chats with a Go TCP player in its region, and a dropped socket resumes missing nothing", async () => {
    const [jsName, goName] = namesInOneRegion("js", "go");

    // The WebSocket player, with everything it receives.
    const c = new Client({ url: dev.ws, WebSocket: TestWebSocket as unknown as WebSocketConstructor, reconnect: { initialDelay: 100, maxDelay: 1_000 } });
    clients.push(c);
    const session: Reply[] = [];
    const chats: string[] = [];
    const seqs: bigint[] = [];
    const events: string[] = [];
    c.on("message", (m) => {
      seqs.push(m.seq);
      session.push(decode(m.payload));
    });
    c.on("channelMessage", (m) => {
      if (m.seq !== 0n) seqs.push(m.seq);
      const r = decode(m.payload);
      if (r.t === "chat") chats.push(`${m.channel} ${r.from}: ${r.text}`);
    });
    c.on("join", (n) => seqs.push(n.seq));
    c.on("leave", (n) => seqs.push(n.seq));
    c.on("reconnecting", (e) => events.push(`reconnecting ${e.attempt}`));
    c.on("resumed", (e) => events.push(`resumed after ${e.attempts}`));
    c.on("close", (e) => events.push(`close ${e.reason}`));
    const until = async (what: string, cond: () => boolean, ms = 20_000) => {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`${what}: not in ${ms} ms; events ${events.join(", ")}; chats ${chats.join(" | ")}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    const info = await c.login(jsName, "pw");
    assert.equal(info.version, 1);
    await until("welcome", () => session.some((r) => r.t === "welcome"));
    const region = session.find((r) => r.t === "welcome")!.region!;
    await until("joined the region's chat", () => c.channels.has(`chat-${region}`));
    const chat = `chat-${region}`;

    // The TCP player: the Go client, driven through stdin and stdout.
    const gp = new Proc(bin, ["client", "-addr", dev.edge, "-name", goName, "-password", "pw"], "go-client");
    procs.push(gp);
    await gp.waitLine(/^connected as /, 30_000);
    const welcome = JSON.parse((await gp.waitLine(/^< (\{"t":"welcome".*)$/, 30_000)).match[1]!) as Reply;
    assert.equal(welcome.region, region, `${jsName} and ${goName} should start in one region`);

    // They hear each other.
    c.send(JSON.stringify({ id: 1, op: "say", text: "hello from js" }));
    await gp.waitLine(new RegExp(`^#${chat}< .*"from":"${jsName}","text":"hello from js"`), 20_000);
    gp.writeLine("say hello from go");
    await until("the Go player's say", () => chats.includes(`${chat} ${goName}: hello from go`));

    // The socket drops, and stays down while the world goes on.
    offline = true;
    const lastBefore = c.lastSeq;
    sockets.at(-1)!.terminate();
    await until("reconnecting", () => events.includes("reconnecting 1"));
    const mark = gp.lines.length;
    for (const m of ["m1", "m2", "m3"]) gp.writeLine(`say ${m}`);
    gp.writeLine(`offer ${jsName} - coin:1`); // a message to the session itself
    for (let i = 0, from = mark; i < 3; i++) from = (await gp.waitLine(/^< \{"t":"said"/, 20_000, from)).index + 1;
    await gp.waitLine(/^< \{"t":"offered"/, 20_000, mark);
    assert.equal(c.state, "reconnecting");

    // Back: RECONNECT with the token and the last seq; the replay has it all.
    offline = false;
    await until("resumed", () => events.some((e) => e.startsWith("resumed")));
    await until("the missed chat", () => chats.includes(`${chat} ${goName}: m3`));
    await until("the missed offer", () => session.some((r) => r.t === "offer"));
    await new Promise((r) => setTimeout(r, 1_000)); // time for any double to show
    assert.deepEqual(
      chats.filter((l) => l.startsWith(chat)),
      [`${chat} ${jsName}: hello from js`, `${chat} ${goName}: hello from go`, `${chat} ${goName}: m1`, `${chat} ${goName}: m2`, `${chat} ${goName}: m3`],
    );
    assert.equal(session.filter((r) => r.t === "offer").length, 1);
    assert.deepEqual(session.find((r) => r.t === "offer")!.want, { coin: 1 });
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `seq ${seqs[i]} after ${seqs[i - 1]}`);
    assert.ok(c.lastSeq > lastBefore);
    assert.equal(c.state, "online");

    // And on it goes, both ways.
    c.send(JSON.stringify({ id: 2, op: "say", text: "back from js" }));
    await gp.waitLine(new RegExp(`^#${chat}< .*"from":"${jsName}","text":"back from js"`), 20_000);
    await c.logout();
    assert.equal(c.state, "closed");
    // reconnecting 1, 2, ... while offline, then resumed, then the logout.
    assert.equal(events.at(-1), "close logout");
    assert.match(events.at(-2)!, /^resumed after \d+$/);
    events.slice(0, -2).forEach((e, i) => assert.equal(e, `reconnecting ${i + 1}`));
  });
});
