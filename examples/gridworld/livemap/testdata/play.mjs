// Two players of the reference world in headless Chromium, through the
// play page (/play), with the keyboard only: they log in, see each other
// move, chat (one of them across a cut connection, POST /test/drop on the
// test's server), and trade an item one of them walks to and picks up. Run by
// TestPlay (livemap_test.go), which starts the world and checks what this
// prints (one JSON object) and the screenshots it takes.
//
// Environment:
//   PLAY_URL     the live map's base URL (serving /play, /ws)
//   PLAY_NAMES   two player names, comma-separated, that start in one region
//   PLAY_OUT     a directory for the screenshots
//   STARBUS_JS   clients/js, whose node_modules has playwright-core
//   CHROMIUM     the browser (default /usr/bin/chromium); never downloaded
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.STARBUS_JS, "package.json"));
const { chromium } = require("playwright-core");

const url = process.env.PLAY_URL;
const [nameA, nameB] = process.env.PLAY_NAMES.split(",");
const out = process.env.PLAY_OUT;
const deadline = setTimeout(() => fail(new Error("play.mjs: over 150 s")), 150_000);

const steps = []; // what happened, for the failure message
const note = (s) => steps.push(s);
let browser;

async function fail(err) {
  console.error(`play.mjs: ${err.stack || err}\nsteps:\n  ${steps.join("\n  ")}`);
  try { await browser?.close(); } catch { /* going anyway */ }
  process.exit(1);
}

async function player(name) {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 540 }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  const p = { name, page, errors: [] };
  page.on("pageerror", (e) => p.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") p.errors.push(m.text()); });
  await page.goto(`${url}/play?name=${encodeURIComponent(name)}`);
  await page.fill("#password", "pw");
  await page.press("#password", "Enter");
  await page.waitForSelector("#status[data-state=online]", { timeout: 20_000 });
  await page.waitForFunction(() => window.play.me !== null && window.play.world !== null, null, { timeout: 20_000 });
  note(`${name} logged in at ${JSON.stringify(await me(p))}`);
  return p;
}

// The player's view, as the page holds it.
const view = (p) => p.page.evaluate(() => {
  const pl = window.play;
  return {
    me: { ...pl.me }, inv: { ...pl.inv }, rs: pl.world.rs, w: pl.world.w, h: pl.world.h,
    walls: [...pl.walls], items: [...pl.items].map(([k, v]) => [k, [...v]]),
    others: [...pl.others.values()].map((o) => ({ ...o })), offers: [...pl.offers.keys()],
  };
});
const me = async (p) => (await view(p)).me;

const keys = { n: "ArrowUp", s: "ArrowDown", w: "ArrowLeft", e: "ArrowRight" };
const delta = { n: [0, -1], s: [0, 1], w: [-1, 0], e: [1, 0] };

// press presses a movement key and waits for the move's outcome: true if
// the player moved.
async function press(p, dir, key = keys[dir]) {
  const before = await me(p);
  await p.page.keyboard.press(key);
  try {
    await p.page.waitForFunction(([x, y]) => window.play.me.x !== x || window.play.me.y !== y, [before.x, before.y], { timeout: 3_000 });
    return true;
  } catch {
    return false; // refused (someone stepped there)
  }
}

// free reports whether (x, y) is an open, unoccupied cell of my region.
function free(v, x, y) {
  const ox = Math.floor(v.me.x / v.rs) * v.rs, oy = Math.floor(v.me.y / v.rs) * v.rs;
  return x >= ox && y >= oy && x < ox + v.rs && y < oy + v.rs && !v.walls.includes(`${x},${y}`) &&
    !v.others.some((o) => o.x === x && o.y === y);
}

// walk takes one step in some direction that stays in the region; it
// returns the direction.
async function walk(p, prefer = ["e", "w", "s", "n"]) {
  for (const dir of prefer) {
    const v = await view(p);
    const [dx, dy] = delta[dir];
    if (free(v, v.me.x + dx, v.me.y + dy) && (await press(p, dir))) return dir;
  }
  throw new Error(`${p.name} cannot move`);
}

