/**
 * Shards that open on their first join (issue 16). Opening a round costs the root O(1)
 * subrequests: it stores a {@link ShardPlan} instead of opening every shard. The Worker picks a
 * shard with `pickShard`; that shard, on its first touch, registers with its parent (the root, or
 * its aggregator, which registers itself with the root on its own first touch) and gets its
 * protocol options back, computed here from the plan.
 *
 * Registration is the fence that keeps lazy shards honest: a parent accepts a new child only
 * while its own clock is before the round's `closesAt` (the end of the join window), and after
 * that it knows every child that can ever exist. It waits for their reports (never for shards
 * that no device touched), and at the give-up time it closes exactly those that stayed silent.
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { ConflictError } from "../errors";
import type { CreateRoundOptions } from "../secagg/index";

/** What every shard of a round shares, and what depends on its size. Plain data: it crosses RPC. */
export interface ShardPlan {
  roundId: string;
  /** Devices the round admits (`maxContributions`), split as {@link shardSize} says. */
  devices: number;
  shards: number;
  /** The root's open time: every shard's first deadline is counted from it, not from its own open. */
  openedAt: number;
  /** End of the join window: no shard (or aggregator) registers at or after it. */
  closesAt: number;
  /** Options shared by every shard (dimension, bits, stage timeouts, consistency check). */
  base: Omit<
    CreateRoundOptions,
    "roundId" | "cohortSize" | "k" | "t" | "modulusBits" | "minInputs" | "graphSeed" | "shard" | "randomBytes"
  >;
  /** Per distinct shard size: its graph, modulus and unmask floor. */
  bySize: Record<string, { k: number; t: number; modulusBits: number; minInputs?: number }>;
  /** Hex seed of every shard's graph seed (SHA-256 of seed ‖ shard): the graph is public. */
  seed: string;
}

/** What a lazily opened shard needs: its protocol options and the time its first stage counts from. */
export interface LazyShardConfig {
  /** Plain data (it crosses RPC): never a function such as `randomBytes`. */
  options: Omit<CreateRoundOptions, "randomBytes">;
  openedAt: number;
}

/** Size of shard `shard` when `devices` are split into `shards` near-equal shards (as `planShards`). */
export function shardSize(devices: number, shards: number, shard: number): number {
  return Math.floor(devices / shards) + (shard < devices % shards ? 1 : 0);
}

/**
 * The sizes of `devices` split into shards of `min..max`, without materialising the cohort (a
 * round of 10^7 would need a 40 MB shuffle); same sizes and errors as `planShards`.
 */
export function shardSizes(devices: number, min: number, max: number): number[] {
  if (!Number.isInteger(max) || max < 2)
    throw new RangeError(`maxShardSize must be an integer ≥ 2, got ${max}`);
  if (!Number.isInteger(min) || min < 2 || min > max)
    throw new RangeError(`minShardSize must be in [2, maxShardSize], got ${min}`);
  if (devices < min) throw new RangeError(`cohort of ${devices} is below the minimum shard size ${min}`);
  const count = Math.ceil(devices / max);
  if (Math.floor(devices / count) < min) {
    throw new RangeError(`cannot split ${devices} devices into shards of ${min}..${max}`);
  }
  return Array.from({ length: count }, (_, s) => shardSize(devices, count, s));
}

/** Shard `shard`'s protocol options under `plan`. */
export function shardOptionsOf(plan: ShardPlan, shard: number): LazyShardConfig["options"] {
  if (!Number.isInteger(shard) || shard < 0 || shard >= plan.shards) {
    throw new ConflictError("no_such_shard", `round ${plan.roundId} has no shard ${shard}`);
  }
  const size = shardSize(plan.devices, plan.shards, shard);
  const graph = plan.bySize[size];
  if (!graph) throw new ConflictError("no_such_shard", `round ${plan.roundId} has no shard of ${size}`);
  const { minInputs, ...rest } = graph;
  const input = new Uint8Array(plan.seed.length / 2 + 4);
  for (let i = 0; i < plan.seed.length / 2; i++)
    input[i] = Number.parseInt(plan.seed.slice(2 * i, 2 * i + 2), 16);
  new DataView(input.buffer).setUint32(plan.seed.length / 2, shard);
  return {
    ...plan.base,
    ...rest,
    ...(minInputs === undefined ? {} : { minInputs }),
    roundId: plan.roundId,
    cohortSize: size,
    shard,
    graphSeed: sha256(input),
  };
}

/**
 * The registry of a node's children (shards under the root or an aggregator, aggregators under
 * the root): adds `child` while the join window is open, or answers that it is already there.
 * Throws `round_not_collecting` (409) for a new child at or after `closesAt`.
 */
export function registerChild(
  opened: readonly number[],
  child: number,
  closesAt: number,
  now: number,
): number[] {
  if (opened.includes(child)) return [...opened];
  if (now >= closesAt) {
    throw new ConflictError("round_not_collecting", `the join window closed; child ${child} cannot open now`);
  }
  return [...opened, child].sort((a, b) => a - b);
}

/**
 * Whether a node with lazily opened children has heard from all it will: the join window is over
 * (so no child can still open) and every registered child has reported.
 */
export function lazyComplete(
  opened: readonly number[],
  reported: Record<string, unknown>,
  closesAt: number,
  now: number,
): boolean {
  return now >= closesAt && opened.every((child) => reported[child] !== undefined);
}
