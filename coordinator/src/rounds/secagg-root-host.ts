/**
 * The root of a SecAgg+ round. A cohort larger than one shard is split over several shards, each
 * running the protocol over its part; the root admits devices to shards, collects the shards'
 * integer sums and adds them (hierarchical aggregation, as in Bell et al. 2020 §5 deployments and
 * TFF's hierarchical secure sum). The root, like the coordinator it runs in, never sees a device's
 * vector: only shard sums, each over at least `minShardSize` devices.
 */

import { base64ToBytes, type RandomBytes, systemRandomBytes } from "@fedprofile/protocol/bytes";
import {
  addModular,
  bufferedRandom,
  DEFAULT_PRIVACY_POLICY,
  decodeAggregate,
  defaultColluders,
  type PrivacyPolicy,
  paddedDim,
} from "@fedprofile/protocol/dp";
import {
  maliciousServerShortfalls,
  modulusBitsFor,
  STAGES,
  type ThreatPreset,
} from "@fedprofile/protocol/secagg";
import type {
  ContributionResponse,
  FixedPointEncoding,
  JoinResponse,
  OpenRoundRequest,
  RoundInfo,
  RoundStage,
  RoundStatus,
  RoundTask,
  SecAggRoundOptions,
} from "@fedprofile/protocol/wire";
import { encodeFloat64Vector, WIRE_VERSION } from "@fedprofile/protocol/wire";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  type AdmissionIssuerStore,
  type RoundAdmission,
  redeemJoinToken,
  roundAdmission,
  roundAdmissionInfo,
  type SpentTokens,
} from "../admission/redeem";
import { ConflictError, FedprofileError, InvalidRequestError, NotFoundError } from "../errors";
import { newParticipantId, newToken, sha256Hex } from "../ids";
import { aggregateSha256 } from "../ledger/chain";
import type { RoundResult, TrainerHandle } from "../models/trainer";
import type { Clock, ModelStore, RoundHostHandle, RoundIndex } from "../ports";
import { chooseParameters } from "../secagg/index";
import {
  type LazyShardConfig,
  lazyComplete,
  registerChild,
  type ShardPlan,
  shardOptionsOf,
  shardSizes,
} from "./lazy-shards";
import { isShardClosedToJoins } from "./pick-shard";
import { enforceRoundFloors } from "./round-floors";
import type { RoundDpPlan, RoundPrivacy } from "./round-privacy";
import type { AggregatorConfig, AggregatorHandle, NodeStore } from "./secagg-aggregator-host";
import type { SecAggShardHandle, ShardMeta, ShardOutcome } from "./secagg-shard-host";
import { createSerialQueue } from "./serial-queue";
import { combineShardSums, type ShardSum } from "./shard-combine";
import {
  aggregatorCount,
  type ChildOutcome,
  type ChildRow,
  doublesOf,
  FAN_OUT,
  foldInto,
  revealedBy,
  rowOf,
  shardsOf,
  wordsOf,
} from "./shard-tree";

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

export interface SecAggRootHostOptions {
  store: NodeStore<SecAggRootState>;
  shardFor(tenantId: string, roundId: string, shard: number): SecAggShardHandle;
  /** Aggregator `index` of a round of more than `FAN_OUT` shards (`./shard-tree.ts`). */
  aggregatorFor?(
    tenantId: string,
    roundId: string,
    index: number,
  ): Pick<AggregatorHandle, "close" | "registerShard">;
  models: ModelStore;
  index: RoundIndex;
  /** Budget checks and the ledger; required for DP rounds. */
  privacy?: RoundPrivacy;
  /** The trainer of a model, which takes the result of the rounds it opened. */
  trainerFor?(tenantId: string, modelId: string): Pick<TrainerHandle, "roundEnded">;
  /** Privacy floors a round must meet to open (default {@link DEFAULT_PRIVACY_POLICY}). */
  floors?: PrivacyPolicy;
  /** The tenants' registered token issuers; a tenant with one gets rounds that admit by token. */
  admission?: AdmissionIssuerStore;
  /** The root's spent-token set (its own storage); required once a round admits by token. */
  spentTokens?: SpentTokens;
  clock?: Clock;
  randomBytes?: RandomBytes;
}

