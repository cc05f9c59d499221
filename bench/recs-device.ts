/**
 * Recommendations: the device's budgets in Chromium at rank 32 (issue 12): the local step per
 * round (user solve + round vector, excluding SecAgg and DP encoding) at most 250 ms with a
 * 100,000-item catalogue, `recommend(10)` at most 20 ms, peak JS heap at most 64 MB.
 * Run: `npx tsx bench/recs-device.ts [--reps N]`; writes `bench/results/recs-device.json`.
 *
 * Per catalogue size (4,000, 20,000, 100,000 items) and tfjs backend (wasm, cpu, and webgl when
 * Chromium offers it under the shared `--disable-gpu` flags): decoding a published version (int8
 * factors → float32), the local step of a device with 50 bought items, and `recommendItems(10)`
 * (catalogue scores Y x on tfjs, topk, reasons). The page is an esbuild bundle of the SDK's sources
 * and tfjs, with tfjs-backend-wasm's .wasm files served beside it from 127.0.0.1. JS heap from the
 * DevTools protocol (`Performance.getMetrics`, JSHeapUsedSize) after every step; the maximum is
 * reported (a sampled peak). Upload per round: the padded dimension × 24-bit words, base64.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { fcfDimension } from "../coordinator/protocol/src/models/fcf-layout";
import { FcfSpec } from "../coordinator/protocol/src/wire/training";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../test/chromium";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const repsArg = process.argv.indexOf("--reps");
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 12;
const WARMUP = 2;
const SIZES = [4_000, 20_000, 100_000];
const WASM_DIR = join(ROOT, "node_modules/@tensorflow/tfjs-backend-wasm/dist");

const PAGE_SOURCE = `
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { initialFcfState, publishFcf } from "./coordinator/src/models/fcf.ts";
import { contributeFcf, decodeFcfModel, recommendItems, solveUserFactor } from "./sdk/src/models/fcf.ts";
setWasmPaths("/wasm/");
export async function useBackend(name) {
  try { return (await tf.setBackend(name)) && tf.getBackend() === name; } catch { return false; }
}
let published = null;
export function publish(spec, items) {
  const ids = Array.from({ length: items }, (_, i) => "P" + i);
  const cats = ids.map((_, i) => "c" + (i % 20));
  published = publishFcf(spec, { items: ids, categories: cats }, initialFcfState(spec, items));
  return { factorBytes: published.weights.length, paramsBytes: JSON.stringify(published.params).length };
}
let model = null;
let version = 0;
export function decode() {
  const t0 = performance.now();
  model = decodeFcfModel({ modelId: "recs", version: ++version, ...published });
  return performance.now() - t0;
}
export function step(spec, rep) {
  const n = model.items.length;
  const touched = Array.from({ length: 50 }, (_, i) => ({ row: (i * 7919 + rep * 131) % n, purchases: 1 + (i % 3), confidence: 11 + 10 * (i % 3) }))
    .sort((a, b) => a.row - b.row);
  const block = { index: 0, start: 0, size: Math.min(spec.blockSize, n) };
  const t0 = performance.now();
  const x = solveUserFactor(spec, model, touched);
  contributeFcf(spec, block, model, touched, x);
  const t1 = performance.now();
  recommendItems(spec, model, touched, 10);
  const t2 = performance.now();
  return { step: t1 - t0, recommend: t2 - t1 };
}
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;
const js = (
  await build({
    stdin: { contents: PAGE_SOURCE, resolveDir: ROOT, sourcefile: "recs-page.ts", loader: "ts" },
    bundle: true,
    format: "iife",
    globalName: "recsBench",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
    conditions: ["source"],
    logLevel: "error",
  })
).outputFiles[0]?.text;
const server = createServer((req, res) => {
  const url = req.url ?? "/";
  if (url.startsWith("/wasm/")) {
    res.writeHead(200, { "content-type": "application/wasm" });
    res.end(readFileSync(join(WASM_DIR, url.slice(6).replace(/[^a-z0-9.-]/g, ""))));
    return;
  }
  res.writeHead(200, { "content-type": url === "/bench.js" ? "text/javascript" : "text/html" });
  res.end(
    url === "/bench.js" ? js : `<!doctype html><meta charset="utf-8"><script src="/bench.js"></script>`,
  );
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
const spec = FcfSpec.parse({ rank: 32 });
const dimension = fcfDimension(spec);
const padded = 2 ** Math.ceil(Math.log2(dimension));
const uploadBytes = Math.ceil((padded * 3) / 3) * 4;
const rows: Array<Record<string, number | string | boolean>> = [];
type Bench = { [k: string]: (...a: unknown[]) => unknown };
try {
  for (const backend of ["wasm", "cpu", "webgl"]) {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");
    const heap = async () => {
      const { metrics } = await cdp.send("Performance.getMetrics");
      return metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? 0;
    };
    const call = <T>(name: string, ...args: unknown[]) =>
      page.evaluate(
        ([n, a]) =>
          (globalThis as unknown as { recsBench: Bench }).recsBench[n as string]?.(...(a as unknown[])),
        [name, args] as const,
      ) as Promise<T>;
    const available = await call<boolean>("useBackend", backend);
    if (!available) {
      rows.push({ backend, items: 0, available: false });
      await page.close();
      continue;
    }
    for (const items of SIZES) {
      const sizes = await call<{ factorBytes: number; paramsBytes: number }>("publish", spec, items);
      let peak = await heap();
      const decodeMs = await call<number>("decode");
      peak = Math.max(peak, await heap());
      const reps: Array<{ step: number; recommend: number }> = [];
      for (let r = 0; r < REPS; r++) {
        reps.push(await call("step", spec, r));
        peak = Math.max(peak, await heap());
      }
      const warm = reps.slice(WARMUP);
      rows.push({
        backend,
        available: true,
        items,
        decodeMs,
        stepMs: median(warm.map((r) => r.step)),
        recommendMs: median(warm.map((r) => r.recommend)),
        coldRecommendMs: reps[0]?.recommend ?? 0,
        peakHeapMB: peak / 2 ** 20,
        factorBytes: sizes.factorBytes,
        paramsBytes: sizes.paramsBytes,
        uploadBytes,
      });
    }
    await page.close();
  }
  const version = browser.version();
  console.log(
    `Recommendations: device budgets in Chromium ${version}, rank 32 (median of ${REPS - WARMUP}; load ${loadavg()[0]?.toFixed(2)}); budgets: step ≤ 250 ms, recommend(10) ≤ 20 ms, heap ≤ 64 MB`,
  );
  console.log(
    "| backend | items | decode ms | local step ms | recommend(10) ms (cold) | peak JS heap MB | download B (factors + params) | upload B/round |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    if (!r.available) {
      console.log(`| ${r.backend} | not available under --disable-gpu | | | | | | |`);
      continue;
    }
    console.log(
      `| ${r.backend} | ${r.items} | ${Number(r.decodeMs).toFixed(1)} | ${Number(r.stepMs).toFixed(2)} | ${Number(r.recommendMs).toFixed(2)} (${Number(r.coldRecommendMs).toFixed(1)}) | ${Number(r.peakHeapMB).toFixed(1)} | ${Number(r.factorBytes) + Number(r.paramsBytes)} | ${r.uploadBytes} |`,
    );
  }
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(
    join(ROOT, "bench/results/recs-device.json"),
    `${JSON.stringify({ bench: "recs-device", chromium: version, rank: 32, dimension, paddedDimension: padded, reps: REPS, warmup: WARMUP, load: loadavg(), rows, at: new Date().toISOString() }, null, 2)}\n`,
  );
  console.log("wrote bench/results/recs-device.json");
} finally {
  await browser.close();
  server.close();
}
