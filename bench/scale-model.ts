/**
 * The scale model of a round on Cloudflare (issue 16): for 10^4 to 10^7 devices, the billed
 * requests, the largest CPU time of one invocation against its limit, storage, D1 queries per
 * second, the cost per day at list prices, and the first limit the round hits. The open of a
 * 10^7-device round is measured here (lazy shard open: no shard or aggregator object created).
 *
 * Inputs are the project's own figures: the SecAgg server round (`bench/results/secagg.json`),
 * the DP decode and ledger (`dp-server.json`), requests per device per round from the load run
 * (`load.json`), and the aggregator's combine and the root's fold, timed here on this machine.
 * Prices and limits are Cloudflare's published ones (constants below, with their pages).
 *
 * Run: `npx tsx --conditions=source bench/scale-model.ts` (writes bench/results/scale-model.json
 * and the table between the markers in docs/SCALE.md).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  aggregatorCount,
  combineChildren,
  createMemoryCoordinator,
  DEFAULT_ROUND_LIMITS,
  FAN_OUT,
  foldInto,
  generateTenantKeys,
  UNMASK_SLICE_WORDS,
} from "@fedprofile/coordinator";
import { DpRoundConfig } from "@fedprofile/protocol/dp";
import * as z from "zod";

const ROOT = join(import.meta.dirname, "..");
const results = (name: string) => join(ROOT, "bench/results", name);

// Cloudflare list prices, Workers Paid plan (developers.cloudflare.com/workers/platform/pricing,
// /durable-objects/platform/pricing, /d1/platform/pricing). Included monthly amounts are ignored:
// the model prices every unit, an upper bound.
const PRICE = {
  workerRequestPerM: 0.3,
  workerCpuMsPerM: 0.02,
  doRequestPerM: 0.15,
  doGbSecondPerM: 12.5,
  sqliteRowWrittenPerM: 1.0,
  sqliteRowReadPerM: 0.001,
  storedGbMonth: 0.2,
  d1RowReadPerM: 0.001,
  // developers.cloudflare.com/r2/pricing: weights are read once per device per version (Class B).
  r2ClassBPerM: 0.36,
};
// Limits (developers.cloudflare.com/workers/platform/limits, /durable-objects/platform/limits).
const LIMIT = {
  cpuMsPerInvocation: 30_000,
  doRequestsPerSecond: 1_000,
  d1QueriesPerSecond: 1_000,
  subrequestsPerInvocation: 1_000,
  // coordinator/protocol/src/wire/round.ts (100,000 before lazy shard open).
  schemaMaxContributions: 10_000_000,
};

const SecAggBench = z.object({
  round: z.array(
    z.object({
      name: z.string(),
      n: z.number(),
      d: z.number(),
      k: z.number(),
      unmaskMs: z.number(),
      perInput: z.object({ medianMs: z.number(), p99Ms: z.number() }),
    }),
  ),
});
const DpServerBench = z.object({ cases: z.array(z.object({ name: z.string(), ms: z.number() })) });
const LoadBench = z.object({
  options: z.object({ devices: z.number(), rounds: z.number() }),
  roundsPublished: z.number(),
  requests: z.number(),
});

const read = <T>(schema: z.ZodType<T>, name: string): T =>
  schema.parse(JSON.parse(readFileSync(results(name), "utf8")));
const secagg = read(SecAggBench, "secagg.json");
const dpServer = read(DpServerBench, "dp-server.json");
const load = read(LoadBench, "load.json");

/** Our parameters (k = 54, t = 21) at n = 1,000, d = 65,536, 10% dropout. */
const ours = secagg.round.find((r) => r.k === 54) ?? (secagg.round[0] as (typeof secagg.round)[number]);
/**
 * Masks the measured unmask stripped (n = 1,000 at 10% dropout: 900 self masks, and each of 100
 * dropped devices' pairwise masks with its surviving neighbours, k · 0.9 of them), so the ms per
 * mask, and so the CPU of one unmask slice (`UNMASK_SLICE_WORDS` words, one alarm).
 */
