// What the end-to-end test needs of the reference world
// (examples/gridworld): where a new player starts, so that two players
// can be picked in one region, where they hear each other's say.

const W = 64, H = 64, RS = 16; // gridworld.Default(): 4×4 regions of 16×16

function fnv64a(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffff_ffff_ffff_ffffn;
  }
  return h;
}

/** Config.start(name, 0): the cell a new player's placement starts from. */
export function startCell(name: string): [number, number] {
  const v = fnv64a(new Uint8Array([...new TextEncoder().encode(name), 0]));
  return [Number(v % BigInt(W)), Number((v >> 32n) % BigInt(H))];
}

/** Config.Wall: the walled room in the middle of every region. */
export function wall(x: number, y: number): boolean {
  const lx = x % RS, ly = y % RS, lo = RS / 4, hi = (RS * 3) / 4 - 1;
  const door = (v: number) => v === RS / 2 - 1 || v === RS / 2;
  const onX = (lx === lo || lx === hi) && ly >= lo && ly <= hi && !door(ly);
  const onY = (ly === lo || ly === hi) && lx >= lo && lx <= hi && !door(lx);
  return onX || onY;
}

/** Config.Region: "r<col>-<row>". */
export function region(x: number, y: number): string {
  return `r${Math.floor(x / RS)}-${Math.floor(y / RS)}`;
}

/**
 * Two names, with prefixes a and b, whose players start on open cells of
 * one region, away from its border (so that a placement that has to step
 * aside stays in it) and apart from each other.
 */
export function namesInOneRegion(a: string, b: string): [string, string] {
  const good = (name: string) => {
    const [x, y] = startCell(name);
    const lx = x % RS, ly = y % RS;
    return !wall(x, y) && lx >= 2 && lx <= RS - 3 && ly >= 2 && ly <= RS - 3;
  };
  for (let i = 0; i < 1000; i++) {
    const na = `${a}${i}`;
    if (!good(na)) continue;
    const [ax, ay] = startCell(na);
    for (let j = 0; j < 1000; j++) {
      const nb = `${b}${j}`;
      if (!good(nb)) continue;
      const [bx, by] = startCell(nb);
      if (region(ax, ay) === region(bx, by) && Math.abs(ax - bx) + Math.abs(ay - by) >= 3) return [na, nb];
    }
  }
  throw new Error("no two names start in one region");
}
