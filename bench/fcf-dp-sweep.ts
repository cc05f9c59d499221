/**
 * FCF under DP: HR@10 (99 sampled / full catalogue) of the real harness for DP-round counts and
 * clip settings at one ε, on the recs eval's leave-last-out split, with the plain score x·y_j and
 * with the DP-popularity feature the device solves for (`popularityScores`). Prints the clip
 * fractions of each vector part at the end (the norms before clipping, on the final model).
 *
 *   npx tsx bench/fcf-dp-sweep.ts [--population retail] [--epsilon 8|none] [--configs r24,r8,r4] [--rank 32]
 */
import { parseArgs } from "node:util";
import { confidence, seededUniform } from "@fedprofile/coordinator/models";
import * as tf from "@tensorflow/tfjs";
import { loadCustomers } from "../examples/eval/population";
import { evaluateRanking, factorScorer, leaveLastOut, popularityScorer } from "../examples/eval/recs-data";
import { trainFederatedRecs } from "../examples/eval/recs-harness";
import { recsCustomers } from "../examples/eval/recs-population";
import { fcfScorer } from "../examples/eval/recs-scorers";

const { values } = parseArgs({
  options: {
    population: { type: "string", default: "retail" },
    epsilon: { type: "string", default: "8" },
    configs: { type: "string", default: "r8,r8kc20" },
    rank: { type: "string", default: "32" },
    alpha: { type: "string", default: "10" },
    lambda: { type: "string", default: "1" },
  },
});
/** name → rounds and spec overrides. */
const CONFIGS: Record<string, { rounds: number; spec: Record<string, number | string> }> = {
  r24: { rounds: 24, spec: {} },
  r12: { rounds: 12, spec: {} },
  r12k: { rounds: 12, spec: { countScale: 10, clipCounts: 30 } },
  r12kc: { rounds: 12, spec: { countScale: 10, clipCounts: 30, curvature: "counts" } },
  r12kc20: { rounds: 12, spec: { countScale: 10, clipCounts: 30, curvature: "counts", clipItems: 20 } },
  r12kc10: { rounds: 12, spec: { countScale: 10, clipCounts: 30, curvature: "counts", clipItems: 10 } },
  r12kc80: { rounds: 12, spec: { countScale: 10, clipCounts: 30, curvature: "counts", clipItems: 80 } },
  r12kcg16: {
    rounds: 12,
    spec: { countScale: 10, clipCounts: 30, curvature: "counts", clipItems: 80, clipGram: 16 },
  },
  r12kcs2: { rounds: 12, spec: { countScale: 10, clipCounts: 30, curvature: "counts", curvatureSpread: 2 } },
  r16kc: { rounds: 16, spec: { countScale: 10, clipCounts: 30, curvature: "counts" } },
  r12kcb2: { rounds: 12, spec: { countScale: 10, clipCounts: 30, curvature: "counts", blockSize: 1897 } },
  r12kcr8: {
    rounds: 12,
    spec: { countScale: 10, clipCounts: 30, curvature: "counts", rank: 8, blockSize: 3665 },
  },
  r12kcr16: {
    rounds: 12,
    spec: { countScale: 10, clipCounts: 30, curvature: "counts", rank: 16, blockSize: 1833 },
  },
  r16kc20: { rounds: 16, spec: { countScale: 10, clipCounts: 30, curvature: "counts", clipItems: 20 } },
  r6kc20: { rounds: 6, spec: { countScale: 10, clipCounts: 30, curvature: "counts", clipItems: 20 } },
  r12kc20s4: {
    rounds: 12,
    spec: { countScale: 10, clipCounts: 30, curvature: "counts", clipItems: 20, curvatureSpread: 4 },
  },
  r12kc20g1: {
    rounds: 12,
    spec: { countScale: 10, clipCounts: 30, curvature: "counts", clipItems: 20, clipGram: 1 },
  },
};
await tf.setBackend("cpu");
const customers = await loadCustomers("examples/data/online_retail.csv.gz");
const data = leaveLastOut(recsCustomers(customers, values.population ?? "retail", 1));
const baseRank = Number(values.rank);
const alpha = Number(values.alpha);
const lambda = Number(values.lambda);
// `none`: the same clipped config without noise (the ceiling the DP noise leaves room under).
const epsilon = values.epsilon === "none" ? null : Number(values.epsilon);
const fmt = (m: { hr10Sampled: number; hr10Full: number }) =>
  `${m.hr10Sampled.toFixed(4)} / ${m.hr10Full.toFixed(4)}`;
