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
import { maliciousServerShortfalls, STAGES } from "@fedprofile/protocol/secagg";
import type {
  ContributionResponse,
  JoinResponse,
  OpenRoundRequest,
  RoundTask,
} from "@fedprofile/protocol/wire";
import { encodeFloat64Vector, WIRE_VERSION } from "@fedprofile/protocol/wire";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  type AdmissionIssuerStore,
  redeemJoinToken,
  roundAdmission,
  type SpentTokens,
} from "../admission/redeem";
import { ConflictError, FedprofileError, InvalidRequestError, NotFoundError } from "../errors";
import { newParticipantId, newToken, sha256Hex } from "../ids";
import { aggregateSha256 } from "../ledger/chain";
import type { RoundResult, TrainerHandle } from "../models/trainer";
import type { Clock, ModelStore, RoundHostHandle, RoundIndex } from "../ports";
import { type LazyShardConfig, registerChild, type ShardPlan, shardOptionsOf } from "./lazy-shards";
import { isShardClosedToJoins } from "./pick-shard";
import { enforceRoundFloors } from "./round-floors";
import type { RoundDpPlan, RoundPrivacy } from "./round-privacy";
import type { AggregatorConfig, AggregatorHandle, NodeStore } from "./secagg-aggregator-host";
import {
  aggregatorConfigOf,
  asRow,
  childrenOf,
  contributorsOf,
  heardFromAll,
  joinedOf,
  planRoundShards,
  privacyInfo,
  type SecAggRootState,
  secaggRootInfo,
  secaggRootStatus,
  shardPlanOf,
  sumKey,
  TOTAL_KEY,
} from "./secagg-root-state";
import type { SecAggShardHandle, ShardMeta } from "./secagg-shard-host";
import { createSerialQueue } from "./serial-queue";
import { combineShardSums, type ShardSum } from "./shard-combine";
import {
  aggregatorCount,
  type ChildOutcome,
  doublesOf,
  FAN_OUT,
  foldInto,
  revealedBy,
  rowOf,
  wordsOf,
} from "./shard-tree";

export { planRoundShards, type SecAggRootState, secaggRootInfo, secaggRootStatus } from "./secagg-root-state";

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
