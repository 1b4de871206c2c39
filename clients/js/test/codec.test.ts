import { strict as assert } from "node:assert";
import { describe, it } from "node:test";

import {
  ErrorCode,
  HEADER_LENGTH,
  MalformedFrameError,
  Op,
  StreamDecoder,
  decodeFrame,
  encodeFrame,
  errorInfo,
  errorName,
  errorTable,
  isUnknown,
  withLength,
  type Frame,
} from "../src/index.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").replace(/(..)(?!$)/g, "$1 ");
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ""), "hex"));
const text = (s: string) => new TextEncoder().encode(s);

describe("PROTOCOL.md's examples", () => {
  it("LOGIN as ann with password pw, over TCP", () => {
    const f = encodeFrame({ op: Op.Login, version: 1, name: "ann", password: "pw" });
    assert.equal(hex(withLength(f)), "00 00 00 0b 01 01 00 03 61 6e 6e 00 02 70 77");
  });
  it("the same LOGIN over WebSocket: 11 bytes, no length", () => {
    const f = encodeFrame({ op: Op.Login, version: 1, name: "ann", password: "pw" });
    assert.equal(f.length, 11);
    assert.equal(hex(f), "01 01 00 03 61 6e 6e 00 02 70 77");
  });
  it("a SEND of hi", () => {
    assert.equal(hex(withLength(encodeFrame({ op: Op.Send, payload: text("hi") }))), "00 00 00 03 03 68 69");
  });
  it("a MESSAGE with seq 7 and payload yo, over TCP and WebSocket", () => {
    const tcp = bytes("00 00 00 0b 83 00 00 00 00 00 00 00 07 79 6f");
    const [msg] = new StreamDecoder().push(tcp);
    assert.equal(hex(msg!), "83 00 00 00 00 00 00 00 07 79 6f");
    const f = decodeFrame(msg!);
    assert.deepEqual(f, { op: Op.Message, seq: 7n, payload: text("yo") });
    assert.equal(hex(withLength(encodeFrame(f as Frame))), hex(tcp));
  });
  it("the browser example's bytes: LOGIN as ann, SEND hi", () => {
    // PROTOCOL.md's WebSocket section builds these by hand.
    assert.deepEqual([...encodeFrame({ op: Op.Send, payload: text("hi") })], [0x03, 0x68, 0x69]);
  });
});

// One of each frame, and some edge values.
const frames: Frame[] = [
  { op: Op.Login, version: 1, name: "ann", password: "pw" },
  { op: Op.Login, version: 1, name: "", password: "" },
  { op: Op.Reconnect, version: 1, token: "tok", lastSeq: 0n },
  { op: Op.Reconnect, version: 1, token: "tok", lastSeq: 0xffff_ffff_ffff_ffffn },
  { op: Op.Send, payload: new Uint8Array() },
  { op: Op.Send, payload: Uint8Array.of(0, 1, 0xff) },
  { op: Op.Logout },
  { op: Op.Ping, nonce: 42n },
  { op: Op.ChannelSend, channel: "chat-r1-2", payload: text("héllo") },
  { op: Op.LoginOK, version: 1, session: "s1", token: "t", maxFrame: 65536, rate: 0xffff_ffff },
  { op: Op.LoginFailed, code: ErrorCode.Throttled, reason: "retry in 4s" },
  { op: Op.Message, seq: 1n << 53n, payload: text("{}") },
  { op: Op.ChannelJoin, seq: 9n, channel: "global" },
  { op: Op.ChannelLeave, seq: 10n, channel: "global" },
  { op: Op.ChannelMessage, channel: "pos-r0-0", seq: 0n, payload: text("x") },
  { op: Op.LogoutOK },
  { op: Op.Error, code: ErrorCode.RateLimited, reason: "ünïcode" },
  { op: Op.Pong, nonce: 0xdead_beefn },
];

describe("round trips", () => {
  for (const f of frames) {
    it(`${Object.entries(Op).find(([, v]) => v === f.op)![0]} ${hex(encodeFrame(f)).slice(0, 40)}`, () => {
      assert.deepEqual(decodeFrame(encodeFrame(f)), f);
    });
  }
  it("big-endian fields", () => {
    const f = encodeFrame({ op: Op.LoginOK, version: 1, session: "s", token: "t", maxFrame: 0x01020304, rate: 5 });
    assert.equal(hex(f), "81 01 00 01 73 00 01 74 01 02 03 04 00 00 00 05");
    assert.equal(hex(encodeFrame({ op: Op.Ping, nonce: 0x0102030405060708n })), "05 01 02 03 04 05 06 07 08");
  });
  it("a str counts UTF-8 bytes, not characters", () => {
    assert.equal(hex(encodeFrame({ op: Op.ChannelSend, channel: "é", payload: new Uint8Array() })), "06 00 02 c3 a9");
  });
});