const DROPOUT = 0.1;
const masksMeasured = ours.n * (1 - DROPOUT) + ours.n * DROPOUT * ours.k * (1 - DROPOUT);
const msPerMask = ours.unmaskMs / masksMeasured;
const unmaskSliceMs = Math.min(ours.unmaskMs, Math.floor(UNMASK_SLICE_WORDS / ours.d) * msPerMask);
const caseMs = (prefix: string) => dpServer.cases.find((c) => c.name.startsWith(prefix))?.ms ?? 0;
const decodeMs = caseMs("decode, distributed");
const ledgerMs = caseMs("ledger entry");

/** Times the aggregator's combine of 32 shard sums and the root's fold of one, at d' = 131,072. */
function timeTree(): { combineMs: number; foldMs: number } {
  const dim = 131_072;
  const shards = Array.from({ length: FAN_OUT }, (_, shard) => ({
    shard,
    words: new Uint32Array(dim).map((_, i) => (i * 7 + shard) % 1000),
    contributors: 1000,
  }));
  const dp = DpRoundConfig.parse({
    v: 1,
    rotationSeed: "00".repeat(16),
    mechanism: "distributed_discrete_gaussian",
    dim: 65_536,
    clipNorm: 1,
    gamma: 1e-4,
    beta: Math.exp(-0.5),
    modulusBits: 32,
    localSigma: { num: 1, exp2: 0 },
  });
  let started = performance.now();
  const combined = combineChildren(dp, dim, shards);
  const combineMs = performance.now() - started;
  started = performance.now();
  foldInto(combined.sum, combined.sum, "u32", dim);
  return { combineMs, foldMs: performance.now() - started };
}

const SHARD_SIZE = 1000;
const D_PADDED = 131_072;
/**
 * D1 on the hot path: none per device. Check-in's two questions are cached per isolate, misses
 * too (coordinator/src/rounds/hot-path-cache.ts): the latest version number for 5 s, the open
 * round for 3 s, both dropped in the isolate when it opens, ends or publishes a round; tenant, key
 * and round row are cached as well. Before issue 16 every device request made 3 queries, then
 * check-in alone made 2 and read the whole model row, then 1 (the open round, uncached). What is
 * left is 1/5 + 1/3 queries per isolate per second; the isolate count is an assumption (Cloudflare
 * does not publish one): one isolate per {@link ISOLATE_RPS} device requests a second.
 */
const D1_PER_ISOLATE_PER_SECOND = 1 / 5 + 1 / 3;
const ISOLATE_RPS = 100;
/** Check-in's open-round query is cached now (it was 1 per device until session 7). */
const D1_PER_DEVICE = 0;
/** SQLite rows written per device message (issue 16's count: 4-5; one per changed entry). */
const ROWS_PER_MESSAGE = 4.5;
/** Device messages per round (advertise, share, masked input, unmask, consistency). */
const MESSAGES_PER_DEVICE = 5;
/** The round's length: 5 stages of 60 s (the default stageSeconds). */
const ROUND_SECONDS = 5 * 60;
/** A shard's stored bytes: its sum plus about k share boxes and keys per device. */
const shardBytes = (k: number) => 4 * D_PADDED + SHARD_SIZE * (k * 120 + 400);

export interface ScaleRow {
  devices: number;
  shards: number;
  aggregators: number;
  requestsPerDevice: number;
  workerRequests: number;
  doRequests: number;
  cpuMs: { shardMessage: number; shardUnmask: number; aggregator: number; root: number; limit: number };
  storageGb: number;
  d1QueriesPerSecond: number;
  shardRequestsPerSecond: number;
  rootRequestsPerSecond: number;
  costPerDay: number;
  firstBottleneck: string;
}

