/**
 * Where FCF's no-DP gap to centralised implicit ALS comes from: HR@10 (99 sampled / full
 * catalogue) of FCF every few rounds, for server-step variants, on the same leave-last-out split
 * and with ALS's hyper-parameters (`fedprofile eval recs --preset full` picks α = 10, λ = 1).
 *
 *   npx tsx bench/fcf-gap.ts [--rounds 48] [--every 4] [--variants spread4,spread8] [--sample 0] [--rank 32]
 */
import { parseArgs } from "node:util";
import { seededUniform } from "@fedprofile/coordinator/models";
import * as tf from "@tensorflow/tfjs";
import { loadCustomers } from "../examples/eval/population";
import { trainAls } from "../examples/eval/recs-als";
import { evaluateRanking, factorScorer, leaveLastOut } from "../examples/eval/recs-data";
import { trainFederatedRecs } from "../examples/eval/recs-harness";
import { fcfScorer } from "../examples/eval/recs-scorers";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "48" },
    every: { type: "string", default: "4" },
    variants: { type: "string", default: "spread4" },
    sample: { type: "string", default: "0" },
    rank: { type: "string", default: "32" },
    alpha: { type: "string", default: "10" },
    lambda: { type: "string", default: "1" },
    als: { type: "string", default: "8" },
  },
});
const VARIANTS: Record<string, Record<string, number | string>> = {
  spread1: { curvatureSpread: 1 },
  spread2: { curvatureSpread: 2 },
  spread4: { curvatureSpread: 4 },
  spread8: { curvatureSpread: 8 },
  spread16: { curvatureSpread: 16 },
};
await tf.setBackend("cpu");
const customers = await loadCustomers("examples/data/online_retail.csv.gz");
const sample = Number(values.sample);
let data = leaveLastOut(customers);
if (sample > 0) {
  const random = seededUniform(1);
  const picked = customers.map((c) => ({ c, k: random() })).sort((a, b) => a.k - b.k);
  data = leaveLastOut(picked.slice(0, sample).map((p) => p.c));
}
const rank = Number(values.rank);
const alpha = Number(values.alpha);
const lambda = Number(values.lambda);
const fmt = (
  m: { hr10Sampled: number; hr10Full: number },
  base?: { hr10Sampled: number; hr10Full: number },
) =>
  `${m.hr10Sampled.toFixed(4)} / ${m.hr10Full.toFixed(4)}${base ? ` (${(m.hr10Sampled / base.hr10Sampled).toFixed(3)}× / ${(m.hr10Full / base.hr10Full).toFixed(3)}×)` : ""}`;
console.log(`N = ${data.users.length}, ${data.items.length} items, rank ${rank}, α ${alpha}, λ ${lambda}`);
let t0 = performance.now();
const als = trainAls(data, { rank, alpha, lambda, iterations: Number(values.als), seed: 1 });
const alsM = evaluateRanking(data, factorScorer(als.items, als.users, rank), 1);
console.log(`ALS ${values.als} it: ${fmt(alsM)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
for (const name of (values.variants ?? "").split(",")) {
  const variant = VARIANTS[name];
  if (!variant) throw new Error(`unknown variant ${name}`);
  t0 = performance.now();
  const spec = {
    rank,
    alpha,
    lambda,
    clipGram: 1000,
    clipItems: 1000,
    clipCurvature: 1000,
    clipCounts: 1000,
    ...variant,
  };
  const run = await trainFederatedRecs(data, {
    spec,
    epsilon: null,
    rounds: Number(values.rounds),
    seed: 1,
    checkpoint: {
      every: Number(values.every),
      onModel: (r, items, users) =>
        console.log(
          `  ${name} round ${r}: ${fmt(evaluateRanking(data, factorScorer(items, users, rank), 1), alsM)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
        ),
    },
  });
  const m = evaluateRanking(data, factorScorer(run.items, run.users, rank), 1);
  const withPop = evaluateRanking(data, fcfScorer(data, run.items, run.users, run.popularity, rank, 0.25), 1);
  console.log(
    `  ${name} round ${values.rounds}: ${fmt(m, alsM)} · blended with popularity (w 0.25) ${fmt(withPop, alsM)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );
}
