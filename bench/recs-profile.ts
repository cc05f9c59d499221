/**
 * Times each stage of `fedprofile eval recs` on one population (default synthetic-100000), so
 * the full grid can be bounded before it runs: data, popularity and item-kNN evals, one ALS
 * iteration, and one federated round with and without DP.
 *   npx tsx --conditions=source bench/recs-profile.ts [--population synthetic-100000] [--als-iterations 1]
 */
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { REPO_ROOT } from "../edge/scripts/local-dev";
import { loadCustomers } from "../examples/eval/population";
import { trainAls } from "../examples/eval/recs-als";
import { evaluateRanking, itemKnnScorer, leaveLastOut, popularityScorer } from "../examples/eval/recs-data";
import { trainFederatedRecs } from "../examples/eval/recs-harness";
import { recsCustomers } from "../examples/eval/recs-population";

const { values } = parseArgs({
  options: {
    population: { type: "string", default: "synthetic-100000" },
    "als-iterations": { type: "string", default: "1" },
    rounds: { type: "string", default: "1" },
    skip: { type: "string", default: "" },
  },
});
const skip = new Set(values.skip.split(","));
await tf.setBackend("cpu");
const time = async <T>(label: string, f: () => T | Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const out = await f();
  console.log(
    `${label.padEnd(34)} ${((performance.now() - t0) / 1000).toFixed(1)} s  (load ${loadavg()[0]?.toFixed(2)} / ${cpus().length} cores)`,
  );
  return out;
};
const customers = await time("load csv", () =>
  loadCustomers(join(REPO_ROOT, "examples/data/online_retail.csv.gz")),
);
const data = await time("population + split", () =>
  leaveLastOut(recsCustomers(customers, values.population, 1)),
);
let nnz = 0;
for (const u of data.users) nnz += u.items.size;
console.log(`${data.users.length} users, ${data.items.length} items, ${nnz} training pairs`);
if (!skip.has("pop")) await time("popularity eval", () => evaluateRanking(data, popularityScorer(data), 1));
if (!skip.has("knn")) await time("item-kNN eval", () => evaluateRanking(data, itemKnnScorer(data), 1));
const iterations = Number(values["als-iterations"]);
if (!skip.has("als"))
  await time(`ALS r32, ${iterations} iteration(s)`, () =>
    trainAls(data, { rank: 32, alpha: 10, lambda: 1, iterations, seed: 1 }),
  );
const rounds = Number(values.rounds);
if (!skip.has("fcf"))
  await time(`FCF no DP r32, ${rounds} round(s)`, () =>
    trainFederatedRecs(data, {
      spec: {
        rank: 32,
        alpha: 10,
        lambda: 1,
        curvatureSpread: 8,
        clipGram: 1000,
        clipItems: 1000,
        clipCurvature: 1000,
        clipCounts: 1000,
      },
      epsilon: null,
      rounds,
      seed: 1,
    }),
  );
if (!skip.has("dp"))
  await time(`FCF ε 8 r8, ${rounds} round(s)`, () =>
    trainFederatedRecs(data, {
      spec: {
        rank: 8,
        blockSize: Math.min(data.items.length, Math.floor((65_536 - 64) / 10)),
        alpha: 10,
        lambda: 1,
        curvatureSpread: 8,
        clipGram: 4,
        clipItems: 40,
        clipCurvature: 40,
        clipCounts: 30,
        countScale: 10,
        curvature: "counts",
      },
      epsilon: 8,
      rounds: Math.max(rounds, 12),
      seed: 1,
    }),
  );
