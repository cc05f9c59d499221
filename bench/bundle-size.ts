/**
 * The SDK's size as a user gets it. A page that imports `@fedprofile/sdk` downloads, before any
 * `sync()`, the entry chunk plus every chunk it imports statically (transitively); chunks reached
 * only through `import()` load on first `sync()`/`pullModel()`. Each chunk is counted minified and
 * gzip -9 (one HTTP response each). The same is measured for the script-tag build
 * (`dist/fedprofile.min.js`, `sdk/iife.ts`): its IIFE plus what it loads before the first sync.
 *
 * The bundle is built the way a storefront ships it: esbuild, ESM with code splitting, minified,
 * browser platform, from the *built* package (`sdk/dist/`, what `npm install` gives a user).
 *
 * Run: `npm run build && npx tsx bench/bundle-size.ts`. Writes `bench/results/bundle-size.json`.
 * `test/node/bundle-size.test.ts` fails CI when an up-front figure exceeds `UP_FRONT_BUDGET_BYTES`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build, type Metafile } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "bench/.bundle");

/** The budget: 20 KB (20 × 1024 bytes) minified + gzip -9, up front (DESIGN.md; Snowplow caps at 20 kb). */
export const UP_FRONT_BUDGET_BYTES = 20 * 1024;

/** One output file of a build. */
export interface ChunkSize {
  file: string;
  minified: number;
  gzip: number;
}

/** What a page downloads before its first `sync()`, and what loads later. */
export interface UpFrontMeasure {
  /** The entry chunk and every chunk it imports statically, transitively. */
  upFront: ChunkSize[];
  /** Sum of `upFront` gzip sizes. */
  upFrontGzip: number;
  /** Chunks reached only through dynamic `import()`. */
  lazy: ChunkSize[];
  /** Text of every up-front chunk, concatenated (for content checks). */
  upFrontText: string;
}

/** The chunks an output imports statically, transitively (esbuild's metafile `import-statement`s). */
export function staticClosure(meta: Metafile, entry: string): string[] {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    for (const imported of meta.outputs[file]?.imports ?? []) {
      if (imported.kind === "import-statement" && !imported.external && !seen.has(imported.path)) {
        seen.add(imported.path);
        queue.push(imported.path);
      }
    }
  }
  return [...seen];
}

/** Builds `entry` for the browser (ESM, splitting, minified) and splits its chunks into up front and lazy. */
export async function measureEntry(entry: string, name: string): Promise<UpFrontMeasure> {
  const result = await build({
    entryPoints: { [name]: entry },
    bundle: true,
    format: "esm",
    splitting: true,
    minify: true,
    platform: "browser",
    target: "es2022",
    outdir: join(OUT, name),
    write: false,
    metafile: true,
    logLevel: "silent",
    absWorkingDir: ROOT,
  });
  // The output named after the entry: esbuild also sets `entryPoint` on chunks reached by
  // `import()`, so "the first output with an entryPoint" can be a lazy chunk.
  const entryOut = Object.entries(result.metafile.outputs).find(
    ([file, o]) => o.entryPoint !== undefined && file.endsWith(`/${name}.js`),
  )?.[0];
  if (!entryOut) throw new Error(`esbuild produced no entry chunk for ${entry}`);
  const upFrontFiles = new Set(staticClosure(result.metafile, entryOut));
  const upFront: ChunkSize[] = [];
  const lazy: ChunkSize[] = [];
  let upFrontText = "";
  for (const file of result.outputFiles) {
    if (!file.path.endsWith(".js")) continue;
    const key = relative(ROOT, file.path);
    const size = {
      file: key,
      minified: file.contents.byteLength,
      gzip: gzipSync(file.contents, { level: 9 }).byteLength,
    };
    if (upFrontFiles.has(key)) {
      upFront.push(size);
      upFrontText += file.text;
    } else lazy.push(size);
  }
  return { upFront, upFrontGzip: upFront.reduce((s, c) => s + c.gzip, 0), lazy, upFrontText };
}

/** The SDK's main entry as installed (`sdk/dist/index.js`); builds the package first if needed. */
export function builtSdkEntry(): string {
  const entry = join(ROOT, "sdk/dist/index.js");
  if (!existsSync(entry)) throw new Error("sdk/dist/index.js is missing: run `npm run build` first");
  return entry;
}

/** The SDK's main entry, as a page that does `import ... from "@fedprofile/sdk"` gets it. */
export function measureMainEntry(): Promise<UpFrontMeasure> {
  return measureEntry(builtSdkEntry(), "main");
}

/**
 * The script-tag build: `fedprofile.min.js` is one IIFE and loads nothing else before the first
 * `sync()`/`pullModel()`, which imports `fedprofile-sync.min.js` (see `sdk/scripts/build-iife.ts`).
 */
export function measureIife(): UpFrontMeasure {
  const size = (name: string): ChunkSize & { text: string } => {
    const path = join(ROOT, "sdk/dist", name);
    if (!existsSync(path)) throw new Error(`sdk/dist/${name} is missing: run \`npm run build\` first`);
    const contents = readFileSync(path);
    return {
      file: `sdk/dist/${name}`,
      minified: contents.byteLength,
      gzip: gzipSync(contents, { level: 9 }).byteLength,
      text: contents.toString("utf8"),
    };
  };
  const { text, ...iife } = size("fedprofile.min.js");
  const { text: _sync, ...lazy } = size("fedprofile-sync.min.js");
  return { upFront: [iife], upFrontGzip: iife.gzip, lazy: [lazy], upFrontText: text };
}

function table(label: string, m: UpFrontMeasure): string[] {
  const kb = (bytes: number) => (bytes / 1024).toFixed(2);
  return [
    `${label}: ${m.upFrontGzip} bytes gzip up front (${kb(m.upFrontGzip)} KB, budget ${kb(UP_FRONT_BUDGET_BYTES)} KB)`,
    "| chunk | loaded | minified KB | gzip KB |",
    "|---|---|---:|---:|",
    ...m.upFront.map((c) => `| ${c.file} | up front | ${kb(c.minified)} | ${kb(c.gzip)} |`),
    ...m.lazy.map((c) => `| ${c.file} | on first sync() / pullModel() | ${kb(c.minified)} | ${kb(c.gzip)} |`),
  ];
}

async function main(): Promise<void> {
  const main = await measureMainEntry();
  console.log(table("@fedprofile/sdk main entry", main).join("\n"));
  const iife = measureIife();
  console.log(table("script tag (fedprofile.min.js)", iife).join("\n"));
  const strip = ({ upFrontText: _, ...rest }: UpFrontMeasure) => rest;
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  const out = {
    bench: "bundle-size",
    date: new Date().toISOString(),
    budgetBytes: UP_FRONT_BUDGET_BYTES,
    measure: "entry chunk + every chunk it imports statically, esbuild minified, gzip -9, summed",
    main: strip(main),
    iife: strip(iife),
  };
  writeFileSync(join(ROOT, "bench/results/bundle-size.json"), `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote bench/results/bundle-size.json");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