export interface SecAggRootHost extends RoundHostHandle {
  shardFinished(outcome: ChildOutcome): Promise<void>;
  /** A lazily opened shard's first touch (root over shards): registers it, answers its options. */
  registerShard(meta: ShardMeta): Promise<LazyShardConfig>;
  /** A lazily opened aggregator's first touch: registers it, answers its configuration. */
  registerAggregator(index: number): Promise<AggregatorConfig>;
  alarm(): Promise<void>;
}

/** Slack after the last stage deadline before the root gives up on silent shards. */
const ROOT_GRACE_MS = 30_000;
/** A silent shard that cannot be reached when the root gives up is asked again this much later. */
const CLOSE_RETRY_MS = 5_000;
/** After this many failed asks the root ends without the shard (it never answered, so never revealed). */
const CLOSE_ATTEMPTS = 12;

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
function shardPlanOf(
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
function privacyInfo(dp: RoundDpPlan) {
  return {
    noiseShares: dp.plannedNoiseShares,
    colluders: dp.colluders ?? 0,
    delta: dp.delta,
    modelEpsilon: dp.projectedEpsilon,
  };
}

function contributorsOf(state: SecAggRootState): number {
  return Object.values(state.outcomes).reduce((sum, o) => sum + o.contributors, 0);
}

/** Devices that joined: through the root (older rounds), or admitted by shards as they report. */
function joinedOf(state: SecAggRootState): number {
  return state.joined + Object.values(state.outcomes).reduce((n, o) => n + (o.admitted ?? 0), 0);
}

/** A row as stored now (rows saved before issue 16 carried their sum). */
const asRow = (o: ChildRow | ShardOutcome): ChildRow => ("hasSum" in o ? o : rowOf(o));

/** Children of the root: its aggregators, or its shards. */
const childCount = (state: SecAggRootState) => state.aggregators || state.shardSizes.length;

/** What aggregator `index` of a lazy round is told on its first touch. */
function aggregatorConfigOf(state: SecAggRootState, index: number, plan: ShardPlan): AggregatorConfig {
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
const childrenOf = (state: SecAggRootState): number[] =>
  state.plan ? (state.opened ?? []) : Array.from({ length: childCount(state) }, (_, i) => i);

/** Whether every child that exists, or ever can, has reported (`./lazy-shards.ts`). */
function heardFromAll(state: SecAggRootState, now: number): boolean {
  // Every child the round can have reported (an eager round's, or a lazy one's before its close).
  if (Object.keys(state.outcomes).length === childCount(state)) return true;
  return state.plan !== undefined && lazyComplete(state.opened ?? [], state.outcomes, state.closesAt, now);
}

const TOTAL_KEY = "total";
const sumKey = (shard: number) => `sum:${shard}`;

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

/** Creates the root host of one SecAgg round. */
export function createSecAggRootHost(options: SecAggRootHostOptions): SecAggRootHost {
  const { store, models, index } = options;
  const clock = options.clock ?? Date.now;
  const randomBytes = options.randomBytes ?? systemRandomBytes;
  const serialised = createSerialQueue();

  async function mustLoad(): Promise<SecAggRootState> {
    const state = await store.load();
    if (!state) throw new NotFoundError("round not found");
    return state;
  }

  /** Adds the finished shards' sums, decodes them and publishes, or aborts. Idempotent. */
  async function end(state: SecAggRootState, reason: string): Promise<SecAggRootState> {
    if (state.stage !== "collecting") return state;
    const now = clock();
    const contributors = contributorsOf(state);
    const dp = state.dp;
    if (
      dp &&
      contributors < state.minContributions &&
      dp.config.mechanism === "distributed_discrete_gaussian"
    ) {
      // The coordinator has seen the finished shards' noised sums even though nothing is
      // published: under the distributed trust model that is a release, and it is recorded.
      // Nothing is published, so the entry carries no aggregate hash.
      await recordRelease(state, dp, undefined);
    }
    if (contributors < state.minContributions) {
      const aborts = Object.values(state.outcomes)
        .map(asRow)
        .flatMap((o) => [...(o.abort ? [`shard ${o.shard}: ${o.abort.code}`] : []), ...(o.aborts ?? [])]);
      return abort(
        state,
        `too-few-contributions: ${contributors} < ${state.minContributions}${aborts.length ? ` (${aborts.join(", ")})` : ""}`,
      );
    }
    if (
      dp?.config.mechanism === "distributed_discrete_gaussian" &&
      (await combinedSum(state, dp)).survivors < 1
    ) {
      // Every shard sum is out of range (`./shard-combine.ts`): nothing can be published, but the
      // coordinator saw the noised shard sums, so (as above) that is a release and it is recorded.
      // Ending here, not throwing, keeps the alarm from retrying the decode forever.
      await recordRelease(state, dp, undefined);
      return abort(state, "implausible-shard-sums: every shard sum was outside its plausible range");
    }
    if (state.task) return endForTrainer(state, reason, contributors);
    const weights = dp ? (await decodeDp(state, dp)).weights : await decodeFixedPoint(state);
    const published = await models.publish(
      state.tenantId,
      {
        modelId: state.modelId,
        roundId: state.roundId,
        dimension: state.dimension,
        contributions: contributors,
        aggregation: "secagg",
        weights: encodeFloat64Vector(weights),
      },
      now,
    );
    const ended: SecAggRootState = {
      ...state,
      stage: "closed",
      closedAt: now,
      outcome: reason,
      modelVersion: published.version,
    };
    await store.save(ended);
    await store.deleteAlarm();
    await index.markEnded(state.tenantId, state.roundId, "closed", published.version);
    if (dp) await options.privacy?.release(state.tenantId, state.modelId, state.roundId);
    return ended;
  }

  /** Ends the round as aborted: nothing is published; a trainer's round hands on an empty result. */
  async function abort(state: SecAggRootState, outcome: string): Promise<SecAggRootState> {
    const ended: SecAggRootState = { ...state, stage: "aborted", closedAt: clock(), outcome };
    const result: RoundResult | undefined = state.task
      ? {
          roundId: state.roundId,
          modelId: state.modelId,
          stage: "aborted",
          outcome,
          contributors: contributorsOf(state),
          weights: null,
          noiseStddev: 0,
        }
      : undefined;
    await store.save(result ? { ...ended, result } : ended);
    await store.deleteAlarm();
    await index.markEnded(state.tenantId, state.roundId, "aborted", null);
    if (state.dp) await options.privacy?.release(state.tenantId, state.modelId, state.roundId);
    if (result) await handToTrainer(state, result);
    return ended;
  }

  /**
   * A trainer's round: decode (recording the release first), keep the result, and hand it to the
   * trainer, which publishes the next model version. A failed hand-over is not fatal: the trainer
   * asks for the result itself when its alarm fires.
   */
  async function endForTrainer(
    state: SecAggRootState,
    reason: string,
    contributors: number,
  ): Promise<SecAggRootState> {
    const dp = state.dp;
    if (!dp) throw new FedprofileError("internal", "a trainer's round needs a DP plan", 500);
    const decoded = await decodeDp(state, dp);
    const result: RoundResult = {
      roundId: state.roundId,
      modelId: state.modelId,
      stage: "closed",
      outcome: reason,
      contributors,
      weights: decoded.weights,
      noiseStddev: decoded.noiseStddev,
    };
    const ended: SecAggRootState = { ...state, stage: "closed", closedAt: clock(), outcome: reason, result };
    await store.save(ended);
    await store.deleteAlarm();
    await index.markEnded(state.tenantId, state.roundId, "closed", null);
    await options.privacy?.release(state.tenantId, state.modelId, state.roundId);
    await handToTrainer(state, result);
    return ended;
  }

  async function handToTrainer(state: SecAggRootState, result: RoundResult): Promise<void> {
    try {
      await options.trainerFor?.(state.tenantId, state.modelId).roundEnded(result);
    } catch {
      // The trainer polls `result()` at its next alarm.
    }
  }

  /** Fixed point: Σx ≈ S·2c/(2^b − 1) − n·c (secagg/encoding.ts). */
  async function decodeFixedPoint(state: SecAggRootState): Promise<number[]> {
    const encoding = state.encoding;
    if (!encoding) throw new FedprofileError("internal", "round has neither an encoding nor a DP plan", 500);
    // Each shard sum is exact below 2^32; their total is exact in doubles (< 2^53).
    let total: Float64Array<ArrayBufferLike> = new Float64Array(state.dimension);
    if (state.aggregators) {
      const stored = await store.sum(TOTAL_KEY);
      if (stored) total = doublesOf(stored);
    } else {
      for (const s of await shardSums(state)) {
        for (let i = 0; i < total.length; i++) total[i] = (total[i] as number) + (s.words[i] as number);
      }
    }
    const step = (2 * encoding.clip) / (2 ** encoding.valueBits - 1);
    const contributors = contributorsOf(state);
    return Array.from(total, (s) => s * step - contributors * encoding.clip);
  }

  /**
   * DP: add the shard sums mod 2^32 (2^m divides it), decode (KLS21 Alg. 2; the central mechanism
   * adds its noise here), and record the release in the ledger *before* anything is published.
   */
  async function decodeDp(
    state: SecAggRootState,
    dp: RoundDpPlan,
  ): Promise<{ weights: number[]; noiseStddev: number }> {
    const { total, survivors } = await combinedSum(state, dp);
    if (survivors < 1) {
      throw new FedprofileError(
        "implausible_shard_sums",
        "every shard sum was outside its plausible range",
        409,
      );
    }
    const decoded = decodeAggregate(dp.config, total, {
      survivors,
      rng: bufferedRandom(randomBytes),
    });
    const weights = Array.from(decoded.sum);
    await recordRelease(state, dp, aggregateSha256(weights), decoded.clipCount);
    return { weights, noiseStddev: Math.sqrt(decoded.noiseVariance) };
  }

  /**
   * The shard sums to decode. Distributed DP: range-checked and robustly combined
   * (`./shard-combine.ts`), so one device spoils at most its shard; central: the plain sum.
   */
  async function combinedSum(
    state: SecAggRootState,
    dp: RoundDpPlan,
  ): Promise<{ total: Uint32Array; survivors: number }> {
    const dim = paddedDim(dp.config);
    if (state.aggregators) {
      // Each aggregator range-checked and combined its own shards (./secagg-aggregator-host.ts);
      // their combined sums were added here on arrival. survivors 0: every shard was out of range;
      // `end` aborts such a round before decoding.
      const stored = await store.sum(TOTAL_KEY);
      const rows = Object.values(state.outcomes).map(asRow);
      const survivors = rows.reduce((n, r) => n + (r.hasSum ? (r.survivors ?? r.contributors) : 0), 0);
      return { total: stored ? wordsOf(stored) : new Uint32Array(dim), survivors };
    }
    const shards = await shardSums(state);
    // survivors 0: every shard was out of range; `end` aborts such a round before decoding.
    if (dp.config.mechanism === "distributed_discrete_gaussian")
      return combineShardSums(dp.config, shards, dim);
    const total = new Uint32Array(dim);
    for (const s of shards) addModular(total, s.words);
    return { total, survivors: contributorsOf(state) };
  }

  async function recordRelease(
    state: SecAggRootState,
    dp: RoundDpPlan,
    released: string | undefined,
    clipCount?: number,
  ): Promise<void> {
    // Every shard sum the coordinator saw is one release, whichever node added it up.
    const revealed = Object.values(state.outcomes).map(asRow).flatMap(revealedBy);
    if (revealed.length === 0) return;
    if (!options.privacy)
      throw new FedprofileError("privacy_unavailable", "no privacy ledger configured", 503);
    await options.privacy.record(state.tenantId, {
      roundId: state.roundId,
      modelId: state.modelId,
      plan: dp,
      // The cohort is who joined (at most maxContributions); survivors are whose input is in a sum.
      cohortSize: joinedOf(state),
      survivors: revealed.reduce((sum, n) => sum + n, 0),
      fewestInOneSum: Math.min(...revealed),
      // The SecAgg threshold t the shards ran with (older states: the calibration floor).
      threshold: dp.secaggThreshold ?? dp.plannedNoiseShares,
      ...(released === undefined ? {} : { aggregateSha256: released }),
      ...(clipCount === undefined ? {} : { clipCount }),
    });
  }

  /** The revealed shard sums under a root over shards, read back from their chunks. */
  async function shardSums(state: SecAggRootState): Promise<ShardSum[]> {
    const out: ShardSum[] = [];
    for (const o of Object.values(state.outcomes)) {
      const row = asRow(o);
      if (!row.hasSum) continue;
      const bytes = typeof o.sum === "string" ? base64ToBytes(o.sum) : await store.sum(sumKey(row.shard));
      if (!bytes) throw new FedprofileError("internal", `the root lost the sum of shard ${row.shard}`, 500);
      out.push({ shard: row.shard, words: wordsOf(bytes), contributors: row.contributors });
    }
    return out;
  }

  /**
   * A child's outcome with its sum stored beside the row, in one write: under a root over shards
   * the shard's own sum (the robust combine needs it), over aggregators folded into the total.
   */
  async function withOutcome(
    state: SecAggRootState,
    outcomes: ReadonlyArray<ChildOutcome>,
  ): Promise<{ next: SecAggRootState; sums: Record<string, Uint8Array> }> {
    const rows = { ...state.outcomes };
    const sums: Record<string, Uint8Array> = {};
    let total: Uint8Array | null | undefined;
    for (const outcome of outcomes) {
      const row = rowOf(outcome);
      rows[outcome.shard] = row;
      if (!row.hasSum || outcome.sum === null) continue;
      const bytes = base64ToBytes(outcome.sum);
      if (!state.aggregators) {
        sums[sumKey(outcome.shard)] = bytes;
        continue;
      }
      if (total === undefined) total = await store.sum(TOTAL_KEY);
      const dim = state.dp ? paddedDim(state.dp.config) : state.dimension;
      total = foldInto(total, bytes, outcome.sumKind ?? "u32", dim);
    }
    if (total) sums[TOTAL_KEY] = total;
    // A child that reports exists, registered or not (synthetic reports, a lost registration write).
    const opened = state.plan
      ? [...new Set([...(state.opened ?? []), ...outcomes.map((o) => o.shard)])].sort((a, b) => a - b)
      : undefined;
    return { next: { ...state, outcomes: rows, ...(opened ? { opened } : {}) }, sums };
  }

  return {
    open: (tenantId, roundId, request: OpenRoundRequest, task?: RoundTask) =>
      serialised(async () => {
        if (await store.load()) throw new ConflictError("round_exists", `round ${roundId} already exists`);
        const secagg = request.secagg;
        if (!secagg) throw new InvalidRequestError("secagg: options are required");
        const { sizes, graphs, floors } = planRoundShards(request, randomBytes(32));
        const now = clock();
        const stageCount = STAGES.length - (secagg.consistencyCheck ? 0 : 1);
        const protocolEnd = now + stageCount * secagg.stageSeconds * 1000;
        const giveUpAt = protocolEnd + ROOT_GRACE_MS;
        const threshold = Math.min(...graphs.map((g) => g.t));
        const issuer = await options.admission?.get(tenantId);
        const admission = issuer ? roundAdmission(issuer) : undefined;
        // The privacy floors, checked on the planned round before any budget is reserved.
        const checkFloors = (plan: RoundDpPlan | undefined) =>
          enforceRoundFloors(options.floors ?? DEFAULT_PRIVACY_POLICY, {
            aggregation: "secagg",
            dp: plan?.config,
            privacy: plan ? privacyInfo(plan) : undefined,
            cohort: Math.min(...sizes),
            threshold,
            consistencyCheck: secagg.consistencyCheck,
            admission: admission !== undefined,
            honestMajority: graphs.every(
              (g, i) =>
                maliciousServerShortfalls({ ...g, cohortSize: sizes[i] as number, consistencyCheck: true })
                  .length === 0,
            ),
          });
        let dp: RoundDpPlan | undefined;
        if (request.dp) {
          if (!options.privacy) {
            throw new FedprofileError(
              "privacy_unavailable",
              "this coordinator has no privacy ledger configured",
              503,
            );
          }
          const shares = Math.min(...floors);
          const colluders = request.dp.colluders ?? defaultColluders(shares);
          if (request.dp.mechanism === "distributed_discrete_gaussian" && colluders >= shares) {
            throw new InvalidRequestError(
              `dp.colluders: ${colluders} leaves no trusted noise share of the ${shares} a shard needs`,
            );
          }
          // Planned and checked against the budget before any shard opens or any device joins.
          dp = await options.privacy.plan(tenantId, request.modelId, request.dp, {
            roundId,
            expiresAt: giveUpAt,
            dimension: request.dimension,
            threshold: shares,
            colluders,
            secaggThreshold: Math.min(...graphs.map((g) => g.t)),
            expectedClients: request.maxContributions,
            rotationSeed: bytesToHex(randomBytes(32)),
            accept: checkFloors,
          });
        } else if (!secagg.encoding) {
          throw new InvalidRequestError("secagg.encoding: required for a round without dp");
        }
        if (!dp) checkFloors(undefined);
        const state: SecAggRootState = {
          kind: "secagg-root",
          tenantId,
          roundId,
          modelId: request.modelId,
          dimension: request.dimension,
          ...(secagg.encoding && !dp ? { encoding: secagg.encoding } : {}),
          ...(dp ? { dp } : {}),
          stageSeconds: secagg.stageSeconds,
          shardSizes: sizes,
          threshold,
          consistencyCheck: secagg.consistencyCheck,
          minContributions: request.minContributions,
          maxContributions: request.maxContributions,
          openedAt: now,
          closesAt: Math.min(now + request.deadlineSeconds * 1000, now + secagg.stageSeconds * 1000),
          giveUpAt,
          stage: "collecting",
          joined: 0,
          outcomes: {},
          ...(aggregatorCount(sizes.length) > 0 ? { aggregators: aggregatorCount(sizes.length) } : {}),
          closedAt: null,
          outcome: null,
          modelVersion: null,
          ...(task ? { task } : {}),
          ...(admission ? { admission } : {}),
          ...(secagg.threat === "maliciousServer" ? { threat: secagg.threat } : {}),
        };
        if (task && !dp) throw new InvalidRequestError("a trainer's round needs dp");
        try {
          // No shard or aggregator opens here (O(1) subrequests): each opens on its first join
          // and registers with its parent, which hands it its options from this plan.
          state.plan = shardPlanOf(
            state,
            request,
            graphs,
            floors,
            admission !== undefined,
            dp,
            randomBytes(32),
          );
          state.opened = [];
        } catch (error) {
          // The round never opened: its budget reservation goes with it.
          if (dp) await options.privacy?.release(tenantId, request.modelId, roundId);
          throw error;
        }
        await store.save(state);
        // The end of the join window first: from then on the registered children are all there are.
        await store.setAlarm(state.closesAt);
        await index.insert(tenantId, secaggRootInfo(state));
        return secaggRootStatus(state);
      }),

    join: (token?: string): Promise<JoinResponse> =>
      serialised(async () => {
        const state = await mustLoad();
        if (state.stage !== "collecting") {
          throw new ConflictError(
            "round_not_collecting",
            `round ${state.roundId} is ${state.stage}, not collecting`,
          );
        }
        // One token, one place: spent only once a shard took the device (issue 13, finding 1).
        return redeemJoinToken(state.roundId, state.admission, token, options.spentTokens, () =>
          admitToShard(state),
        );
      }),

    contribute: async (): Promise<ContributionResponse> => {
      throw new ConflictError(
        "wrong_aggregation",
        "this round uses secure aggregation: send SecAgg messages to /v1/rounds/{roundId}/shards/{shard}/messages",
      );
    },

    status: () =>
      serialised(async () => {
        const state = await store.load();
        return state ? secaggRootStatus(state) : null;
      }),

    result: () => serialised(async () => (await store.load())?.result ?? null),

    shardFinished: (outcome) =>
      serialised(async () => {
        const state = await mustLoad();
        // An ended root acknowledges (the shard stops retrying); it only ends once every shard
        // has reported or been closed, so no sum can arrive after it (see `closeSilentShards`).
        if (state.stage !== "collecting") return;
        let next = state;
        if (state.outcomes[outcome.shard] === undefined) {
          const stored = await withOutcome(state, [outcome]);
          next = stored.next;
          await store.save(next, stored.sums);
        }
        // Also when this report is a retry after a crash that hit before the round ended.
        if (heardFromAll(next, clock())) await end(next, "all-shards-finished");
      }),

    registerShard: ({ shard }) =>
      serialised(async () => {
        const state = await registrable();
        if (state.aggregators) {
          throw new ConflictError("foreign_shard", `shard ${shard} registers with its aggregator`);
        }
        const options = shardOptionsOf(state.plan, shard);
        await register(state, shard);
        return { options, openedAt: state.plan.openedAt };
      }),

    registerAggregator: (index) =>
      serialised(async () => {
        const state = await registrable();
        const count = state.aggregators ?? 0;
        if (!Number.isInteger(index) || index < 0 || index >= count) {
          throw new ConflictError("no_such_aggregator", `round ${state.roundId} has no aggregator ${index}`);
        }
        await register(state, index);
        return aggregatorConfigOf(state, index, state.plan);
      }),

    alarm: () =>
      serialised(async () => {
        const state = await store.load();
        if (state?.stage !== "collecting") return;
        const now = clock();
        if (state.plan && now < state.giveUpAt) {
          // The join window's end: the registered children are all there are; the round ends
          // now if they have all reported (shards no device touched never existed).
          if (now < state.closesAt) await store.setAlarm(state.closesAt);
          else if (heardFromAll(state, now)) await end(state, "all-shards-finished");
          else await store.setAlarm(state.giveUpAt);
          return;
        }
        if (now < state.giveUpAt) {
          await store.setAlarm(state.giveUpAt);
          return;
        }
        const closed = await closeSilentShards(state);
        if (!closed) return;
        // Shards that never reported count as aborted: their devices are not in the sum.
        await end(
          closed,
          childrenOf(state).every((child) => state.outcomes[child] !== undefined)
            ? "all-shards-finished"
            : "deadline",
        );
      }),
  };

  /** Admits a device to the next shard with room. */
  async function admitToShard(state: SecAggRootState): Promise<JoinResponse> {
    const participantId = newParticipantId(randomBytes);
    const participantToken = newToken(randomBytes);
    const shards = state.shardSizes.length;
    let current = state;
    let movedOn = false;
    // Round-robin over shards, skipping full ones, so partial turnout spreads evenly.
    for (let attempt = 0; attempt < shards; attempt++) {
      const shard = (state.joined + attempt) % shards;
      const meta = { tenantId: state.tenantId, roundId: state.roundId, shard, shards };
      const lazy = await registerForJoin(current, meta);
      current = lazy.state;
      try {
        const slot = await options
          .shardFor(state.tenantId, state.roundId, shard)
          .admit(participantId, sha256Hex(participantToken), meta, lazy.config);
        await store.save({ ...current, joined: current.joined + 1 });
        return {
          v: WIRE_VERSION,
          roundId: state.roundId,
          participantId,
          participantToken,
          dimension: state.dimension,
          closesAt: state.closesAt,
          secagg: { shard, slot },
        };
      } catch (error) {
        // Across a Durable Object RPC the error comes back as a FedprofileError with its code.
        // A shard whose devices have all advertised has moved on: as full as a full one.
        if (!(error instanceof FedprofileError && isShardClosedToJoins(error.code))) throw error;
        movedOn ||= error.code === "round_not_collecting";
      }
    }
    // Every shard refused: if one had moved on, the round has (its join window closed).
    if (movedOn) throw new ConflictError("round_not_collecting", `round ${state.roundId} is not collecting`);
    throw new ConflictError("round_full", `round ${state.roundId} has no free slot`);
  }

  /**
   * A token round's join runs inside the root's serialised join, so a shard it opens cannot call
   * back to register (that call would wait on this very queue): the root registers the shard (or
   * its aggregator, handing it its configuration) itself and gives the shard its options.
   */
  async function registerForJoin(
    state: SecAggRootState,
    meta: ShardMeta,
  ): Promise<{ state: SecAggRootState; config?: LazyShardConfig }> {
    const plan = state.plan;
    if (!plan) return { state };
    const child = state.aggregators ? Math.floor(meta.shard / FAN_OUT) : meta.shard;
    const before = state.opened ?? [];
    const opened = registerChild(before, child, state.closesAt, clock());
    const next = opened.length === before.length ? state : { ...state, opened };
    if (next !== state) await store.save(next);
    if (!state.aggregators) {
      return { state: next, config: { options: shardOptionsOf(plan, meta.shard), openedAt: plan.openedAt } };
    }
    const config = await aggregator(state, child).registerShard(meta, aggregatorConfigOf(next, child, plan));
    return { state: next, config };
  }

  /**
   * Asks every shard that has not reported for its outcome, closing it if it has not ended, so
   * that a shard whose report was delayed (a crash, a restart) is counted and none can unmask
   * after the round ends. Returns null (and retries by alarm) when a shard could not be reached.
   */
  async function closeSilentShards(state: SecAggRootState): Promise<SecAggRootState | null> {
    const closed: ChildOutcome[] = [];
    let unreachable = 0;
    for (const child of childrenOf(state)) {
      if (state.outcomes[child] !== undefined) continue;
      try {
        closed.push(await closeChild(state, child));
      } catch (error) {
        // A child that does not exist never revealed anything.
        if (error instanceof FedprofileError && error.status === 404) continue;
        unreachable++;
      }
    }
    const { next, sums } = await withOutcome(state, closed);
    const attempts = (state.closeAttempts ?? 0) + 1;
    if (unreachable > 0 && attempts < CLOSE_ATTEMPTS) {
      await store.save({ ...next, closeAttempts: attempts }, sums);
      await store.setAlarm(clock() + CLOSE_RETRY_MS);
      return null;
    }
    await store.save(next, sums);
    return next;
  }

  function closeChild(state: SecAggRootState, child: number): Promise<ChildOutcome> {
    if (!state.aggregators) return options.shardFor(state.tenantId, state.roundId, child).close();
    return aggregator(state, child).close();
  }

  /** A lazy round that still takes children. */
  async function registrable(): Promise<SecAggRootState & { plan: ShardPlan }> {
    const state = await mustLoad();
    if (!state.plan) throw new ConflictError("round_not_lazy", `round ${state.roundId} opened every shard`);
    if (state.stage !== "collecting") {
      throw new ConflictError("round_not_collecting", `round ${state.roundId} is ${state.stage}`);
    }
    return { ...state, plan: state.plan };
  }

  /** Adds `child` to the registered children (idempotent; refused once the join window closed). */
  async function register(state: SecAggRootState, child: number): Promise<void> {
    const before = state.opened ?? [];
    const opened = registerChild(before, child, state.closesAt, clock());
    if (opened.length !== before.length) await store.save({ ...state, opened });
  }

  function aggregator(state: SecAggRootState, index: number) {
    if (!options.aggregatorFor) {
      throw new FedprofileError("internal", "a round of this many shards needs aggregators", 500);
    }
    return options.aggregatorFor(state.tenantId, state.roundId, index);
  }
}
