/**
 * The coordinator's DP work per round at d = 65,536, on top of SecAgg's unmasking (see
 * `bench/secagg.ts`): adding the shard sums, decoding (KLS21 Alg. 2: centred lift, unscale,
 * inverse rotation) and, for the central mechanism, the exact discrete Gaussian noise; plus the
 * ledger entry (accounting, canonical hash, Ed25519 signature). Run: `npx tsx bench/dp-server.ts`;
 * writes `bench/results/dp-server.json`. Medians of 15 runs after 3 warm-ups.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  addModular,
  bufferedRandom,
  decodeAggregate,
  planCentralRound,
  planDistributedRound,
} from "../coordinator/src/dp/index";
import { signerFromSeed } from "../coordinator/src/ledger/chain";
import { PrivacyLedger, roundRecordFromConfig } from "../coordinator/src/ledger/ledger";
import { MemoryLedgerStore } from "../coordinator/src/ledger/store";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const D = 65_536;
const base = { dim: D, clipNorm: 1, expectedClients: 1000, modulusBits: 24, rotationSeed: "5eed".repeat(8) };
const distributed = planDistributedRound({
  ...base,
  targetEpsilon: 8,
  delta: 1e-7,
  rounds: 100,
  samplingRate: 1,
  threshold: 700,
});
const central = planCentralRound({ ...base, noiseMultiplier: 1.1 });
const rng = bufferedRandom();
const shardSums = Array.from({ length: 5 }, () => Uint32Array.from({ length: D }, () => rng.nextUint32()));

function time(fn: () => unknown | Promise<unknown>): Promise<number> {
  return (async () => {
    const t: number[] = [];
    for (let r = 0; r < 18; r++) {
      const t0 = performance.now();
      await fn();
      if (r >= 3) t.push(performance.now() - t0);
    }
    return [...t].sort((a, b) => a - b)[t.length >> 1] as number;
  })();
}

const total = new Uint32Array(D);
const cases = [
  {
    name: "add 5 shard sums mod 2^32",
    ms: await time(() => {
      for (const s of shardSums) addModular(total, s);
    }),
  },
  {
    name: "decode, distributed (lift, unscale, inverse rotation)",
    ms: await time(() => decodeAggregate(distributed, total, { survivors: 900 })),
  },
  {
    name: "decode, central (+ exact discrete Gaussian noise)",
    ms: await time(() => decodeAggregate(central, total, { survivors: 900, rng })),
  },
];
const store = new MemoryLedgerStore();
const ledger = new PrivacyLedger({
  store,
  signer: signerFromSeed(new Uint8Array(32).fill(3)),
  scope: { tenant: "bench", model: "m" },
  policy: { epsilonCap: 1e9, delta: 1e-7 },
});
let round = 0;
cases.push({
  name: "ledger entry (account, hash, sign, append)",
  ms: await time(() =>
    ledger.recordRound(
      roundRecordFromConfig(distributed, {
        round: ++round,
        cohortSize: 1000,
        survivors: 900,
        threshold: 700,
        sampling: { uniform: false, rate: 1 },
      }),
    ),
  ),
});

console.log(`Coordinator DP work per round, d = ${D} (median of 15; load ${loadavg()[0]?.toFixed(2)})`);
for (const c of cases) console.log(`${c.name.padEnd(56)}${c.ms.toFixed(1).padStart(8)} ms`);
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench/results/dp-server.json"),
  `${JSON.stringify({ bench: "dp-server", date: new Date().toISOString(), node: process.version, loadAverage: loadavg()[0], dimension: D, cases }, null, 2)}\n`,
);
console.log("wrote bench/results/dp-server.json");
