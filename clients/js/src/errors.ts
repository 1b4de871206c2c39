// The error table of PROTOCOL.md ("Error codes"), the one place the client
// defines codes, and the errors the client throws.

/** Error codes, as PROTOCOL.md numbers them. */
export const ErrorCode = {
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
  BadLastSeq: 19,
} as const;

/** A code of the table (a server may send others: they are kept as numbers). */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A code's name in PROTOCOL.md, such as "bad-credentials". */
export type ErrorName =
  | "malformed"
  | "frame-too-large"
  | "unknown-opcode"
  | "not-logged-in"
  | "login-timeout"
  | "rate-limited"
  | "slow-consumer"
  | "bad-credentials"
  | "bad-version"
  | "bad-token"
  | "internal"
  | "already-logged-in"
  | "bad-name"
  | "registration-closed"
  | "shutting-down"
  | "unsupported"
  | "throttled"
  | "out-of-order"
  | "bad-last-seq";

/**
 * Whether the server closes the connection after the error: "yes", "no",
 * or "sometimes" (internal closes after a RECONNECT whose replay failed;
 * already-logged-in closes a connection whose session was taken over).
 */
export type Closes = "yes" | "no" | "sometimes";

/** One row of the error table. */
export interface ErrorInfo {
  readonly code: ErrorCode;
  readonly name: ErrorName;
  readonly closes: Closes;
  readonly meaning: string;
}

/** The error table, in code order. */
export const errorTable: readonly ErrorInfo[] = [
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
  { code: 19, name: "bad-last-seq", closes: "no", meaning: "a RECONNECT's last-seq beyond anything sent" },
];

const byCode = new Map<number, ErrorInfo>(errorTable.map((e) => [e.code, e]));

/** The row of code, or undefined for a code not in the table. */
export function errorInfo(code: number): ErrorInfo | undefined {
  return byCode.get(code);
}

/** A code's name ("bad-credentials"), or "code-<n>" for a code not in the table. */
export function errorName(code: number): string {
  return byCode.get(code)?.name ?? `code-${code}`;
}

/**
 * An ERROR or LOGIN_FAILED frame from the server, as an Error. `code` is
 * the number, `codeName` its name in PROTOCOL.md, `reason` the server's
 * text (for logs; never match on it).
 */
export class ProtocolError extends Error {
  readonly code: number;
  readonly codeName: string;
  readonly reason: string;
  /** "error" for an ERROR frame, "login-failed" for LOGIN_FAILED. */
  readonly frame: "error" | "login-failed";

  constructor(code: number, reason: string, frame: "error" | "login-failed" = "error") {
    super(`starbus: ${errorName(code)}${reason ? ": " + reason : ""}`);
    this.name = "ProtocolError";
    this.code = code;
    this.codeName = errorName(code);
    this.reason = reason;
    this.frame = frame;
  }
}

/** A frame whose body does not match its opcode (PROTOCOL.md's malformed). */
export class MalformedFrameError extends Error {
  constructor(message: string) {
    super(`starbus: malformed frame: ${message}`);
    this.name = "MalformedFrameError";
  }
}

/** A call that needs a connected session, made while there is none. */
export class NotConnectedError extends Error {
  constructor(state: string) {
    super(`starbus: not connected (${state})`);
    this.name = "NotConnectedError";
  }
}

/** No URL of the list could be reached, or a login got no answer in time. */
export class ConnectError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(`starbus: ${message}`, options);
    this.name = "ConnectError";
  }
}
