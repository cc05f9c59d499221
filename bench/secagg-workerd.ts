/**
 * The shard's accept path measured inside workerd (Miniflare), the coordinator's production
 * runtime, beside `bench/secagg.ts`'s node figure. Node's WebCrypto copies each 213 KB frame and
 * digests it on a thread-pool thread; workerd digests on the calling thread, so the two differ.
 * One request runs accept over the 900 survivors of a bench shard (n = 1,000, d = 65,536); another
 * does the same set-up and accepts nothing. The per-input CPU is the difference of the workerd
 * process's CPU time (user + system, from /proc, all its threads) over the two, divided by 900:
 * the one-core figure, as `bench/secagg.ts` takes process CPU in node. The worker's own wall
 * timing per batch of 50 (workerd's clock) is reported beside it. Medians over `--runs` pairs
 * (default 3), per (k, t).
 *
 * Run: `npx tsx bench/secagg-workerd.ts [--runs R]`. Writes `bench/results/secagg-workerd.json`.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
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

/** CPU ms (user + system) so far of this process's workerd children, from /proc/<pid>/stat. */
function workerdCpuMs(): number {
  const tick = 100; // USER_HZ on Linux
  let ms = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const close = stat.lastIndexOf(")");
    const name = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    if (name !== "workerd" || Number(fields[1]) !== process.pid) continue;
    ms += ((Number(fields[11]) + Number(fields[12])) * 1000) / tick;
  }
  return ms;
}
const mf = new Miniflare({ modules: true, script, compatibilityDate: "2026-04-20" });
const loadStart = loadavg();
const cells = [];
try {
  for (const { k, t } of [
    { k: 6, t: 4 },
    { k: 54, t: 21 },
  ]) {
    const cpuPerInput: number[] = [];
    const wallPerInput: number[] = [];
    for (let r = 0; r < runs; r++) {
      const cpu: Record<"setup" | "accept", number> = { setup: 0, accept: 0 };
      let survivors = 0;
      for (const mode of ["setup", "accept"] as const) {
        const before = workerdCpuMs();
        const query = `k=${k}&t=${t}&seed=run-${r}${mode === "setup" ? "&inputs=0" : ""}`;
        const response = await mf.dispatchFetch(`http://bench/?${query}`);
        if (!response.ok) throw new Error(`worker answered ${response.status}: ${await response.text()}`);
        const reply = Reply.parse(await response.json());
        cpu[mode] = workerdCpuMs() - before;
        if (mode === "accept") {
          survivors = reply.survivors;
          wallPerInput.push(median(reply.perInputMs));
        }
      }
      cpuPerInput.push((cpu.accept - cpu.setup) / survivors);
    }
    cells.push({
      k,
      t,
      n: 1000,
      d: 65536,
      survivors: 900,
      runs,
      cpuPerInputMs: median(cpuPerInput),
      cpuPerInputRunsMs: cpuPerInput,
      wallPerInputMs: median(wallPerInput),
      wallPerInputRunsMs: wallPerInput,
    });
  }
} finally {
  await mf.dispose();
}
const loadEnd = loadavg();
console.log(
  `load average ${loadStart.map((x) => x.toFixed(2)).join(" ")} -> ${loadEnd.map((x) => x.toFixed(2)).join(" ")}`,
);
console.log("| k/t | accept CPU per input (workerd process) | runs | wall per input (workerd clock) |");
console.log("|---|---:|---|---:|");
for (const c of cells)
  console.log(
    `| ${c.k}/${c.t} | ${c.cpuPerInputMs.toFixed(3)} ms | ${c.cpuPerInputRunsMs.map((x) => x.toFixed(3)).join(", ")} | ` +
      `${c.wallPerInputMs.toFixed(3)} ms |`,
  );
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench/results/secagg-workerd.json"),
  `${JSON.stringify({ bench: "secagg-workerd", date: new Date().toISOString(), loadStart, loadEnd, cells }, null, 2)}\n`,
);
console.log("wrote bench/results/secagg-workerd.json");