function row(devices: number, tree: { combineMs: number; foldMs: number }): ScaleRow {
  const shards = Math.ceil(devices / SHARD_SIZE);
  const aggregators = aggregatorCount(shards);
  const finished = Math.max(1, load.roundsPublished) * load.options.devices;
  const requestsPerDevice = load.requests / finished;
  const deviceRequests = devices * requestsPerDevice;
  // Tree traffic (lazy open): the open is 1 request; each shard registers with its parent on its
  // first join and reports once; each aggregator registers, reports and is closed.
  const treeRequests = 2 * shards + 3 * aggregators + 1;
  // The widest fan-out of one invocation: the root's give-up closes its silent children, an
  // aggregator's its shards; the open itself now touches no shard (it was shards + aggregators).
  const openSubrequests = measured.open.subrequests;
  const giveUpSubrequests = aggregators > 0 ? Math.max(aggregators, FAN_OUT) : shards;
  const workerRequests = deviceRequests + 1;
  const doRequests = deviceRequests + treeRequests;
  const cpu = {
    shardMessage: ours.perInput.p99Ms,
    // Unmask runs in slices of UNMASK_SLICE_WORDS mask words, one per alarm.
    shardUnmask: unmaskSliceMs,
    aggregator: aggregators > 0 ? tree.combineMs : 0,
    // The root folds one aggregator's sum per report (its own invocation); its end decodes and
    // writes the ledger entry, after combining its shards' sums when it has no aggregators.
    root: Math.max(
      aggregators > 0 ? tree.foldMs : 0,
      decodeMs + ledgerMs + (aggregators > 0 ? 0 : tree.combineMs),
    ),
    limit: LIMIT.cpuMsPerInvocation,
  };
  const storageGb = (shards * shardBytes(ours.k) + (aggregators + 1) * FAN_OUT * 4 * D_PADDED) / 1e9;
  const isolates = Math.ceil(deviceRequests / ROUND_SECONDS / ISOLATE_RPS);
  const d1QueriesPerSecond =
    (devices * D1_PER_DEVICE) / ROUND_SECONDS +
    Math.min(devices / ROUND_SECONDS, isolates) * D1_PER_ISOLATE_PER_SECOND;
  const shardRequestsPerSecond = (SHARD_SIZE * requestsPerDevice) / ROUND_SECONDS;
  const rootRequestsPerSecond = Math.min(shards, FAN_OUT) / ROUND_SECONDS;
  const cpuMsTotal =
    deviceRequests * 1 + devices * MESSAGES_PER_DEVICE * ours.perInput.medianMs + shards * ours.unmaskMs;
  const rowsWritten = devices * MESSAGES_PER_DEVICE * ROWS_PER_MESSAGE;
  // Duration: each shard is awake for the round (128 MB), hibernation not counted. Storage: a
  // finished shard and aggregator erase themselves (deleteAll) a day after their report is
  // acknowledged, so what is stored is one day of rounds, not every round ever run.
  const gbSeconds = shards * ROUND_SECONDS * 0.128;
  const costPerDay =
    (workerRequests / 1e6) * PRICE.workerRequestPerM +
    (cpuMsTotal / 1e6) * PRICE.workerCpuMsPerM +
    (doRequests / 1e6) * PRICE.doRequestPerM +
    (gbSeconds / 1e6) * PRICE.doGbSecondPerM +
    (rowsWritten / 1e6) * PRICE.sqliteRowWrittenPerM +
    (devices / 1e6) * PRICE.r2ClassBPerM +
    (storageGb * PRICE.storedGbMonth) / 30;
  const checks: Array<[boolean, string]> = [
    [
      devices > LIMIT.schemaMaxContributions,
      `maxContributions is capped at ${LIMIT.schemaMaxContributions} (wire schema)`,
    ],
    [shards > DEFAULT_ROUND_LIMITS.maxShards, `maxShards ${DEFAULT_ROUND_LIMITS.maxShards}`],
    [openSubrequests > LIMIT.subrequestsPerInvocation, "subrequests of the open"],
    [giveUpSubrequests > LIMIT.subrequestsPerInvocation, "subrequests of the root's give-up"],
    [d1QueriesPerSecond > LIMIT.d1QueriesPerSecond, `D1 at ${Math.round(d1QueriesPerSecond)} queries/s`],
    [shardRequestsPerSecond > LIMIT.doRequestsPerSecond, "one shard's request rate"],
    [Math.max(cpu.shardUnmask, cpu.aggregator, cpu.root) > LIMIT.cpuMsPerInvocation, "CPU of one invocation"],
  ];
  const firstBottleneck = checks.find(([hit]) => hit)?.[1] ?? "none of the modelled limits";
  return {
    devices,
    shards,
    aggregators,
    requestsPerDevice,
    workerRequests,
    doRequests,
    cpuMs: cpu,
    storageGb,
    d1QueriesPerSecond,
    shardRequestsPerSecond,
    rootRequestsPerSecond,
    costPerDay,
    firstBottleneck,
  };
}

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

