/**
 * Bounded influence of one device (issue 13, finding 3): SecAgg hides inputs, so a device can add
 * anything to its masked words, e.g. 2^(m-1), and the modular sum carries it into the model. Two
 * defences that need no change to the protocol:
 *
 * 1. A range check per shard, in the integer (rotated, scaled) domain the shard sum lives in:
 *    each honest device's coordinate is at most its rounded L2 bound L (KLS21 Theorem 1:
 *    `roundedL2NormBound(clip / gamma, beta, d)`), so an honest shard of `count` devices has
 *    `|s_j| <= count * L + 6 sqrt(count) sigma` (the noise at 6 sigma). A shard outside it is
 *    left out of the model update.
 * 2. A robust combination: the coordinate-wise trimmed mean of the shards' means, scaled back to
 *    the kept devices (Yin et al., ICML 2018, "Byzantine-robust distributed learning"), so one
 *    shard moves the update by at most its share of the trimmed mean. With fewer than three shards
 *    nothing can be trimmed, and the kept shards are summed exactly.
 *
 * Both are post-processing of the shard sums the coordinator already saw (and the ledger already
 * counts), so they cost no privacy. ACORN-style validation inside SecAgg would catch an in-range
 * lie too; see the README's Security section for what it would cost here.
 */

import {
  addModular,
  type DistributedDiscreteGaussianConfig,
  dyadicValue,
  roundedL2NormBound,
} from "@fedprofile/protocol/dp";

/** One revealed shard: its integer sum mod 2^m (padded dimension) and its contributors. */
export interface ShardSum {
  shard: number;
  words: Uint32Array;
  contributors: number;
}

/** What combining did: the sum to decode, the devices in it, and the shards it left out. */
export interface CombinedShards {
  /** Modular integer sum to decode (KLS21 Alg. 2). */
  total: Uint32Array;
  /** Devices whose shards are in `total`. */
  survivors: number;
  /** Shards outside their plausible range, with their largest |coordinate| and the bound. */
  rejected: Array<{ shard: number; worst: number; bound: number }>;
  /** How the kept shards were combined. */
  method: "sum" | "trimmed-mean";
}

/** Fraction of shards trimmed at each end, coordinate by coordinate (at least one when ≥ 3). */
export const TRIM_FRACTION = 0.1;

/** `count * L + 6 sqrt(count) sigma`: the largest |coordinate| an honest shard sum can have. */
export function shardRangeBound(cfg: DistributedDiscreteGaussianConfig, count: number, dim: number): number {
  const perDevice = roundedL2NormBound(cfg.clipNorm / cfg.gamma, cfg.beta, dim);
  return count * perDevice + 6 * Math.sqrt(count) * dyadicValue(cfg.localSigma);
}

/** The centred representative of `v` mod 2^m, in (-2^(m-1), 2^(m-1)]. */
function centred(v: number, m: number): number {
  const r = v % m;
  return r > m / 2 ? r - m : r;
}

/** The largest |coordinate| of a shard sum, centred mod 2^m. */
function worstCoordinate(words: Uint32Array, m: number): number {
  let worst = 0;
  for (let i = 0; i < words.length; i++) worst = Math.max(worst, Math.abs(centred(words[i] as number, m)));
  return worst;
}

/**
 * Range-checks every shard and combines the plausible ones: summed exactly when fewer than three
 * remain, else the trimmed mean of shard means times the kept devices, rounded back to integers.
 */
export function combineShardSums(
  cfg: DistributedDiscreteGaussianConfig,
  shards: readonly ShardSum[],
  dim: number,
): CombinedShards {
  const m = 2 ** cfg.modulusBits;
  const rejected: CombinedShards["rejected"] = [];
  const kept: ShardSum[] = [];
  for (const s of shards) {
    if (s.contributors < 1) continue;
    const bound = shardRangeBound(cfg, s.contributors, dim);
    const worst = worstCoordinate(s.words, m);
    if (worst > bound) rejected.push({ shard: s.shard, worst, bound });
    else kept.push(s);
  }
  const survivors = kept.reduce((sum, s) => sum + s.contributors, 0);
  const total = new Uint32Array(dim);
  if (kept.length < 3) {
    for (const s of kept) addModular(total, s.words);
    return { total, survivors, rejected, method: "sum" };
  }
  const trim = Math.max(1, Math.floor(TRIM_FRACTION * kept.length));
  const means = new Float64Array(kept.length);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < kept.length; j++) {
      const s = kept[j] as ShardSum;
      means[j] = centred(s.words[i] as number, m) / s.contributors;
    }
    means.sort();
    let acc = 0;
    for (let j = trim; j < kept.length - trim; j++) acc += means[j] as number;
    const value = Math.round((acc / (kept.length - 2 * trim)) * survivors);
    total[i] = ((value % m) + m) % m;
  }
  return { total, survivors, rejected, method: "trimmed-mean" };
}
