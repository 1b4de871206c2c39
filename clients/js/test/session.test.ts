import { strict as assert } from "node:assert";
import { describe, it } from "node:test";

import {
  ErrorCode,
  Op,
  SessionState,
  backoffDelay,
  defaultReconnect,
  planAttempt,
  validChannel,
  verdict,
  type Delivery,
  type LoginOKFrame,
} from "../src/index.js";

const p = new Uint8Array();
const msg = (seq: bigint): Delivery => ({ op: Op.Message, seq, payload: p });
const chan = (channel: string, seq: bigint): Delivery => ({ op: Op.ChannelMessage, channel, seq, payload: p });
const join = (channel: string, seq: bigint): Delivery => ({ op: Op.ChannelJoin, channel, seq });
const leave = (channel: string, seq: bigint): Delivery => ({ op: Op.ChannelLeave, channel, seq });
const loginOK: LoginOKFrame = { op: Op.LoginOK, version: 1, session: "s1", token: "t1", maxFrame: 65536, rate: 50 };

describe("SessionState.accept: nothing missed, nothing doubled", () => {
  // Each case: deliveries in order, and which of them are new.
  const cases: { name: string; in: Delivery[]; want: boolean[]; last: bigint; channels?: string[] }[] = [
    { name: "increasing seqs are all new", in: [msg(3n), msg(7n), chan("c", 9n)], want: [true, true, true], last: 9n },
    {
      name: "a replay that overlaps what was processed skips the overlap",
      in: [msg(1n), msg(2n), msg(3n), msg(2n), msg(3n), msg(4n)],
      want: [true, true, true, false, false, true],
      last: 4n,
    },
    { name: "equal seq is a duplicate", in: [msg(5n), chan("c", 5n)], want: [true, false], last: 5n },
    {
      name: "best-effort channel messages (seq 0) are always new and do not move last-seq",
      in: [msg(4n), chan("pos", 0n), chan("pos", 0n), msg(5n)],
      want: [true, true, true, true],
      last: 5n,
    },
    {
      name: "joins and leaves are deliveries with seqs, and keep the membership",
      in: [join("a", 1n), join("b", 2n), leave("a", 3n), join("a", 1n)],
      want: [true, true, true, false],
      last: 3n,
      channels: ["b"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = new SessionState();
      assert.deepEqual(
        c.in.map((d) => s.accept(d)),
        c.want,
      );
      assert.equal(s.lastSeq, c.last);
      if (c.channels) assert.deepEqual([...s.channels].sort(), c.channels);
    });
  }

  it("a login starts afresh; a resumed session keeps its seq and channels", () => {
    const s = new SessionState();
    s.loggedIn(loginOK, false);
    s.accept(join("global", 10n));
    s.loggedIn({ ...loginOK, token: "t2" }, true);
    assert.equal(s.lastSeq, 10n);
    assert.deepEqual([...s.channels], ["global"]);
    assert.equal(s.token, "t2");
    s.loggedIn(loginOK, false);
    assert.equal(s.lastSeq, 0n);
    assert.equal(s.channels.size, 0);
  });

  it("resume from a saved token and seq", () => {
    const s = new SessionState({ token: "t9", lastSeq: 41n });
    s.loggedIn(loginOK, true);
    assert.equal(s.accept(msg(41n)), false);
    assert.equal(s.accept(msg(42n)), true);
  });
});

describe("backoff", () => {
  const opts = { grace: 30_000, initialDelay: 100, maxDelay: 5_000 };
  it("doubles from initialDelay, capped at maxDelay, half of it jittered", () => {
    const steps = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
    steps.forEach((step, n) => {
      assert.equal(backoffDelay(n, opts, () => 0), step / 2, `attempt ${n}, no jitter`);
      assert.equal(backoffDelay(n, opts, () => 0.999999), Math.round(step / 2 + (step / 2) * 0.999999), `attempt ${n}, most jitter`);
    });
    assert.equal(backoffDelay(1000, opts, () => 0.5), 3750, "a huge attempt number stays capped");
  });
  it("jitter spreads clients apart", () => {
    let r = 0;
    const delays = new Set(Array.from({ length: 10 }, () => backoffDelay(5, opts, () => (r = (r + 0.1) % 1))));
    assert.ok(delays.size >= 9, `delays ${[...delays]}`);
  });
  it("the defaults: 30 s grace", () => {
    assert.deepEqual(defaultReconnect, { grace: 30_000, initialDelay: 100, maxDelay: 5_000 });
  });
});

describe("planAttempt", () => {
  const opts = { grace: 1_000, initialDelay: 100, maxDelay: 400 };
  const urls = ["ws://a/ws", "ws://b/ws", "ws://c/ws"];
  it("goes round the URLs from the one last used", () => {
    const got = [0, 1, 2, 3].map((n) => planAttempt(n, 0, 0, urls, 1, opts, () => 0));
    assert.deepEqual(
      got.map((a) => (a.giveUp ? "give up" : a.url)),
      ["ws://b/ws", "ws://c/ws", "ws://a/ws", "ws://b/ws"],
    );
  });
  it("gives up when the attempt would start past the grace period", () => {
    // Lost at 0; attempt 3 waits 200..400 ms.
    assert.equal(planAttempt(3, 0, 700, urls, 0, opts, () => 0).giveUp, false); // starts at 900
    assert.equal(planAttempt(3, 0, 800, urls, 0, opts, () => 0).giveUp, true); // would start at 1000
    assert.equal(planAttempt(0, 0, 5_000, urls, 0, opts, () => 0).giveUp, true);
  });
});

describe("verdict: what an error on a resumable session calls for", () => {
  const table: [number | undefined, string][] = [
    [undefined, "retry"], // lost without a word
    [ErrorCode.SlowConsumer, "retry"], // the replay has what was dropped
    [ErrorCode.ShuttingDown, "retry"], // another edge, or this one back
    [ErrorCode.Internal, "retry"], // a replay that failed: reconnect again
    [ErrorCode.LoginTimeout, "retry"],
    [ErrorCode.Throttled, "retry"],
    [ErrorCode.FrameTooLarge, "retry"],
    [ErrorCode.BadToken, "ended"],
    [ErrorCode.AlreadyLoggedIn, "taken-over"],
    [ErrorCode.BadVersion, "fatal"],
  ];
  for (const [code, want] of table) {
    it(`${code ?? "no error"} → ${want}`, () => assert.equal(verdict(code), want));
  }
});

describe("validChannel", () => {
  for (const [name, ok] of [
    ["global", true],
    ["chat-r1-2", true],
    ["a_b", true],
    ["", false],
    ["a b", false],
    ["a.b", false],
    ["é", false],
  ] as const) {
    it(`${JSON.stringify(name)} ${ok ? "is" : "is not"} a channel name`, () => assert.equal(validChannel(name), ok));
  }
});
