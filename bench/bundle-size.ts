/**
 * Size of the SDK tracking core (events, store, features, profile; no tfjs, sync, secagg or
 * dp), built the way a storefront ships it: esbuild, ESM with code splitting, minified, then
 * gzip -9. The network code behind `sync()`/`pullModel()` is loaded with `import()` and lands
 * in separate chunks, which are reported but not part of the core budget.
 *
 * Run: `npx tsx bench/bundle-size.ts`. Writes `bench/results/bundle-size.json`.
 * `test/node/bundle-size.test.ts` fails CI when the core exceeds `CORE_BUDGET_BYTES`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The budget: 20 KB (20 × 1024 bytes) minified + gzip (issue 3; Snowplow caps at 20 kb). */
export const CORE_BUDGET_BYTES = 20 * 1024;

/** One output file of the build. */
export interface ChunkSize {
  file: string;
  minified: number;
  gzip: number;
  /** True for the entry chunk (what a page loads up front). */
  entry: boolean;
}

/** Builds `sdk/src/core.ts` and measures every output chunk. */
export async function measureCoreBundle(): Promise<{ core: ChunkSize; lazy: ChunkSize[]; coreText: string }> {
  const result = await build({
    entryPoints: { core: join(ROOT, "sdk/src/core.ts") },
    bundle: true,
    format: "esm",
    splitting: true,
    minify: true,
    platform: "browser",
    target: "es2022",
    outdir: join(ROOT, "bench/.bundle"),
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const sizes = result.outputFiles
    .filter((file) => file.path.endsWith(".js"))
    .map((file): ChunkSize => {
      const relative = file.path.slice(join(ROOT, "bench/.bundle").length + 1);
      const meta = result.metafile.outputs[`bench/.bundle/${relative}`];
      return {
        file: relative,
        minified: file.contents.byteLength,
        gzip: gzipSync(file.contents, { level: 9 }).byteLength,
        entry: meta?.entryPoint !== undefined,
      };
    });
  const core = sizes.find((chunk) => chunk.entry);
  const coreText = result.outputFiles.find((file) => file.path.endsWith(`/${core?.file}`))?.text;
  if (!core || coreText === undefined) throw new Error("esbuild produced no entry chunk");
  return { core, lazy: sizes.filter((chunk) => !chunk.entry), coreText };
}

async function main(): Promise<void> {
  const { core, lazy } = await measureCoreBundle();
  const kb = (bytes: number) => (bytes / 1024).toFixed(2);
  const rows = [
    "| chunk | loaded | minified KB | gzip KB |",
    "|---|---|---:|---:|",
    `| ${core.file} (core) | up front | ${kb(core.minified)} | ${kb(core.gzip)} |`,
    ...lazy.map((c) => `| ${c.file} | on first sync() / pullModel() | ${kb(c.minified)} | ${kb(c.gzip)} |`),
  ];
  console.log(rows.join("\n"));
  const verdict = core.gzip <= CORE_BUDGET_BYTES ? "within" : "OVER";
  console.log(`core: ${core.gzip} bytes gzip, ${verdict} the ${CORE_BUDGET_BYTES}-byte budget`);
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  const out = {
    bench: "bundle-size",
    date: new Date().toISOString(),
    budgetBytes: CORE_BUDGET_BYTES,
    core,
    lazy,
  };
  writeFileSync(join(ROOT, "bench/results/bundle-size.json"), `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote bench/results/bundle-size.json");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
