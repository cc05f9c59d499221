/**
 * Ledger verification benchmark: how long an auditor waits for `audit verify` on a long chain.
 * Run: `npx tsx bench/ledger-verify.ts [entries]` (default 10,000); writes
 * `bench/results/ledger-verify.json`.
 *
 * Builds a chain of distributed-DP round entries through `PrivacyLedger` (as the coordinator
 * writes them, one signed append per round), then times, each the median of 3 runs (the slow
 * tweetnacl cases once: they take minutes):
 * - `verifyLedger`, signatures by tweetnacl (the synchronous path, also used inside Workers);
 * - `verifyLedgerFast`, signatures by the platform's native Ed25519 (what the CLI runs);
 * - the signature checks alone, both ways.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { planDistributedRound } from "../coordinator/src/dp/planning";
import { signerFromSeed, verifySignature, verifySignaturesNative } from "../coordinator/src/ledger/chain";
import { PrivacyLedger, roundRecordFromConfig } from "../coordinator/src/ledger/ledger";
import { MemoryLedgerStore, readAll } from "../coordinator/src/ledger/store";
import { verifyLedger, verifyLedgerFast } from "../coordinator/src/ledger/verify";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const ENTRIES = Number(process.argv[2] ?? 10_000);
const REPS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
async function time(fn: () => unknown, reps = REPS): Promise<number> {
  const t: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

const signer = signerFromSeed(new Uint8Array(32).fill(7));
const scope = { tenant: "bench", model: "segments" };
const store = new MemoryLedgerStore();
const ledger = new PrivacyLedger({ store, signer, scope, policy: { epsilonCap: 1e9, delta: 1e-7 } });
const cfg = planDistributedRound({
  dim: 64,
  clipNorm: 1,
  expectedClients: 1000,
  modulusBits: 24,
  rotationSeed: "ab".repeat(16),
  targetEpsilon: 10,
  delta: 1e-7,
  rounds: 100,
  samplingRate: 1,
  threshold: 500,
});
const t0 = performance.now();
for (let i = 0; i < ENTRIES; i++) {
  await ledger.recordRound(
    roundRecordFromConfig(cfg, {
      round: i + 1,
      cohortSize: 1000,
      survivors: 800 + (i % 50),
      threshold: 500,
      sampling: { uniform: false, rate: 1 },
    }),
  );
  if ((i + 1) % 1000 === 0) process.stderr.write(`\rbuilt ${i + 1}/${ENTRIES} entries`);
}
const buildMs = performance.now() - t0;
process.stderr.write("\n");
const rows = await readAll(store, scope);

const tweetnaclMs = await time(() => {
  if (!verifyLedger(rows, signer.publicKey).ok) throw new Error("chain does not verify");
}, 1);
const nativeMs = await time(async () => {
  if (!(await verifyLedgerFast(rows, signer.publicKey)).ok) throw new Error("chain does not verify");
});
const sigTweetnaclMs = await time(() => rows.every((e) => verifySignature(e, signer.publicKey)), 1);
const sigNativeMs = await time(() => verifySignaturesNative(rows, signer.publicKey));

const cases = [
  { name: `verifyLedger (tweetnacl signatures), ${ENTRIES} entries`, ms: tweetnaclMs },
  { name: `verifyLedgerFast (native Ed25519), ${ENTRIES} entries`, ms: nativeMs },
  { name: "signatures only, tweetnacl", ms: sigTweetnaclMs },
  { name: "signatures only, native Ed25519 (WebCrypto)", ms: sigNativeMs },
];
console.log(
  `ledger verification, ${ENTRIES} entries (built in ${(buildMs / 1000).toFixed(1)} s), median of ${REPS}`,
);
console.log("case".padEnd(60) + "ms".padStart(12) + "µs/entry".padStart(12));
for (const c of cases)
  console.log(
    c.name.padEnd(60) + c.ms.toFixed(0).padStart(12) + ((c.ms * 1000) / ENTRIES).toFixed(1).padStart(12),
  );
console.log(`speed-up of the CLI path: ${(tweetnaclMs / nativeMs).toFixed(1)}x`);

mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench/results/ledger-verify.json"),
  `${JSON.stringify(
    {
      bench: "ledger-verify",
      date: new Date().toISOString(),
      node: process.version,
      entries: ENTRIES,
      reps: REPS,
      buildMs,
      cases,
      speedup: tweetnaclMs / nativeMs,
    },
    null,
    2,
  )}\n`,
);
console.log("wrote bench/results/ledger-verify.json");
