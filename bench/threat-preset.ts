/**
 * What the `maliciousServer` preset (t > k/2) costs against the default honest-but-curious
 * parameters (issue 13): the (k, t) each picks for the same design targets (30% dropout survived
 * in ≥ 99.9% of rounds, collusion ≤ 2^-40 at 5% colluders), and a whole simulated round at n = 100
 * with the real client and server functions (per-device ms, server ms, bytes a device sends).
 *
 * Run: `npx tsx --conditions=source bench/threat-preset.ts`. Writes `bench/results/threat-preset.json`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chooseParameters } from "../coordinator/src/secagg/params.ts";
import { runSimulatedRound, seededRandomBytes } from "../test/secagg/driver.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIM = 1024;

const rows: Array<Record<string, number | string | boolean>> = [];
for (const n of [50, 100, 1000]) {
  for (const preset of ["honestButCurious", "maliciousServer"] as const) {
    const p = chooseParameters({ n, honestMajority: preset === "maliciousServer" });
    rows.push({ n, preset, k: p.k, t: p.t, failureBound: p.failureBound, collusionBound: p.collusionBound });
  }
}

const rounds: Array<Record<string, number | string>> = [];
const n = 100;
for (const preset of ["honestButCurious", "maliciousServer"] as const) {
  const p = chooseParameters({ n, honestMajority: preset === "maliciousServer" });
  const inputs = Array.from({ length: n }, (_, u) =>
    Uint32Array.from({ length: DIM }, (_, i) => (u + i) % 256),
  );
  const start = performance.now();
  const outcome = await runSimulatedRound({
    cohortSize: n,
    k: p.k,
    t: p.t,
    dimension: DIM,
    valueBits: 8,
    modulusBits: 16,
    consistencyCheck: true,
    inputs,
    randomBytes: seededRandomBytes(`preset-${preset}`),
  });
  const wall = performance.now() - start;
  if (outcome.abort) throw new Error(`${preset}: round aborted: ${outcome.abort.reason}`);
  const clientMs = Array.from(outcome.stats.clientMs).sort((a, b) => a - b);
  const sent = Array.from(outcome.stats.bytesSent).reduce((a, b) => a + b, 0) / n;
  const serverMs = Object.values(outcome.stats.serverMs).reduce((a, b) => a + b, 0);
  rounds.push({
    preset,
    k: p.k,
    t: p.t,
    deviceMsMedian: clientMs[Math.floor(n / 2)] ?? Number.NaN,
    serverMs,
    bytesSentPerDevice: sent,
    wallMs: wall,
  });
}

console.log("(k, t) for 30% dropout, failure ≤ 1e-3, collusion ≤ 2^-40 at 5% colluders");
console.log("| n | preset | k | t | failure bound | collusion bound |");
console.log("|---:|---|---:|---:|---:|---:|");
for (const r of rows)
  console.log(
    `| ${r.n} | ${r.preset} | ${r.k} | ${r.t} | ${Number(r.failureBound).toExponential(2)} | ${Number(r.collusionBound).toExponential(2)} |`,
  );
console.log(`\nOne simulated round, n = ${n}, d = ${DIM}, consistency check on (no dropout)`);
console.log("| preset | k | t | device ms (median) | server ms | bytes sent / device |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of rounds)
  console.log(
    `| ${r.preset} | ${r.k} | ${r.t} | ${Number(r.deviceMsMedian).toFixed(1)} | ${Number(r.serverMs).toFixed(0)} | ${Number(r.bytesSentPerDevice).toFixed(0)} |`,
  );
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench", "results", "threat-preset.json"),
  `${JSON.stringify({ bench: "threat-preset", date: new Date().toISOString(), node: process.version, parameters: rows, rounds }, null, 2)}\n`,
);
