/**
 * Segments: a device's work per round in Chromium (budget: at most 20 ms, excluding SecAgg).
 * Run: `npx tsx bench/segments-device.ts [--reps N]`; writes `bench/results/segments-device.json`.
 *
 * Per phase of the default k-means spec (k = 4 and k = 6): the SDK's `contributeKMeans` (the
 * standardised profile vector into its cell's or nearest centroid's block) plus its real DP
 * encoding, `prepareDpContribution` (clip, rotate, round, add the discrete Gaussian share, wrap),
 * with a configuration planned as the trainer plans it (1,000-device shard, 700 noise shares,
 * ε = 1 over the initialisation and 5 Lloyd rounds). The page is an esbuild bundle of the SDK's
 * sources served from 127.0.0.1 and driven by playwright-core on Debian's Chromium. Medians over
 * the repetitions after 5 warm-up runs; the cold first run is reported too.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { kmeansDimension, kmeansSensitivity } from "../coordinator/protocol/src/models/kmeans-layout";
import { KMeansSpec } from "../coordinator/protocol/src/wire/training";
import { planDistributedRound } from "../coordinator/src/dp/index";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../test/chromium";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const repsArg = process.argv.indexOf("--reps");
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 40;
const WARMUP = 5;
const BUDGET_MS = 20;

const PAGE_SOURCE = `
import { contributeKMeans } from "./sdk/src/models/kmeans.ts";
import { prepareDpContribution } from "./sdk/src/dp/client.ts";
export function runBench(spec, phase, cfg, base, reps) {
  const out = [];
  for (let r = 0; r < reps; r++) {
    const z = Array.from({ length: 9 }, (_, i) => Math.sin(r * 1.7 + i) * 1.5);
    const t0 = performance.now();
    const v = contributeKMeans(spec, phase, base, z);
    const t1 = performance.now();
    prepareDpContribution(cfg, v);
    const t2 = performance.now();
    out.push({ contribute: t1 - t0, encode: t2 - t1, total: t2 - t0 });
  }
  return out;
}
`;

type Rep = { contribute: number; encode: number; total: number };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;

const js = (
  await build({
    stdin: { contents: PAGE_SOURCE, resolveDir: ROOT, sourcefile: "segments-page.ts", loader: "ts" },
    bundle: true,
    format: "iife",
    globalName: "segBench",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
  })
).outputFiles[0]?.text;
const server = createServer((req, res) => {
  res.writeHead(200, { "content-type": req.url === "/bench.js" ? "text/javascript" : "text/html" });
  res.end(
    req.url === "/bench.js" ? js : `<!doctype html><meta charset="utf-8"><script src="/bench.js"></script>`,
  );
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
const rows: Array<Record<string, number | string>> = [];
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  for (const k of [4, 6]) {
    const spec = KMeansSpec.parse({ k });
    const base = {
      segments: Array.from({ length: k }, (_, id) => ({
        id,
        label: `s${id}`,
        centroid: Array.from({ length: 9 }, (_, i) => Math.cos(id + i)),
      })),
    };
    for (const phase of ["init", "lloyd"] as const) {
      const dim = kmeansDimension(spec, phase);
      const cfg = planDistributedRound({
        dim,
        clipNorm: kmeansSensitivity(spec, phase),
        expectedClients: 1000,
        threshold: 700,
        targetEpsilon: 1,
        rounds: 6,
        delta: 1e-6,
        modulusBits: 24,
        rotationSeed: "ab".repeat(32),
        samplingRate: 1,
      });
      const reps: Rep[] = await page.evaluate(
        ([s, p, c, b, n]) =>
          (globalThis as unknown as { segBench: { runBench: (...a: unknown[]) => Rep[] } }).segBench.runBench(
            s,
            p,
            c,
            b,
            n,
          ),
        [spec, phase, cfg, base, REPS] as const,
      );
      const warm = reps.slice(WARMUP);
      rows.push({
        k,
        phase,
        dimension: dim,
        paddedDimension: 2 ** Math.ceil(Math.log2(dim)),
        contributeMs: median(warm.map((r) => r.contribute)),
        encodeMs: median(warm.map((r) => r.encode)),
        totalMs: median(warm.map((r) => r.total)),
        coldMs: reps[0]?.total ?? 0,
      });
    }
  }
  const version = browser.version();
  console.log(
    `Segments: device work per round in Chromium ${version} (median of ${REPS - WARMUP}; budget ${BUDGET_MS} ms; load ${loadavg()[0]?.toFixed(2)})`,
  );
  console.log(
    "| k | phase | d (padded) | contribute ms | DP encode ms | total ms | cold ms | within budget |",
  );
  console.log("|---:|---|---:|---:|---:|---:|---:|---|");
  for (const r of rows) {
    console.log(
      `| ${r.k} | ${r.phase} | ${r.dimension} (${r.paddedDimension}) | ${Number(r.contributeMs).toFixed(3)} | ${Number(r.encodeMs).toFixed(2)} | ${Number(r.totalMs).toFixed(2)} | ${Number(r.coldMs).toFixed(1)} | ${Number(r.totalMs) <= BUDGET_MS ? "yes" : "NO"} |`,
    );
  }
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(
    join(ROOT, "bench/results/segments-device.json"),
    `${JSON.stringify({ bench: "segments-device", chromium: version, reps: REPS, warmup: WARMUP, budgetMs: BUDGET_MS, load: loadavg(), rows, at: new Date().toISOString() }, null, 2)}\n`,
  );
  console.log("wrote bench/results/segments-device.json");
} finally {
  await browser.close();
  server.close();
}