console.log(`N = ${data.users.length}, ${data.items.length} items, rank ${baseRank}, ε ${epsilon}`);
console.log(`popularity (true counts): ${fmt(evaluateRanking(data, popularityScorer(data), 1))}`);
for (const name of (values.configs ?? "").split(",")) {
  const config = CONFIGS[name];
  if (!config) throw new Error(`unknown config ${name}`);
  const t0 = performance.now();
  const spec = {
    rank: baseRank,
    alpha,
    lambda,
    curvatureSpread: 8,
    clipGram: 4,
    clipItems: 40,
    clipCurvature: 40,
    clipCounts: 3,
    ...config.spec,
  };
  const run = await trainFederatedRecs(data, { spec, epsilon, rounds: config.rounds, seed: 1 });
  const rank = Number(spec.rank);
  const plain = evaluateRanking(data, factorScorer(run.items, run.users, rank), 1);
  const dpPop = evaluateRanking(data, () => Float64Array.from(run.popularity), 1);
  const blends = [0.5, 1, 2, 4, 8]
    .map(
      (w) =>
        `w ${w} ${fmt(evaluateRanking(data, fcfScorer(data, run.items, run.users, run.popularity, rank, w), 1))}`,
    )
    .join(" · ");
  console.log(
    `${name.padEnd(8)} rounds ${config.rounds} σ ${run.noiseStddev.toFixed(1)} ε ${run.epsilonSpent.toFixed(2)}: x·y ${fmt(plain)} · DP popularity ${fmt(dpPop)} · ${blends} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );
  // Part norms before clipping, on the final model (a few hundred devices).
  const random = seededUniform(2);
  const sample = data.users.filter(() => random() < 0.1);
  const gram: number[] = [];
  const items: number[] = [];
  const curv: number[] = [];
  for (const u of sample) {
    const touched = [...u.items]
      .map(([row, w]) => ({
        row,
        purchases: w,
        confidence: confidence(
          { alpha, purchase: 1, cart: 0.3, view: 0.05 },
          { purchases: w, carts: 0, views: 0 },
        ),
      }))
      .sort((a, b) => a.row - b.row);
    const x = run.users[data.users.indexOf(u)] as Float64Array;
    let n2 = 0;
    for (const v of x) n2 += v * v;
    gram.push(n2);
    let s2 = 0;
    let h2 = 0;
    for (const t of touched) {
      let dot = 0;
      for (let a = 0; a < rank; a++) dot += (x[a] as number) * (run.items[t.row * rank + a] as number);
      s2 += ((t.confidence - 1) * dot - t.confidence) ** 2 * n2;
      h2 += ((t.confidence - 1) * n2) ** 2;
    }
    // A block holds about a quarter of the catalogue.
    items.push(Math.sqrt(s2 / 4));
    curv.push(Math.sqrt(h2 / 4));
  }
  const q = (a: number[], p: number) =>
    [...a].sort((x, y) => x - y)[Math.floor(p * (a.length - 1))]?.toFixed(2);
  console.log(
    `  norms (p50 / p90): ‖xxᵀ‖ ${q(gram, 0.5)} / ${q(gram, 0.9)} · ‖s‖ ${q(items, 0.5)} / ${q(items, 0.9)} · ‖h‖ ${q(curv, 0.5)} / ${q(curv, 0.9)}`,
  );
}
