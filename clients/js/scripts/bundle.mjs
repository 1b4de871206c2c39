// Builds the browser bundle of the client: one ES module, embedded by the
// live map (examples/gridworld/livemap, go:embed) so that `starbus dev`
// serves the play page without Node.
//
//   node scripts/bundle.mjs           write it
//   node scripts/bundle.mjs --check   fail if the committed one differs from a fresh build
import { build } from "esbuild";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const out = here("../../../examples/gridworld/livemap/starbus-client.js");
const banner = `// @starbus/client, the browser bundle: generated from clients/js/src by
// \`npm run bundle\` in clients/js. Do not edit; \`npm test\` checks it is fresh.`;

const result = await build({
  entryPoints: [here("../src/index.ts")],
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  charset: "utf8",
  legalComments: "none",
  banner: { js: banner },
  write: false,
  logLevel: "warning",
});
const fresh = result.outputFiles[0].text;

if (process.argv.includes("--check")) {
  const committed = await readFile(out, "utf8").catch(() => "");
  if (committed !== fresh) {
    console.error(`${out} differs from a fresh build of src/: run \`npm run bundle\` in clients/js and commit it`);
    process.exit(1);
  }
  console.log(`bundle: ${out} matches a fresh build (${fresh.length} bytes)`);
} else {
  await writeFile(out, fresh);
  console.log(`bundle: wrote ${out} (${fresh.length} bytes)`);
}
