/**
 * A device's whole work in one distributed-DP SecAgg+ round, in Chromium: the DESIGN.md client
 * budget (d = 65,536, 1,000-device cohort: at most 150 ms) and upload budget (at most 1.7x the
 * raw 16-bit vector) on the DP path. Run: `npx tsx bench/dp-round-client.ts [--runs N]`; writes
 * `bench/results/dp-round-client.json`.
 *
 * The round is planned as the coordinator plans it (`planDistributedRound`: epsilon 8 over 100
 * rounds at delta 1e-7, 24-bit modulus, the default k and t for n = 1,000 and 700 noise shares),
 * so SecAgg runs with b = m = 24 on residues. Each run, in one page: the SDK's
 * `prepareDpContribution` (clip, rotate, round, noise, wrap) on a random update, then the SecAgg
 * client stages for one device against real neighbour material (`probeClient`, 10% dropout).
 * The first run warms the JIT and is reported on its own.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { planDistributedRound } from "../coordinator/src/dp/planning";
import { chooseParameters } from "../coordinator/src/secagg/params";
import { runInChromium } from "./prg";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const D = 65_536;
const N = 1000;
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 9;

const { k, t } = chooseParameters({ n: N });
const config = planDistributedRound({
  dim: D,
  clipNorm: 1,
  expectedClients: N,
  modulusBits: 24,
  rotationSeed: "5eed".repeat(8),
  targetEpsilon: 8,
  delta: 1e-7,
  rounds: 100,
  samplingRate: 1,
  threshold: 700,
});
const shape = { n: N, k, t, dimension: D, valueBits: 24, modulusBits: 24, dropout: 0.1 };

interface Run {
  dpMs: number;
  secaggMs: number;
  bytesSent: number;
}

const runs = await runInChromium<Run[]>(`
  import { prepareDpContribution } from "../sdk/src/dp/client";
  import { probeClient } from "../sdk/src/secagg/probe";
  (window as unknown as { __bench: () => Promise<unknown> }).__bench = async () => {
    const out = [];
    for (let r = 0; r < ${RUNS + 1}; r++) {
      const update = new Float64Array(${D});
      for (let i = 0; i < update.length; i++) update[i] = Math.random() - 0.5;
      const t0 = performance.now();
      const dp = prepareDpContribution(${JSON.stringify(config)}, update);
      const dpMs = performance.now() - t0;
      if (dp.values.length !== ${D}) throw new Error("wrong length");
      const probe = await probeClient(${JSON.stringify(shape)});
      out.push({ dpMs, secaggMs: probe.totalMs, bytesSent: probe.bytesSent });
    }
    return out;
  };`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
const [cold, ...warm] = runs;
const dp = median(warm.map((r) => r.dpMs));
const secagg = median(warm.map((r) => r.secaggMs));
const total = median(warm.map((r) => r.dpMs + r.secaggMs));
const bytes = median(warm.map((r) => r.bytesSent));
const ratio = bytes / (D * 2);
console.log(
  `Distributed-DP SecAgg+ round, one device in Chromium: d = ${D}, n = ${N}, k = ${k}, t = ${t}, m = 24 (median of ${warm.length}; load ${loadavg()[0]?.toFixed(2)})`,
);
console.log("part                                   ms");
console.log(`DP encode (prepareDpContribution)  ${dp.toFixed(1).padStart(8)}`);
console.log(`SecAgg+ client stages              ${secagg.toFixed(1).padStart(8)}`);
console.log(
  `whole round                        ${total.toFixed(1).padStart(8)}   budget 150: ${total <= 150 ? "met" : "NOT met"}`,
);
console.log(
  `cold first run                     ${((cold?.dpMs ?? 0) + (cold?.secaggMs ?? 0)).toFixed(1).padStart(8)}`,
);
console.log(
  `upload ${bytes} B = ${ratio.toFixed(3)}x the raw 16-bit vector   budget 1.7x: ${ratio <= 1.7 ? "met" : "NOT met"}`,
);

mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench/results/dp-round-client.json"),
  `${JSON.stringify(
    {
      bench: "dp-round-client",
      date: new Date().toISOString(),
      loadAverage: loadavg()[0],
      shape,
      dpConfig: { gamma: config.gamma, localSigma: config.localSigma, modulusBits: config.modulusBits },
      medianMs: { dp, secagg, total },
      coldMs: cold ? cold.dpMs + cold.secaggMs : null,
      budgetMs: 150,
      bytesSent: bytes,
      uploadRatio: ratio,
      runs,
    },
    null,
    2,
  )}\n`,
);
console.log("wrote bench/results/dp-round-client.json");
