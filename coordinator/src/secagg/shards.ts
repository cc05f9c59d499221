/**
 * Hierarchical aggregation: a cohort larger than one shard is split over several shards, each
 * running SecAgg+ over its part, and a root adds the shard sums. Shards keep per-round state and
 * per-device work small, and they run in parallel (on Cloudflare, one Durable Object each).
 *
 * Privacy note: the root learns each shard's sum, not only the total, so a shard's sum must be
 * as safe to reveal as the round's. `minShardSize` is that floor; distributed-DP noise is
 * calibrated per shard for the same reason.
 */

import { base64ToBytes, bytesToWords, utf8 } from "@fedprofile/protocol/bytes";
import { SIZES } from "@fedprofile/protocol/secagg";
import { blake3 } from "@noble/hashes/blake3.js";
import type { RoundResult } from "./state";

/** How to split a cohort. */
export interface ShardOptions {
  /** Largest shard (devices per SecAgg instance). */
  maxShardSize: number;
  /** Smallest shard the operator accepts (default 100). */
  minShardSize?: number;
  /** Public 32-byte seed: members are assigned to shards by a seeded shuffle, not by arrival. */
  seed: Uint8Array;
}

/**
 * Splits `cohort` into ⌈n / maxShardSize⌉ shards of near-equal size (sizes differ by at most one)
 * after a seeded shuffle. Throws `RangeError` if the cohort is smaller than `minShardSize` or the
 * bounds cannot both hold.
 */
export function planShards<T>(cohort: readonly T[], options: ShardOptions): T[][] {
  const min = options.minShardSize ?? 100;
  const max = options.maxShardSize;
  if (!Number.isInteger(max) || max < 2)
    throw new RangeError(`maxShardSize must be an integer ≥ 2, got ${max}`);
  if (!Number.isInteger(min) || min < 2 || min > max)
    throw new RangeError(`minShardSize must be in [2, maxShardSize], got ${min}`);
  if (options.seed.length !== SIZES.seed) throw new RangeError(`shard seed must be ${SIZES.seed} bytes`);
  const n = cohort.length;
  if (n < min) throw new RangeError(`cohort of ${n} is below the minimum shard size ${min}`);
  const count = Math.ceil(n / max);
  if (Math.floor(n / count) < min) {
    throw new RangeError(`cannot split ${n} devices into shards of ${min}..${max}`);
  }
  // Seeded Fisher-Yates: a 32-bit word per step from BLAKE3 XOF; bias ≤ n / 2^32, irrelevant for
  // a public assignment.
  const stream = blake3(utf8("fedprofile/secagg/v1/shards"), {
    key: options.seed,
    dkLen: 4 * Math.max(1, n),
  });
  const words = bytesToWords(stream);
  const order = [...cohort];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(((words[i] as number) / 2 ** 32) * (i + 1));
    const tmp = order[i] as T;
    order[i] = order[j] as T;
    order[j] = tmp;
  }
  const shards: T[][] = [];
  let offset = 0;
  for (let s = 0; s < count; s++) {
    const size = Math.floor(n / count) + (s < n % count ? 1 : 0);
    shards.push(order.slice(offset, offset + size));
    offset += size;
  }
  return shards;
}

/** The root's total. */
export interface RootSum {
  /** Σ over shards of the integer sums (exact in doubles up to 2^53). */
  sum: Float64Array;
  /** Devices whose inputs are in the total. */
  contributors: number;
  /** Shards that finished and were added. */
  shards: number;
}

/**
 * Adds finished shards' results at the root. Aborted shards are passed as `null` and skipped
 * (their devices are not in `contributors`); pass `requireAll` to refuse a partial total instead.
 * Shard sums are plain integers below 2^32 each, so the double-precision total is exact for
 * fewer than 2^21 shards.
 */
export function sumShardResults(
  results: ReadonlyArray<RoundResult | null>,
  dimension: number,
  options: { requireAll?: boolean } = {},
): RootSum {
  const total = new Float64Array(dimension);
  let contributors = 0;
  let shards = 0;
  for (const [i, result] of results.entries()) {
    if (result === null) {
      if (options.requireAll) throw new RangeError(`shard ${i} did not finish`);
      continue;
    }
    const words = bytesToWords(base64ToBytes(result.sum));
    if (words.length !== dimension)
      throw new RangeError(`shard ${i}: sum has ${words.length} words, expected ${dimension}`);
    for (let j = 0; j < dimension; j++) total[j] = (total[j] as number) + (words[j] as number);
    contributors += result.contributors.length;
    shards++;
  }
  return { sum: total, contributors, shards };
}