// sees waits until p sees q where q is.
async function sees(p, q) {
  const at = await me(q);
  await p.page.waitForFunction(([n, x, y]) => {
    const o = window.play.others.get(n);
    return o && o.x === x && o.y === y;
  }, [q.name, at.x, at.y], { timeout: 10_000 });
  await p.page.waitForSelector(`#who li[data-n="${q.name}"][data-x="${at.x}"][data-y="${at.y}"]`, { timeout: 5_000 });
  note(`${p.name} sees ${q.name} at ${at.x},${at.y}`);
}

// path finds the shortest walk to a cell holding items, in my region.
function path(v) {
  const targets = new Set(v.items.map(([k]) => k));
  return pathTo(v, (x, y) => targets.has(`${x},${y}`));
}

// pathTo finds the shortest walk to a cell of my region for which target
// holds.
function pathTo(v, target) {
  const start = `${v.me.x},${v.me.y}`;
  const prev = new Map([[start, null]]);
  const queue = [[v.me.x, v.me.y]];
  while (queue.length) {
    const [x, y] = queue.shift();
    const k = `${x},${y}`;
    if (target(x, y)) {
      const dirs = [];
      for (let c = k; prev.get(c); c = prev.get(c).from) dirs.unshift(prev.get(c).dir);
      return dirs;
    }
    for (const [dir, [dx, dy]] of Object.entries(delta)) {
      const nk = `${x + dx},${y + dy}`;
      if (!prev.has(nk) && free(v, x + dx, y + dy)) {
        prev.set(nk, { from: k, dir });
        queue.push([x + dx, y + dy]);
      }
    }
  }
  return null;
}

// approach walks q until it stands within 6 cells of p, inside p's view,
// and waits until p sees it there.
async function approach(q, p) {
  for (let tries = 0; tries < 40; tries++) {
    const at = await me(p);
    const route = pathTo(await view(q), (x, y) => Math.abs(x - at.x) <= 6 && Math.abs(y - at.y) <= 6);
    if (route === null) break;
    if (route.length === 0) return sees(p, q);
    await press(q, route[0]);
  }
  throw new Error(`${q.name} found no way to within sight of ${p.name}`);
}

// fetchItem walks p to the nearest item of its region and picks it up;
// it returns what p carries then.
async function fetchItem(p) {
  for (let tries = 0; tries < 40; tries++) {
    const v = await view(p);
    const route = path(v);
    if (route === null) {
      await p.page.keyboard.press("l"); // look again: items spawn
      await new Promise((r) => setTimeout(r, 300));
      continue;
    }
    if (route.length === 0) {
      await p.page.keyboard.press("g");
      await p.page.waitForFunction(() => Object.keys(window.play.inv).length > 0, null, { timeout: 5_000 });
      const inv = (await view(p)).inv;
      note(`${p.name} picked up items at ${v.me.x},${v.me.y}: ${JSON.stringify(inv)}`);
      return inv;
    }
    await press(p, route[0], tries % 2 ? keys[route[0]] : { n: "w", s: "s", w: "a", e: "d" }[route[0]]); // arrows and WASD
  }
  throw new Error(`${p.name} found no item to pick up`);
}

async function say(p, text) {
  await p.page.keyboard.press("Enter");
  await p.page.keyboard.type(text);
  await p.page.keyboard.press("Enter");
  await p.page.keyboard.press("Escape");
}

async function heard(p, line) {
  await p.page.waitForFunction((l) => [...document.querySelectorAll("#log li")].some((li) => li.textContent === l), line, { timeout: 10_000 });
  note(`${p.name} heard "${line}"`);
}