function table(rows: ScaleRow[]): string {
  const head =
    "| devices | shards / aggregators | requests / device | Worker + DO requests | largest CPU / invocation (limit 30,000 ms) | storage | D1 queries/s | cost / day | first bottleneck |\n|---|---|---|---|---|---|---|---|---|";
  const lines = rows.map((r) => {
    const cpu = Math.max(r.cpuMs.shardUnmask, r.cpuMs.aggregator, r.cpuMs.root);
    return `| ${fmt(r.devices)} | ${fmt(r.shards)} / ${fmt(r.aggregators)} | ${fmt(r.requestsPerDevice, 1)} | ${fmt(r.workerRequests + r.doRequests)} | ${fmt(cpu)} ms | ${fmt(r.storageGb, 2)} GB | ${fmt(r.d1QueriesPerSecond)} | $${fmt(r.costPerDay, 2)} | ${r.firstBottleneck} |`;
  });
  return [head, ...lines].join("\n");
}

/**
 * Opens a round of `devices` on the in-memory coordinator (the same root host the Durable Object
 * runs) and counts the shard and aggregator objects the open created: lazy open makes none.
 */
async function timeOpen(devices: number): Promise<{ ms: number; subrequests: number }> {
  const memory = createMemoryCoordinator();
  memory.tenants.addTenant({ id: "scale", name: "scale", createdAt: 0 }, generateTenantKeys("scale"));
  const started = performance.now();
  await memory.rounds.open("scale", {
    v: 1,
    modelId: "scale",
    dimension: 1024,
    minContributions: 1,
    maxContributions: devices,
    deadlineSeconds: 60,
    aggregation: "secagg",
    secagg: {
      encoding: { kind: "fixed-point", clip: 1, valueBits: 8 },
      maxShardSize: SHARD_SIZE,
      minShardSize: 100,
      k: ours.k,
      t: 21,
      consistencyCheck: true,
      stageSeconds: 60,
    },
  });
  return { ms: performance.now() - started, subrequests: memory.shards.size + memory.aggregators.size };
}

const measured = { open: await timeOpen(10_000_000) };
const tree = timeTree();
const rows = [1e4, 1e5, 1e6, 1e7].map((n) => row(n, tree));
const inputs = {
  secaggRound: ours.name,
  perInputMedianMs: ours.perInput.medianMs,
  perInputP99Ms: ours.perInput.p99Ms,
  unmaskMs: ours.unmaskMs,
  unmaskSliceMs,
  decodeMs,
  ledgerMs,
  aggregatorCombineMs: tree.combineMs,
  openOf10Million: measured.open,
  rootFoldMs: tree.foldMs,
  loadRun: { devices: load.options.devices, roundsPublished: load.roundsPublished, requests: load.requests },
};
writeFileSync(
  results("scale-model.json"),
  `${JSON.stringify({ generatedAt: new Date().toISOString(), inputs, prices: PRICE, limits: LIMIT, rows }, null, 2)}\n`,
);
const doc = join(ROOT, "docs/SCALE.md");
const text = readFileSync(doc, "utf8");
const begin = "<!-- scale-model:begin -->";
const end = "<!-- scale-model:end -->";
const rendered = `${begin}\n${table(rows)}\n\nInputs: ${JSON.stringify(inputs)}\n${end}`;
writeFileSync(doc, text.replace(new RegExp(`${begin}[\\s\\S]*${end}`), rendered));
console.log(table(rows));
