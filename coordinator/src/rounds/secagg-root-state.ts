/**
 * The state of a SecAgg+ round's root and the pure functions over it: how the cohort is split
 * into shards (sizes, each shard's (k, t) and unmask floor), the plan lazily opened shards take
 * their options from, and the round's public info and status. The host that changes the state is
 * `./secagg-root-host.ts`.
 */

import { paddedDim } from "@fedprofile/protocol/dp";
import {
  maliciousServerShortfalls,
  modulusBitsFor,
  STAGES,
  type ThreatPreset,
} from "@fedprofile/protocol/secagg";
import type {
  FixedPointEncoding,
  OpenRoundRequest,
  RoundInfo,
  RoundStage,
  RoundStatus,
  RoundTask,
  SecAggRoundOptions,
} from "@fedprofile/protocol/wire";
import { WIRE_VERSION } from "@fedprofile/protocol/wire";
import { bytesToHex } from "@noble/hashes/utils.js";
import { type RoundAdmission, roundAdmissionInfo } from "../admission/redeem";
import { InvalidRequestError } from "../errors";
import type { RoundResult } from "../models/trainer";
import { chooseParameters } from "../secagg/index";
import { lazyComplete, type ShardPlan, shardSizes } from "./lazy-shards";
import type { RoundDpPlan } from "./round-privacy";
import type { AggregatorConfig } from "./secagg-aggregator-host";
import type { ShardOutcome } from "./secagg-shard-host";
import { type ChildRow, rowOf, shardsOf } from "./shard-tree";

/** The root's serialisable state. */
export interface SecAggRootState {
  kind: "secagg-root";
  tenantId: string;
  roundId: string;
  modelId: string;
  dimension: number;
  /** Fixed-point encoding of a round without DP. */
  encoding?: FixedPointEncoding;
  /** The DP plan of a DP round: devices encode with its public configuration. */
  dp?: RoundDpPlan;
  stageSeconds: number;
  shardSizes: number[];
  /** The smallest shard threshold t and the consistency check, published for devices' policy. */
  threshold?: number;
  consistencyCheck?: boolean;
  /** The threat preset the round was opened under (absent: honest-but-curious). */
  threat?: ThreatPreset;
  minContributions: number;
  maxContributions: number;
  openedAt: number;
  /** End of the join window (the advertise-keys stage). */
  closesAt: number;
  /** When the root stops waiting for silent shards. */
  giveUpAt: number;
  stage: RoundStage;
  joined: number;
  /**
   * One small row per child (shard, or aggregator when `aggregators` > 0). Sums are stored apart,
   * chunked (`sum:<shard>` under a root over shards, the running total `total` over aggregators);
   * states saved before issue 16 kept a shard's base64 sum in its row.
   */
  outcomes: Record<string, ChildRow | ShardOutcome>;
  /** Aggregators between the shards and this root (0 or absent: shards report here). */
  aggregators?: number;
  /**
   * Rounds whose shards open lazily (`./lazy-shards.ts`): the plan shards take their options
   * from, and the children (shards, or aggregators) that registered. Absent: every child was
   * opened with the round.
   */
  plan?: ShardPlan;
  opened?: number[];
  closedAt: number | null;
  outcome: string | null;
  modelVersion: number | null;
  /** Failed attempts to close silent shards at the give-up time. */
  closeAttempts?: number;
  /** A trainer's round: the task devices compute; its result goes to the trainer, not to a version. */
  task?: RoundTask;
  /** A trainer's round once ended, kept until the trainer has it (it may ask again after a crash). */
  result?: RoundResult;
  /** The tenant's token issuer when the round opened: every join redeems one of its tokens. */
  admission?: RoundAdmission;
}

