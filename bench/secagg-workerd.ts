/**
 * The shard's accept path measured inside workerd (Miniflare), the coordinator's production
 * runtime, beside `bench/secagg.ts`'s node figure. Node's WebCrypto copies each 213 KB frame and
 * digests it on a thread-pool thread; workerd digests on the calling thread, so the two differ.
 * One request runs accept over the 900 survivors of a bench shard (n = 1,000, d = 65,536) in
 * batches of 50, timed by workerd's clock (wall ms, which advances across I/O only; see the
 * worker). Median of the batch means, over `--runs` requests (default 3), per (k, t).
 *
 * Run: `npx tsx bench/secagg-workerd.ts [--runs R]`. Writes `bench/results/secagg-workerd.json`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import * as z from "zod";
import { median } from "./secagg-round";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { runs: { type: "string", default: "3" } } });
const runs = Number(values.runs);

const Reply = z.object({ survivors: z.number(), tickMs: z.number(), perInputMs: z.array(z.number()) });

const bundle = await build({
  entryPoints: [join(ROOT, "bench/workerd/accept-worker.ts")],
  bundle: true,
  write: false,
  format: "esm",
  platform: "browser",
  conditions: ["source"],
  target: "es2022",
});
const script = bundle.outputFiles[0]?.text ?? "";
const mf = new Miniflare({ modules: true, script, compatibilityDate: "2026-04-20" });
const loadStart = loadavg();
const cells = [];
try {
  for (const { k, t } of [
    { k: 6, t: 4 },
    { k: 54, t: 21 },
  ]) {
    const perRun: number[] = [];
    for (let r = 0; r < runs; r++) {
      const response = await mf.dispatchFetch(`http://bench/?k=${k}&t=${t}&seed=run-${r}`);
      if (!response.ok) throw new Error(`worker answered ${response.status}: ${await response.text()}`);
      const reply = Reply.parse(await response.json());
      perRun.push(median(reply.perInputMs));
    }
    cells.push({
      k,
      t,
      n: 1000,
      d: 65536,
      survivors: 900,
      runs,
      perInputMedianMs: median(perRun),
      perRunMs: perRun,
    });
  }
} finally {
  await mf.dispose();
}
const loadEnd = loadavg();
console.log(
  `load average ${loadStart.map((x) => x.toFixed(2)).join(" ")} -> ${loadEnd.map((x) => x.toFixed(2)).join(" ")}`,
);
console.log("| k/t | per-input accept in workerd (median of runs) | runs |");
console.log("|---|---:|---|");
for (const c of cells)
  console.log(
    `| ${c.k}/${c.t} | ${c.perInputMedianMs.toFixed(3)} ms | ${c.perRunMs.map((x) => x.toFixed(3)).join(", ")} |`,
  );
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench/results/secagg-workerd.json"),
  `${JSON.stringify({ bench: "secagg-workerd", date: new Date().toISOString(), loadStart, loadEnd, cells }, null, 2)}\n`,
);
console.log("wrote bench/results/secagg-workerd.json");
