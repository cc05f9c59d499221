/**
 * Issue 13, finding 3: one device adds 2^(m-1) to its masked words. Every device here encodes its
 * update with the real DP client math (clip, rotate, round, add its noise share); a shard's sum is
 * the modular sum SecAgg reveals. The old decoding added every shard sum; now one bad device
 * spoils at most its shard.
 */

import {
  addModular,
  type DistributedDiscreteGaussianConfig,
  decodeAggregate,
  encodeClientUpdate,
  paddedDim,
  seededRandom,
} from "@fedprofile/protocol/dp";
import { describe, expect, it } from "vitest";
import { planDistributedRound } from "../dp/planning";
import { combineShardSums, type ShardSum, shardRangeBound } from "./shard-combine";

const SHARDS = 5;
const PER_SHARD = 20;
const UPDATE = [0.3, -0.2, 0.1, 0.25];

const cfg = planDistributedRound({
  dim: UPDATE.length,
  clipNorm: 1,
  expectedClients: SHARDS * PER_SHARD,
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

function shardSums(seed: string): ShardSum[] {
  const rng = seededRandom(seed);
  return Array.from({ length: SHARDS }, (_, shard) => {
    const words = new Uint32Array(dim);
    for (let d = 0; d < PER_SHARD; d++) addModular(words, encodeClientUpdate(cfg, UPDATE, rng).values);
    return { shard, words, contributors: PER_SHARD };
  });
}

const decode = (total: Uint32Array, survivors: number) =>
  Array.from(decodeAggregate(cfg, total, { survivors }).sum);
/** What the root did before: add every shard sum, decode once. */
function naive(shards: ShardSum[]): number[] {
  const total = new Uint32Array(dim);
  for (const s of shards) addModular(total, s.words);
  return decode(
    total,
    shards.reduce((n, s) => n + s.contributors, 0),
  );
}
function robust(shards: ShardSum[]) {
  const combined = combineShardSums(cfg, shards, dim);
  return { ...combined, sum: decode(combined.total, combined.survivors) };
}
const truth = UPDATE.map((u) => u * SHARDS * PER_SHARD);
/** Stddev of the decoded noise per coordinate for `n` devices' shares. */
const noiseOf = (n: number) => Math.sqrt(n) * (cfg.localSigma.num / 2 ** cfg.localSigma.exp2) * cfg.gamma;
/** The trimmed mean of 5 shard means keeps 3: its noise is about sqrt(5/3) that of the sum. */
const ROBUST_SLACK = 6 * Math.sqrt(5 / 3);
const maxError = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - (b[i] as number))));
/** A device's lie, added to its shard's sum (it is in the device's masked words, mod 2^m). */
function lie(shard: ShardSum, coordinate: number, amount: number): void {
  const m = 2 ** cfg.modulusBits;
  shard.words[coordinate] = ((((shard.words[coordinate] as number) + amount) % m) + m) % m;
}

describe("one device's influence on the model", () => {
  it("honest shards pass the range check and decode to the true sum within the noise", () => {
    const shards = shardSums("honest");
    const { rejected, method, sum, survivors } = robust(shards);
    expect(rejected).toEqual([]);
    expect(method).toBe("trimmed-mean");
    expect(survivors).toBe(SHARDS * PER_SHARD);
    expect(maxError(sum, truth)).toBeLessThan(ROBUST_SLACK * noiseOf(survivors));
  });

  it("a device adding 2^(m-1) skews the old sum and only spoils its own shard now", () => {
    const shards = shardSums("attack");
    for (let j = 0; j < dim; j++) lie(shards[2] as ShardSum, j, 2 ** (cfg.modulusBits - 1));
    const old = naive(shards);
    expect(maxError(old, truth)).toBeGreaterThan(1000);
    const { rejected, sum, survivors } = robust(shards);
    expect(rejected.map((r) => r.shard)).toEqual([2]);
    expect(survivors).toBe((SHARDS - 1) * PER_SHARD);
    // The model is the four honest shards' sum: the true mean times their devices, within noise.
    const honest = UPDATE.map((u) => u * survivors);
    expect(maxError(sum, honest)).toBeLessThan(ROBUST_SLACK * noiseOf(survivors));
  });

  it("a lie inside the plausible range is trimmed: the model stays within the honest noise", () => {
    const bound = shardRangeBound(cfg, PER_SHARD, dim);
    const shards = shardSums("subtle");
    // The largest lie the range check lets through (less the honest part), on every coordinate.
    for (let j = 0; j < dim; j++) lie(shards[0] as ShardSum, j, Math.floor(bound * 0.9));
    const old = naive(shards);
    const now = robust(shards);
    expect(now.rejected).toEqual([]);
    // The plain sum moves by more than 4 noise stddevs (seeded: 4.7); the trimmed mean by under half that.
    expect(maxError(old, truth)).toBeGreaterThan(4 * noiseOf(SHARDS * PER_SHARD));
    expect(maxError(now.sum, truth)).toBeLessThan(maxError(old, truth) / 2);
    expect(maxError(now.sum, truth)).toBeLessThan(ROBUST_SLACK * noiseOf(SHARDS * PER_SHARD));
  });
});
