/**
 * Builds the script-tag files with esbuild (IIFE output is esbuild's, tsdown builds the ESM):
 * - `dist/fedprofile.min.js`: `src/iife.ts` as an IIFE, minified, with the tracking core;
 * - `dist/fedprofile-sync.min.js`: `src/iife-sync.ts` as self-contained ESM;
 * - `dist/fedprofile-recs.min.js`: `src/sync/recs.ts` (tfjs and its WASM backend) as ESM, loaded by
 *   `recommend()` and fcf rounds only.
 * An IIFE cannot split, so the profiler's `import("./sync/X")` are redirected to
 * `import(<this script's URL>/../fedprofile-sync.min.js)` and pick module X from it.
 *
 * Run by `npm run build -w @fedprofile/sdk` after tsdown.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const SDK = join(dirname(fileURLToPath(import.meta.url)), "..");
const SYNC = {
  "coordinator-client": "coordinatorClient",
  "plain-round": "plainRound",
  "session-store": "sessionStore",
  "model-tasks": "modelTasks",
};
/** The recommendation module (tfjs, ~330 KB gzip) gets a file of its own: a sync() never loads it. */
const RECS_FROM = `import("./sync/recs")`;

/** Rewrites `import("./sync/X")` in the profiler into a load of the sync bundle. */
const lazySync: Plugin = {
  name: "fedprofile:lazy-sync",
  setup(b) {
    b.onLoad({ filter: /sdk\/src\/profiler\.ts$/ }, async (args) => {
      let source = await readFile(args.path, "utf8");
      let rewritten = 0;
      for (const [module, name] of Object.entries(SYNC)) {
        const from = `import("./sync/${module}")`;
        if (source.includes(from)) rewritten++;
        source = source.replaceAll(from, `__fedprofileSync().then((m) => m.${name})`);
      }
      if (!source.includes(RECS_FROM)) throw new Error(`build-iife: expected ${RECS_FROM} in profiler.ts`);
      source = source.replaceAll(RECS_FROM, "__fedprofileRecs()");
      if (rewritten !== Object.keys(SYNC).length) {
        throw new Error(`build-iife: expected import() of ${Object.keys(SYNC).join(", ")} in profiler.ts`);
      }
      return { contents: source, loader: "ts" };
    });
  },
};

await build({
  entryPoints: [join(SDK, "src/iife.ts")],
  outfile: join(SDK, "dist/fedprofile.min.js"),
  bundle: true,
  format: "iife",
  minify: true,
  platform: "browser",
  target: "es2022",
  conditions: ["source"],
  inject: [join(SDK, "scripts/iife-shim.ts")],
  plugins: [lazySync],
  logLevel: "warning",
});
await build({
  entryPoints: [join(SDK, "src/iife-sync.ts")],
  outfile: join(SDK, "dist/fedprofile-sync.min.js"),
  bundle: true,
  format: "esm",
  minify: true,
  platform: "browser",
  target: "es2022",
  conditions: ["source"],
  logLevel: "warning",
});
await build({
  entryPoints: [join(SDK, "src/sync/recs.ts")],
  outfile: join(SDK, "dist/fedprofile-recs.min.js"),
  bundle: true,
  format: "esm",
  minify: true,
  platform: "browser",
  target: "es2022",
  conditions: ["source"],
  logLevel: "error",
});
