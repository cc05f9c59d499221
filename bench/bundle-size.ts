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

/** What `measureCoreBundle` found. */
export interface CoreBundle {
  core: ChunkSize;
  lazy: ChunkSize[];
  coreText: string;
  /**
   * What a page really loads up front: the entry chunk plus every chunk it imports statically,
   * transitively (shared chunks that code splitting moved out of the entry included).
   */
  upfront: { files: string[]; gzip: number };
}

/** Builds `sdk/src/core.ts` and measures every output chunk. */
export async function measureCoreBundle(): Promise<CoreBundle> {
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
  const files = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const edge of result.metafile.outputs[`bench/.bundle/${file}`]?.imports ?? []) {
      if (edge.kind === "import-statement") visit(edge.path.slice("bench/.bundle/".length));
    }
  };
  visit(core.file);
  const gzip = sizes.filter((chunk) => files.has(chunk.file)).reduce((sum, chunk) => sum + chunk.gzip, 0);
  return {
    core,
    lazy: sizes.filter((chunk) => !chunk.entry),
    coreText,
    upfront: { files: [...files], gzip },
  };
}

/**
 * The tracking core built on its own, with the lazily imported sync modules left external: what
 * a page would load up front if the lazy chunks shared no code with it. Today they share zod's
 * core (the coordinator client uses full zod, the tracking core zod/mini), which esbuild moves
 * into a chunk the entry imports statically; `upfront` counts that, this does not.
 */
export async function measureCoreAlone(): Promise<number> {
  const result = await build({
    entryPoints: [join(ROOT, "sdk/src/core.ts")],
    bundle: true,
    format: "esm",
    minify: true,
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "silent",
    plugins: [
      {
        name: "lazy-external",
        setup(b) {
          b.onResolve({ filter: /\/sync\/[a-z-]+$/ }, (args) =>
            args.kind === "dynamic-import" ? { path: args.path, external: true } : undefined,
          );
        },
      },
    ],
  });
  const [file] = result.outputFiles;
  if (!file) throw new Error("esbuild produced no output");
  return gzipSync(file.contents, { level: 9 }).byteLength;
}

async function main(): Promise<void> {
  const { core, lazy, upfront } = await measureCoreBundle();
  const alone = await measureCoreAlone();
  const kb = (bytes: number) => (bytes / 1024).toFixed(2);
  const rows = [
    "| chunk | loaded | minified KB | gzip KB |",
    "|---|---|---:|---:|",
    `| ${core.file} (core) | up front | ${kb(core.minified)} | ${kb(core.gzip)} |`,
    ...lazy.map(
      (c) =>
        `| ${c.file} | ${upfront.files.includes(c.file) ? "up front (static import)" : "on first sync() / pullModel()"} | ${kb(c.minified)} | ${kb(c.gzip)} |`,
    ),
  ];
  console.log(rows.join("\n"));
  const verdict = core.gzip <= CORE_BUDGET_BYTES ? "within" : "OVER";
  console.log(`core: ${core.gzip} bytes gzip, ${verdict} the ${CORE_BUDGET_BYTES}-byte budget`);
  // The gate (test/node/bundle-size.test.ts) still checks the entry chunk alone; the up-front
  // total is what the design's budget means, reported until the shared zod chunk leaves it.
  const upfrontVerdict = upfront.gzip <= CORE_BUDGET_BYTES ? "within" : "OVER";
  console.log(
    `up front (entry + static imports: ${upfront.files.join(", ")}): ${upfront.gzip} bytes gzip, ${upfrontVerdict} the budget`,
  );
  console.log(
    `tracking core alone (sync chunks external, no shared chunk): ${alone} bytes gzip, ` +
      `${alone <= CORE_BUDGET_BYTES ? "within" : "OVER"} the budget`,
  );
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  const out = {
    bench: "bundle-size",
    date: new Date().toISOString(),
    budgetBytes: CORE_BUDGET_BYTES,
    core,
    lazy,
    upfront,
    coreAloneGzip: alone,
  };
  writeFileSync(join(ROOT, "bench/results/bundle-size.json"), `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote bench/results/bundle-size.json");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