/** Neighbour-graph degree and threshold for a shard of `size` (explicit values win). */
function graphParameters(size: number, options: SecAggRoundOptions): { k: number; t: number } {
  let chosen: { k: number; t: number };
  const malicious = options.threat === "maliciousServer";
  if (malicious && !options.consistencyCheck) {
    throw new InvalidRequestError(
      "secagg.consistencyCheck: the maliciousServer preset needs the consistency check",
    );
  }
  if (options.k !== undefined && options.t !== undefined) chosen = { k: options.k, t: options.t };
  else {
    try {
      const defaults = chooseParameters({ n: size, honestMajority: malicious });
      chosen = { k: options.k ?? defaults.k, t: options.t ?? defaults.t };
    } catch (cause) {
      throw new InvalidRequestError(
        `secagg: no (k, t) for a shard of ${size} meets the default dropout and collusion targets; set secagg.k and secagg.t`,
        { cause },
      );
    }
  }
  // The protocol core would refuse these later with a RangeError; say so as a bad request now.
  if (chosen.k % 2 !== 0)
    throw new InvalidRequestError(`secagg.k: the graph degree must be even, got ${chosen.k}`);
  const most = Math.min(chosen.k, size - 1);
  if (malicious) {
    const short = maliciousServerShortfalls({ ...chosen, cohortSize: size, consistencyCheck: true });
    if (short.length > 0)
      throw new InvalidRequestError(`secagg.t: maliciousServer preset: ${short.join("; ")}`);
  }
  if (chosen.t > most) {
    throw new InvalidRequestError(
      `secagg.t: a threshold of ${chosen.t} exceeds min(k, shard size - 1) = ${most} for a shard of ${size}`,
    );
  }
  return chosen;
}

/**
 * How a SecAgg round's cohort is split: shard sizes, each shard's neighbour graph (k, t), and the
 * fewest inputs each shard unmasks (its t, or the DP floor `minNoiseShares` when higher). The
 * evaluation harness plans its shards with this too.
 */
export function planRoundShards(
  request: OpenRoundRequest,
  _seed?: Uint8Array,
): { sizes: number[]; graphs: Array<{ k: number; t: number }>; floors: number[] } {
  const secagg = request.secagg;
  if (!secagg) throw new InvalidRequestError("secagg: options are required");
  let sizes: number[];
  try {
    // Sizes only (as planShards splits them): a round of 10^6 devices never builds its cohort here.
    sizes = shardSizes(
      request.maxContributions,
      Math.min(secagg.minShardSize, secagg.maxShardSize),
      secagg.maxShardSize,
    );
  } catch (cause) {
    throw new InvalidRequestError(
      `secagg: ${cause instanceof Error ? cause.message : "cannot shard the cohort"}`,
      {
        cause,
      },
    );
  }
  // At most two distinct sizes: one graph choice each, not one per shard.
  const bySize = new Map<number, { k: number; t: number }>();
  const graphs = sizes.map((size) => {
    const graph = bySize.get(size) ?? graphParameters(size, secagg);
    bySize.set(size, graph);
    return graph;
  });
  const minNoiseShares = request.dp?.minNoiseShares ?? 0;
  const floors = graphs.map((g) => Math.max(g.t, minNoiseShares));
  const smallest = sizes.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  if (minNoiseShares > smallest) {
    throw new InvalidRequestError(
      `dp.minNoiseShares: ${minNoiseShares} exceeds the smallest shard (${smallest} devices)`,
    );
  }
  return { sizes, graphs, floors };
}

/**
 * The plan every lazily opened shard takes its options from (`./lazy-shards.ts`): what the root
 * used to send each shard at open, once per distinct shard size.
 */
export function shardPlanOf(
  state: SecAggRootState,
  request: OpenRoundRequest,
  graphs: ReadonlyArray<{ k: number; t: number }>,
  floors: readonly number[],
  admission: boolean,
  dp: RoundDpPlan | undefined,
  seed: Uint8Array,
): ShardPlan {
  const secagg = request.secagg as SecAggRoundOptions;
  const bySize: ShardPlan["bySize"] = {};
  for (const [shard, size] of state.shardSizes.entries()) {
    if (bySize[size]) continue;
    const { k, t } = graphs[shard] as { k: number; t: number };
    const floor = floors[shard] as number;
    let modulusBits: number;
    if (dp) modulusBits = dp.config.modulusBits;
    else {
      try {
        modulusBits = modulusBitsFor((secagg.encoding as FixedPointEncoding).valueBits, size);
      } catch (cause) {
        throw new InvalidRequestError(
          `secagg: ${cause instanceof Error ? cause.message : "modulus too large"}`,
          {
            cause,
          },
        );
      }
    }
    bySize[size] = { k, t, modulusBits, ...(dp && floor !== t ? { minInputs: floor } : {}) };
  }
  const timeout = secagg.stageSeconds * 1000;
  return {
    roundId: state.roundId,
    devices: request.maxContributions,
    shards: state.shardSizes.length,
    openedAt: state.openedAt,
    closesAt: state.closesAt,
    base: {
      // A DP round's inputs are residues mod 2^m that are meant to wrap (KLS21 Alg. 1).
      ...(dp
        ? { dimension: paddedDim(dp.config), valueBits: dp.config.modulusBits, modularInputs: true }
        : { dimension: request.dimension, valueBits: (secagg.encoding as FixedPointEncoding).valueBits }),
      consistencyCheck: secagg.consistencyCheck,
      // The preset's signed advertisements are bound to admission tokens (identity.ts).
      ...(secagg.threat === "maliciousServer" && admission ? { signedKeys: true } : {}),
      stageTimeoutsMs: Object.fromEntries(STAGES.map((stage) => [stage, timeout])),
    },
    bySize,
    seed: bytesToHex(seed),
  };
}

