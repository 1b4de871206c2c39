// The session's state logic, apart from any socket or timer: what a
// session remembers across connections (token, last seq, channels), which
// delivered frames are new, how long to wait before the next reconnection
// attempt and where to make it, and what an ending connection means.
// Client (client.ts) does the I/O around it; these are tested by tables.

import type { ChannelJoinFrame, ChannelLeaveFrame, ChannelMessageFrame, LoginOKFrame, MessageFrame } from "./codec.js";
import { Op } from "./codec.js";
import { ErrorCode } from "./errors.js";

/** A delivery: what the world sends a session, each with its seq. */
export type Delivery = MessageFrame | ChannelJoinFrame | ChannelLeaveFrame | ChannelMessageFrame;

/**
 * What a session is, across its connections: its id and token from
 * LOGIN_OK, the last seq it processed, and the channels it is in.
 *
 * {@link SessionState.accept} is the rule of PROTOCOL.md's replay: a
 * delivery whose seq is not above the last one processed was delivered
 * before, and is skipped; seq 0 (a best-effort channel's message) is
 * never replayed and always new.
 */
export class SessionState {
  session = "";
  token = "";
  version = 0;
  maxFrame = 0;
  rate = 0;
  /** The last non-zero seq processed: RECONNECT's last-seq. */
  lastSeq = 0n;
  /** The channels the session is in, by the JOIN and LEAVE notices processed. */
  readonly channels = new Set<string>();

  constructor(init?: { token?: string; lastSeq?: bigint }) {
    if (init?.token) this.token = init.token;
    if (init?.lastSeq) this.lastSeq = init.lastSeq;
  }

  /** Records a LOGIN_OK: a new session (login) or the same one resumed. */
  loggedIn(f: LoginOKFrame, resumed: boolean): void {
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
  accept(d: Delivery): boolean {
    if (d.seq !== 0n) {
      if (d.seq <= this.lastSeq) return false;
      this.lastSeq = d.seq;
    }
    if (d.op === Op.ChannelJoin) this.channels.add(d.channel);
    if (d.op === Op.ChannelLeave) this.channels.delete(d.channel);
    return true;
  }
}

/** How automatic reconnection waits and gives up. Times in milliseconds. */
export interface ReconnectOptions {
  /**
   * How long after losing the connection the client keeps trying: the
   * server's grace period (PROTOCOL.md: 30 s by default), after which the
   * session is over anyway. Default 30000.
   */
  grace: number;
  /** The first attempt's delay, before jitter. Default 100. */
  initialDelay: number;
  /** The longest delay between attempts, before jitter. Default 5000. */
  maxDelay: number;
}

export const defaultReconnect: ReconnectOptions = { grace: 30_000, initialDelay: 100, maxDelay: 5_000 };

/**
 * The delay before reconnection attempt n (0 for the first): exponential
 * from initialDelay, capped at maxDelay, with "equal jitter": half the
 * step is fixed, half random (random() in [0, 1)), so clients that lost
 * one edge together do not come back together.
 */
export function backoffDelay(n: number, opts: ReconnectOptions, random: () => number): number {
  const step = Math.min(opts.maxDelay, opts.initialDelay * 2 ** Math.min(n, 30));
  return Math.round(step / 2 + (step / 2) * random());
}

/** The next reconnection attempt, or the end of trying. */
export type Attempt = { giveUp: false; delay: number; url: string } | { giveUp: true };

/**
 * Plans attempt n (0 for the first) of a connection lost at lostAt, now
 * being now: wait a jittered delay, then try urls[first] (the URL last
 * used: a blip passes), then the next ones round the list; give up when
 * the attempt would start past the grace period.
 */
export function planAttempt(
  n: number,
  lostAt: number,
  now: number,
  urls: readonly string[],
  first: number,
  opts: ReconnectOptions,
  random: () => number,
): Attempt {
  const delay = backoffDelay(n, opts, random);
  if (now + delay - lostAt >= opts.grace) return { giveUp: true };
  return { giveUp: false, delay, url: urls[(first + n) % urls.length]! };
}

/** What a failed reconnection attempt, or a lost connection, calls for. */
export type Verdict =
  /** Try again (after a delay): the session may still be there. */
  | "retry"
  /** The session is over (unknown or expired token): log in again. */
  | "ended"
  /** Another connection took the session over: do not fight it. */
  | "taken-over"
  /** Retrying cannot help (the server does not speak this version). */
  | "fatal";

/**
 * Judges an error code received on, or closing, a connection of a
 * resumable session: LOGIN_FAILED to a RECONNECT, or the ERROR that came
 * before the connection closed. undefined is a connection that ended
 * without an error (lost).
 */
export function verdict(code: number | undefined): Verdict {
  switch (code) {
    case ErrorCode.BadToken:
      return "ended";
    case ErrorCode.AlreadyLoggedIn:
      return "taken-over";
    case ErrorCode.BadVersion:
    case ErrorCode.BadLastSeq: // the client's own count is wrong: resuming with it again cannot help
      return "fatal";
    default:
      // Lost, login-timeout, slow-consumer, internal, shutting-down,
      // throttled, frame-too-large...: a new connection may resume it.
      return "retry";
  }
}

/** Channel names: one token of letters, digits, - and _ (PROTOCOL.md). */
export function validChannel(name: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(name);
}