describe("bad frames", () => {
  const cases: [string, string][] = [
    ["empty message", ""],
    ["LOGIN_OK short", "81 01 00 01 73"],
    ["MESSAGE without a whole seq", "83 00 00 00"],
    ["PONG with trailing bytes", "89 00 00 00 00 00 00 00 01 ff"],
    ["ERROR whose str is longer than the body", "88 00 06 00 09 61"],
    ["CHANNEL_JOIN whose str is not UTF-8", "84 00 00 00 00 00 00 00 01 00 02 c3 28"],
    ["LOGOUT_OK with a body", "87 00"],
  ];
  for (const [name, h] of cases) {
    it(`${name} is malformed`, () => {
      assert.throws(() => decodeFrame(bytes(h)), MalformedFrameError);
    });
  }
  it("an unknown opcode is kept, to be ignored", () => {
    const f = decodeFrame(bytes("8f 01 02"));
    assert.ok(isUnknown(f));
    assert.equal(f.op, 0x8f);
    assert.deepEqual([...f.body], [1, 2]);
  });
  it("a WebSocket message that keeps the length prefix starts with opcode 0x00: unknown", () => {
    assert.ok(isUnknown(decodeFrame(bytes("00 00 00 03 03 68 69"))));
  });
  it("values out of range do not encode", () => {
    assert.throws(() => encodeFrame({ op: Op.Login, version: 256, name: "a", password: "b" }), RangeError);
    assert.throws(() => encodeFrame({ op: Op.Ping, nonce: -1n }), RangeError);
    assert.throws(() => encodeFrame({ op: Op.Ping, nonce: 1n << 64n }), RangeError);
    assert.throws(() => encodeFrame({ op: Op.ChannelSend, channel: "x".repeat(65536), payload: new Uint8Array() }), RangeError);
  });
});

describe("decodeFrame on random bytes", () => {
  // A fuzz test with a fixed seed: any message decodes to a frame that
  // encodes back to the same bytes, or to an unknown frame, or throws
  // MalformedFrameError; nothing else.
  it("decodes or refuses 20,000 random messages, and round-trips what it decodes", () => {
    let seed = 0x5eed;
    const rand = (n: number) => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (((t ^ (t >>> 14)) >>> 0) % n);
    };
    let decoded = 0;
    for (let i = 0; i < 20_000; i++) {
      let b: Uint8Array;
      if (i % 2 === 0) {
        // Random bytes, with an opcode most of the time.
        b = new Uint8Array(rand(24));
        for (let j = 0; j < b.length; j++) b[j] = rand(256);
        if (b.length > 0 && rand(4) !== 0) b[0] = [...Object.values(Op)][rand(15)]!;
      } else {
        // A valid frame, cut short, lengthened or with a byte changed.
        const v = [...encodeFrame(frames[rand(frames.length)]!)];
        const at = rand(v.length + 1);
        const r = rand(3);
        if (r === 0) v.length = at;
        else if (r === 1) v.splice(at, 0, rand(256));
        else if (at < v.length) v[at] = rand(256);
        b = Uint8Array.from(v);
      }
      let f;
      try {
        f = decodeFrame(b);
      } catch (err) {
        assert.ok(err instanceof MalformedFrameError, String(err));
        continue;
      }
      if (isUnknown(f)) continue;
      decoded++;
      assert.equal(hex(encodeFrame(f)), hex(b));
    }
    assert.ok(decoded > 2000, `only ${decoded} decoded`);
  });
});

describe("StreamDecoder", () => {
  it("splits frames however the bytes come", () => {
    const a = withLength(encodeFrame({ op: Op.Message, seq: 1n, payload: text("one") }));
    const b = withLength(encodeFrame({ op: Op.Pong, nonce: 2n }));
    const all = new Uint8Array([...a, ...b]);
    for (let cut = 0; cut <= all.length; cut++) {
      const d = new StreamDecoder();
      const got = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
      assert.deepEqual(got.map((m) => decodeFrame(m)), [
        { op: Op.Message, seq: 1n, payload: text("one") },
        { op: Op.Pong, nonce: 2n },
      ]);
      assert.equal(d.pending, 0);
    }
  });
  it("a length of 0 is an empty (malformed) frame, and the stream goes on", () => {
    const d = new StreamDecoder();
    const got = d.push(bytes("00 00 00 00 00 00 00 01 87"));
    assert.equal(got.length, 2);
    assert.throws(() => decodeFrame(got[0]!), MalformedFrameError);
    assert.deepEqual(decodeFrame(got[1]!), { op: Op.LogoutOK });
  });
  it("a length over the limit throws", () => {
    assert.throws(() => new StreamDecoder(10).push(bytes("00 00 00 0b")), RangeError);
    assert.equal(HEADER_LENGTH, 4);
  });
});

describe("error table", () => {
  it("has PROTOCOL.md's 19 codes, named", () => {
    assert.equal(errorTable.length, 19);
    errorTable.forEach((e, i) => assert.equal(e.code, i + 1));
    assert.equal(errorName(ErrorCode.BadCredentials), "bad-credentials");
    assert.equal(errorName(ErrorCode.RegistrationClosed), "registration-closed");
    assert.equal(errorName(99), "code-99");
    assert.equal(errorInfo(ErrorCode.SlowConsumer)?.closes, "yes");
    assert.equal(errorInfo(ErrorCode.RateLimited)?.closes, "no");
    assert.equal(errorInfo(ErrorCode.Internal)?.closes, "sometimes");
  });
  it("matches PROTOCOL.md's table", async () => {
    const { readFile } = await import("node:fs/promises");
    const md = await readFile(new URL("../../../../PROTOCOL.md", import.meta.url), "utf8");
    const rows = [...md.matchAll(/^\| (\d+) \| ([a-z-]+) \| (yes|no)/gm)].map((m) => [Number(m[1]), m[2], m[3]]);
    assert.equal(rows.length, 19);
    for (const [code, name, closes] of rows) {
      const e = errorInfo(code as number)!;
      assert.equal(e.name, name);
      // "no (yes after ...)" in PROTOCOL.md is "sometimes" here.
      assert.equal(e.closes === "yes", closes === "yes", `closes of ${name}`);
    }
  });
});