/** What devices and operators are told about the round. */
export function secaggRootInfo(state: SecAggRootState): RoundInfo {
  return {
    roundId: state.roundId,
    modelId: state.modelId,
    aggregation: "secagg",
    stage: state.stage,
    dimension: state.dimension,
    minContributions: state.minContributions,
    maxContributions: state.maxContributions,
    openedAt: state.openedAt,
    closesAt: state.closesAt,
    secagg: {
      ...(state.encoding ? { encoding: state.encoding } : {}),
      shards: state.shardSizes.length,
      stageSeconds: state.stageSeconds,
      minShardSize: Math.min(...state.shardSizes),
      ...(state.threshold === undefined ? {} : { threshold: state.threshold }),
      ...(state.consistencyCheck === undefined ? {} : { consistencyCheck: state.consistencyCheck }),
      ...(state.dp ? { privacy: privacyInfo(state.dp) } : {}),
      ...(state.admission ? { admission: roundAdmissionInfo(state.admission) } : {}),
      ...(state.threat === "maliciousServer" ? { threat: state.threat } : {}),
    },
    ...(state.dp ? { dp: state.dp.config } : {}),
    ...(state.task ? { task: state.task } : {}),
  };
}

/** The public privacy facts of a DP round, which devices check against their policy. */
export function privacyInfo(dp: RoundDpPlan) {
  return {
    noiseShares: dp.plannedNoiseShares,
    colluders: dp.colluders ?? 0,
    delta: dp.delta,
    modelEpsilon: dp.projectedEpsilon,
  };
}

/** Devices whose input is in a reported sum. */
export function contributorsOf(state: SecAggRootState): number {
  return Object.values(state.outcomes).reduce((sum, o) => sum + o.contributors, 0);
}

/** Devices that joined: through the root (older rounds), or admitted by shards as they report. */
export function joinedOf(state: SecAggRootState): number {
  return state.joined + Object.values(state.outcomes).reduce((n, o) => n + (o.admitted ?? 0), 0);
}

/** A row as stored now (rows saved before issue 16 carried their sum). */
export const asRow = (o: ChildRow | ShardOutcome): ChildRow => ("hasSum" in o ? o : rowOf(o));

/** Children of the root: its aggregators, or its shards. */
const childCount = (state: SecAggRootState) => state.aggregators || state.shardSizes.length;

/** What aggregator `index` of a lazy round is told on its first touch. */
export function aggregatorConfigOf(state: SecAggRootState, index: number, plan: ShardPlan): AggregatorConfig {
  const { first, end } = shardsOf(index, state.shardSizes.length);
  return {
    tenantId: state.tenantId,
    roundId: state.roundId,
    index,
    first,
    end,
    dim: state.dp ? paddedDim(state.dp.config) : state.dimension,
    ...(state.dp ? { dp: state.dp.config } : {}),
    plan,
  };
}

/** The children that exist: every one of an eagerly opened round, the registered ones of a lazy one. */
export const childrenOf = (state: SecAggRootState): number[] =>
  state.plan ? (state.opened ?? []) : Array.from({ length: childCount(state) }, (_, i) => i);

/** Whether every child that exists, or ever can, has reported (`./lazy-shards.ts`). */
export function heardFromAll(state: SecAggRootState, now: number): boolean {
  // Every child the round can have reported (an eager round's, or a lazy one's before its close).
  if (Object.keys(state.outcomes).length === childCount(state)) return true;
  return state.plan !== undefined && lazyComplete(state.opened ?? [], state.outcomes, state.closesAt, now);
}

/** Storage keys of the sums: the running total over aggregators, or one per shard. */
export const TOTAL_KEY = "total";
export const sumKey = (shard: number) => `sum:${shard}`;

/** The round's status: its info with participation, contributions and outcome. */
export function secaggRootStatus(state: SecAggRootState): RoundStatus {
  return {
    v: WIRE_VERSION,
    ...secaggRootInfo(state),
    participants: joinedOf(state),
    contributions: contributorsOf(state),
    closedAt: state.closedAt,
    outcome: state.outcome,
    modelVersion: state.modelVersion,
  };
}
