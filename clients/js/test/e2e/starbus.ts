// Processes of the real thing for the end-to-end test: the starbus binary
// built from this repository, `starbus dev` on random loopback ports with
// a temporary data directory, and `starbus client` (the Go TCP client)
// driven through its standard input and output. Everything started here
// is stopped by stop() / close(), and killed if the test process exits.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/** The repository's root: the nearest directory above this file with go.mod. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "go.mod"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("no go.mod above " + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

/** Reports whether the go command is on PATH. */
export function haveGo(): Promise<boolean> {
  return new Promise((resolve) => execFile("go", ["version"], (err) => resolve(!err)));
}

/** Builds ./cmd/starbus into dir; resolves with the binary's path. */
export function buildStarbus(dir: string, timeoutMs: number): Promise<string> {
  const out = join(dir, "starbus");
  return new Promise((resolve, reject) => {
    execFile("go", ["build", "-o", out, "./cmd/starbus"], { cwd: repoRoot(), timeout: timeoutMs }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`go build ./cmd/starbus: ${err.message}\n${stderr}`));
      else resolve(out);
    });
  });
}

/** A line-oriented child process: its output lines are kept, and waited for. */
export class Proc {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  private waiters: (() => void)[] = [];
  private exited = false;
  readonly exit: Promise<number | null>;

  constructor(bin: string, args: string[], readonly name: string) {
    this.child = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"] });
    children.add(this.child);
    this.exit = new Promise((resolve) =>
      this.child.on("exit", (code) => {
        this.exited = true;
        children.delete(this.child);
        this.wake();
        resolve(code);
      }),
    );
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        this.lines.push(line);
        if (process.env.STARBUS_E2E_VERBOSE) console.log(`${this.name}| ${line}`);
        this.wake();
      });
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first line from index from on that matches re, waiting up to timeout. */
  async waitLine(re: RegExp, timeoutMs: number, from = 0): Promise<{ line: string; index: number; match: RegExpMatchArray }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.lines.length; i++) {
        const m = this.lines[i]!.match(re);
        if (m) return { line: this.lines[i]!, index: i, match: m };
      }
      if (this.exited) throw new Error(`${this.name} exited before printing ${re}:\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no line matching ${re} in ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, Math.min(left, 200));
      });
    }
  }

  /** The last lines, for failure messages. */
  tail(n = 30): string {
    return this.lines.slice(-n).join("\n");
  }

  writeLine(s: string): void {
    this.child.stdin!.write(s + "\n");
  }

  /** Asks the process to end (SIGINT, or closing its input), then kills it after graceMs. */
  async stop(graceMs = 10_000, how: "SIGINT" | "stdin" = "SIGINT"): Promise<void> {
    if (this.exited) return;
    if (how === "stdin") this.child.stdin!.end();
    else this.child.kill("SIGINT");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exit;
    clearTimeout(timer);
  }
}

/** A running `starbus dev` and where it listens. */
export interface Dev {
  proc: Proc;
  /** The edge's TCP address, host:port. */
  edge: string;
  /** The edge's WebSocket URL. */
  ws: string;
  /** The live map's URL. */
  map: string;
  dataDir: string;
  close(): Promise<void>;
}

/** Starts `starbus dev` on random loopback ports with a temporary data directory. */
export async function startDev(bin: string, timeoutMs: number): Promise<Dev> {
  const dataDir = await mkdtemp(join(tmpdir(), "starbus-e2e-"));
  const proc = new Proc(bin, ["dev", "-data", dataDir, "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-log", "warn"], "dev");
  try {
    const edge = (await proc.waitLine(/^\s+edge\s+(\S+)/, timeoutMs)).match[1]!;
    const ws = (await proc.waitLine(/^\s+ws\s+(ws:\/\/\S+)/, timeoutMs)).match[1]!;
    const map = (await proc.waitLine(/^\s+map\s+(http:\/\/\S+)/, timeoutMs)).match[1]!;
    return {
      proc,
      edge,
      ws,
      map,
      dataDir,
      async close() {
        await proc.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await proc.stop(2_000);
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
