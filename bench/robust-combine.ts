/**
 * What the trimmed mean of shard means costs in utility (issue 13): the decoded error of the
 * robust combination against the exact sum of the same honest shard sums, over seeded trials.
 * Run: npx tsx --conditions=source bench/robust-combine.ts
 */
import { planDistributedRound } from "@fedprofile/coordinator/dp";
import {
  addModular,
  type DistributedDiscreteGaussianConfig,
  decodeAggregate,
  encodeClientUpdate,
  paddedDim,
  seededRandom,
} from "@fedprofile/protocol/dp";
import { combineShardSums, type ShardSum } from "../coordinator/src/rounds/shard-combine.ts";

const UPDATE = [0.3, -0.2, 0.1, 0.25, 0, 0.4, -0.1, 0.05];
const PER_SHARD = 20;
const TRIALS = 40;
console.log("shards  devices  rmse(sum)  rmse(trimmed)  ratio");
for (const shards of [3, 5, 10, 20]) {
  const cfg = planDistributedRound({
    dim: UPDATE.length,
    clipNorm: 1,
    expectedClients: shards * PER_SHARD,
    modulusBits: 24,
    kStddevs: 6,
    rotationSeed: "0123456789abcdef0123456789abcdef",
    targetEpsilon: 1,
    delta: 1e-5,
    rounds: 10,
    samplingRate: 1,
    threshold: PER_SHARD,
    colluders: 1,
  }) as DistributedDiscreteGaussianConfig;
  const dim = paddedDim(cfg);
  const n = shards * PER_SHARD;
  const truth = UPDATE.map((u) => u * n);
  let exact = 0;
  let robust = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const rng = seededRandom(`trial-${shards}-${trial}`);
    const sums: ShardSum[] = Array.from({ length: shards }, (_, shard) => {
      const words = new Uint32Array(dim);
      for (let d = 0; d < PER_SHARD; d++) addModular(words, encodeClientUpdate(cfg, UPDATE, rng).values);
      return { shard, words, contributors: PER_SHARD };
    });
    const total = new Uint32Array(dim);
    for (const s of sums) addModular(total, s.words);
    const a = decodeAggregate(cfg, total, { survivors: n }).sum;
    const c = combineShardSums(cfg, sums, dim);
    const b = decodeAggregate(cfg, c.total, { survivors: c.survivors }).sum;
    for (let i = 0; i < UPDATE.length; i++) {
      exact += ((a[i] as number) - (truth[i] as number)) ** 2;
      robust += ((b[i] as number) - (truth[i] as number)) ** 2;
    }
  }
  const k = TRIALS * UPDATE.length;
  const e = Math.sqrt(exact / k);
  const r = Math.sqrt(robust / k);
  console.log(
    `${String(shards).padStart(6)}  ${String(n).padStart(7)}  ${e.toFixed(2).padStart(9)}  ${r.toFixed(2).padStart(13)}  ${(r / e).toFixed(3)}`,
  );
}
