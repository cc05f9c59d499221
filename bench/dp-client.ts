/**
 * Client DP benchmark (budget: clip, rotation, rounding and noise at d = 65,536 in Chromium in
 * at most 50 ms). Run: `npx tsx bench/dp-client.ts [--reps N]`; writes
 * `bench/results/dp-client.json`.
 *
 * The round configuration is planned as the coordinator would (1,000-client cohort, SecAgg
 * threshold 700, 32-bit modulus, epsilon 8 over 100 rounds). The page is an esbuild bundle of
 * `coordinator/src/dp` served from 127.0.0.1 by node:http and driven by playwright-core on
 * Debian's /usr/bin/chromium. Each repetition times the stages separately (clip; pad + rotate +
 * scale; conditional rounding; noise + wrap) and then the real `encodeClientUpdate` end to end,
 * with noise from `crypto.getRandomValues`. Medians are over the repetitions after warm-up; the
 * first (cold) run is reported on its own. The same runs in Node for comparison.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { type DistributedDiscreteGaussianConfig, planDistributedRound } from "../coordinator/src/dp/index";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const D = 65_536;
const repsArg = process.argv.indexOf("--reps");
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 25;
const WARMUP = 5;

/** The in-page benchmark (bundled by esbuild). Stage times are ms per repetition. */
const PAGE_SOURCE = `
import {
  bufferedRandom, clipL2InPlace, conditionalRandomizedRound, discreteGaussianSampler,
  encodeClientUpdate, paddedDim, rotateForward, roundSigns,
} from "./coordinator/src/dp/index.ts";

export function runBench(cfg, reps) {
  const rng = bufferedRandom();
  const n = paddedDim(cfg);
  const update = new Float64Array(cfg.dim);
  for (let i = 0; i < cfg.dim; i++) update[i] = Math.sin(i * 0.37) * 0.02;
  const out = [];
  for (let r = 0; r < reps; r++) {
    const x = Float64Array.from(update);
    let t = performance.now();
    clipL2InPlace(x, cfg.clipNorm);
    const clip = performance.now() - t;
    t = performance.now();
    const y = rotateForward(x, roundSigns(cfg.rotationSeed, n));
    const inv = 1 / cfg.gamma;
    for (let i = 0; i < n; i++) y[i] *= inv;
    const rotate = performance.now() - t;
    t = performance.now();
    const { rounded } = conditionalRandomizedRound(rng, y, (cfg.clipNorm / cfg.gamma) * (1 + 1e-12), cfg.beta);
    const round = performance.now() - t;
    t = performance.now();
    const noise = discreteGaussianSampler(rng, cfg.localSigma);
    const m = 2 ** cfg.modulusBits;
    const values = new Uint32Array(n);
    for (let i = 0; i < n; i++) { const v = (rounded[i] + noise()) % m; values[i] = v < 0 ? v + m : v; }
    const noiseMs = performance.now() - t;
    t = performance.now();
    encodeClientUpdate(cfg, update, rng);
    const total = performance.now() - t;
    out.push({ clip, rotate, round, noise: noiseMs, stages: clip + rotate + round + noiseMs, total });
  }
  return out;
}
`;

type Rep = { clip: number; rotate: number; round: number; noise: number; stages: number; total: number };
const KEYS = ["clip", "rotate", "round", "noise", "stages", "total"] as const;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function summarise(reps: Rep[]): Record<(typeof KEYS)[number], number> & { cold: number } {
  const warm = reps.slice(WARMUP);
  const out = { cold: reps[0]!.total } as Record<(typeof KEYS)[number], number> & { cold: number };
  for (const k of KEYS) out[k] = median(warm.map((r) => r[k]));
  return out;
}

async function bundle(): Promise<string> {
  const res = await build({
    stdin: { contents: PAGE_SOURCE, resolveDir: ROOT, sourcefile: "dp-client-page.ts", loader: "ts" },
    bundle: true,
    format: "iife",
    globalName: "dpBench",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
  });
  return res.outputFiles[0]!.text;
}

async function inChromium(
  js: string,
  cfg: DistributedDiscreteGaussianConfig,
): Promise<{ reps: Rep[]; version: string }> {
  const html = `<!doctype html><meta charset="utf-8"><title>dp-client bench</title><script src="/bench.js"></script>`;
  const server = createServer((req, res) => {
    if (req.url === "/bench.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(js);
    } else {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(html);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const reps = await page.evaluate(
      ([c, n]) =>
        (globalThis as unknown as { dpBench: { runBench(c: unknown, n: number): Rep[] } }).dpBench.runBench(
          c,
          n,
        ),
      [cfg, REPS] as const,
    );
    return { reps, version: browser.version() };
  } finally {
    await browser.close();
    server.close();
  }
}

async function inNode(js: string, cfg: DistributedDiscreteGaussianConfig): Promise<Rep[]> {
  const fn = new Function(`${js}; return dpBench;`) as () => { runBench(c: unknown, n: number): Rep[] };
  return fn().runBench(cfg, REPS);
}

const cfg = planDistributedRound({
  dim: D,
  clipNorm: 1,
  expectedClients: 1000,
  modulusBits: 32,
  rotationSeed: "5eed".repeat(8),
  targetEpsilon: 8,
  delta: 1e-7,
  rounds: 100,
  samplingRate: 1,
  threshold: 700,
});
const js = await bundle();
const chrome = await inChromium(js, cfg);
const node = await inNode(js, cfg);
const c = summarise(chrome.reps);
const n = summarise(node);

console.log(
  `\nClient DP work at d = ${D.toLocaleString("en")} (median of ${REPS - WARMUP} after ${WARMUP} warm-up; cold = first run)`,
);
console.log(
  `config: gamma ${cfg.gamma.toExponential(3)}, local sigma ${cfg.localSigma.num}/2^${cfg.localSigma.exp2} (scaled), m = ${cfg.modulusBits}, beta ${cfg.beta.toFixed(4)}`,
);
console.log("stage".padEnd(34) + `Chromium ${chrome.version}`.padStart(22) + "Node".padStart(12));
const label: Record<string, string> = {
  clip: "clip (L2)",
  rotate: "pad + Hadamard rotation + scale",
  round: "conditional randomised rounding",
  noise: "discrete Gaussian noise + wrap",
  stages: "sum of stages",
  total: "encodeClientUpdate end to end",
  cold: "encodeClientUpdate, cold (run 1)",
};
for (const k of [...KEYS, "cold"] as const) {
  console.log(
    label[k]!.padEnd(34) + `${c[k].toFixed(2)} ms`.padStart(22) + `${n[k].toFixed(2)} ms`.padStart(12),
  );
}
const met = c.total <= 50;
console.log(
  `budget 50 ms in Chromium (end to end, median): ${met ? "met" : "NOT met"}; load average ${loadavg()[0]!.toFixed(2)}`,
);

mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench/results/dp-client.json"),
  `${JSON.stringify(
    {
      bench: "dp-client",
      date: new Date().toISOString(),
      dim: D,
      reps: REPS,
      warmup: WARMUP,
      chromium: chrome.version,
      node: process.version,
      loadAverage1m: loadavg()[0],
      config: cfg,
      budgetMs: 50,
      budgetMet: met,
      medianMs: { chromium: c, node: n },
      runsMs: { chromium: chrome.reps, node },
    },
    null,
    2,
  )}\n`,
);
console.log("wrote bench/results/dp-client.json");