async function main() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio"],
  });
  const a = await player(nameA);
  const b = await player(nameB);

  // Each sees the other move.
  note(`${a.name} walks ${await walk(a)}`);
  await sees(b, a);
  note(`${b.name} walks ${await walk(b, ["w", "e", "n", "s"])}`);
  await sees(a, b);

  // They chat.
  await say(a, `hello ${b.name}`);
  await heard(b, `${a.name}: hello ${b.name}`);
  await say(b, `hi ${a.name}, trade?`);
  await heard(a, `${b.name}: hi ${a.name}, trade?`);

  // a's connection is cut (the test's server closes it); b talks; a's
  // page resumes the session and hears it, once.
  const drop = await fetch(`${url}/test/drop`, { method: "POST" });
  if (!drop.ok) throw new Error(`drop: ${drop.status} ${await drop.text()}`);
  await say(b, "while you were away");
  await a.page.waitForFunction(() => [...document.querySelectorAll("#log li")].some((li) => li.textContent.startsWith("resumed after ")), null, { timeout: 20_000 });
  await a.page.waitForSelector("#status[data-state=online]", { timeout: 20_000 });
  note(`${a.name}'s page resumed its session`);
  await heard(a, `${b.name}: while you were away`);

  // a picks an item up, drops one and takes it again, and offers it to b,
  // who accepts.
  const inv = await fetchItem(a);
  const kind = Object.keys(inv)[0];
  const count = inv[kind];
  await a.page.keyboard.press(String(["gem", "coin", "herb"].indexOf(kind) + 1));
  await a.page.waitForFunction(([k, n]) => (window.play.inv[k] || 0) === n - 1, [kind, count], { timeout: 5_000 });
  note(`${a.name} dropped a ${kind}`);
  await a.page.keyboard.press("g");
  await a.page.waitForFunction(([k, n]) => (window.play.inv[k] || 0) === n, [kind, count], { timeout: 5_000 });
  note(`${a.name} took it again`);
  // The item may have led a out of b's sight: O offers to the nearest
  // player a sees.
  await approach(b, a);
  await a.page.keyboard.press("o");
  const line = await a.page.inputValue("#line");
  if (line !== `/offer ${b.name} `) throw new Error(`O prefilled ${JSON.stringify(line)}`);
  await a.page.keyboard.type(`${kind}:1 -`);
  await a.page.keyboard.press("Enter");
  await a.page.keyboard.press("Escape");
  await b.page.waitForSelector(`#offers li[data-from="${a.name}"]`, { timeout: 10_000 });
  note(`${b.name} got the offer`);
  await b.page.keyboard.press("y");
  await b.page.waitForFunction((k) => (window.play.inv[k] || 0) === 1, kind, { timeout: 10_000 });
  await a.page.waitForFunction(([k, n]) => (window.play.inv[k] || 0) === n - 1, [kind, count], { timeout: 10_000 });
  note(`traded a ${kind}`);
  await heard(a, `traded with ${b.name}: you carry ${Object.entries((await view(a)).inv).map(([k, n]) => `${n} ${k}`).join(", ") || "nothing"}`);

  // Where everyone is now, as each page shows it, and the pictures.
  await sees(a, b);
  await sees(b, a);
  const result = { kind, players: [] };
  for (const p of [a, b]) {
    const shot = join(out, `${p.name}.png`);
    await p.page.screenshot({ path: shot });
    const v = await view(p);
    result.players.push({
      name: p.name, me: v.me, inv: v.inv, rs: v.rs, others: v.others, shot,
      status: await p.page.textContent("#status"),
      log: await p.page.$$eval("#log li", (lis) => lis.map((li) => li.textContent)),
      who: await p.page.$$eval("#who li", (lis) => lis.map((li) => li.textContent)),
      errors: p.errors,
    });
  }
  result.steps = steps;
  await browser.close();
  clearTimeout(deadline);
  console.log(JSON.stringify(result));
}

main().catch(fail);
