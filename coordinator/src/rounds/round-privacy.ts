/**
 * Differential privacy for rounds: plans a round's public DP configuration, refuses it before any
 * device is invited if it would pass the model's budget cap, and writes the signed ledger entry
 * for what a round actually released.
 *
 * Planning calibrates for the *fewest* noise shares any sum the coordinator sees can carry. With
 * hierarchical aggregation the coordinator sees every shard's sum, and a user is protected by the
 * noise of their own shard, so that is the smallest shard threshold t (KLS21 §5 calibrates for
 * the threshold, not the expected cohort).
 */

import type { DpEvent, DpRoundConfig } from "@fedprofile/protocol/dp";
import {
  centralRoundEvent,
  DEFAULT_PRIVACY_POLICY,
  DEFAULT_RDP_ORDERS,
  defaultColluders,
  distributedRoundEvent,
} from "@fedprofile/protocol/dp";
import type { DpRoundRequest, LedgerPublicKey, PrivacyBudgetStatus } from "@fedprofile/protocol/wire";
import { WIRE_VERSION } from "@fedprofile/protocol/wire";
import { bytesToHex } from "@noble/hashes/utils.js";
import { RdpAccountant } from "../dp/accountant";
import { AdaptiveClippingOptions, updateClip } from "../dp/adaptive-clipping";
import type { PrivacyBudgetExceededError } from "../dp/errors";
import { planCentralRound, planDistributedRound } from "../dp/planning";
import { ConflictError, FedprofileError, InvalidRequestError, NotFoundError } from "../errors";
import { canonicalJson } from "../ledger/canonical-json";
import { keyIdOf, type LedgerSigner } from "../ledger/chain";

import { PrivacyLedger, roundRecordFromConfig } from "../ledger/ledger";
import {
  isReleaseEntry,
  type LedgerCheckpoint,
  type LedgerEntry,
  type LedgerPolicy,
  type LedgerSampling,
} from "../ledger/schema";
import { LedgerConflictError, type LedgerScope, readAll } from "../ledger/store";
import type { AuditLedgerStore, Clock, PrivacyBudget, PrivacyBudgetStore } from "../ports";
import type { PrivacyBudgetRequest } from "../wire/privacy";

const DAY_MS = 24 * 3600 * 1000;

/** What the coordinator's cohort selection allows the accountant to claim. */
const SELF_SELECTED: LedgerSampling = { uniform: false, rate: 1 };

/** The DP part of a round's state: public, and enough to decode and to account. */
export interface RoundDpPlan {
  config: DpRoundConfig;
  /** Noise shares the calibration assumed (the smallest shard's floor: `minNoiseShares`, or t). */
  plannedNoiseShares: number;
  /**
   * Colluding or fake devices assumed among them: calibration counts `plannedNoiseShares -
   * colluders` shares (KLS21 §5) and the ledger records the value. Absent in rounds planned
   * before it existed (0).
   */
  colluders?: number;
  /** The smallest shard's SecAgg threshold t, as the shards run it (the ledger's `cohort.threshold`). */
  secaggThreshold?: number;
  sampling: LedgerSampling;
  /** Adaptive clipping of this round (Andrew et al. 2021), if requested. */
  adaptive: AdaptiveClippingOptions | null;
  /** Epsilon and delta the model would stand at after this round, when it was planned. */
  projectedEpsilon: number;
  delta: number;
}

/** What a round hands back for the ledger once the coordinator has seen its sums. */
export interface RoundRelease {
  roundId: string;
  modelId: string;
  plan: RoundDpPlan;
  cohortSize: number;
  /** Devices whose input is in the released sums. */
  survivors: number;
  /** Contributors of the least-populated released sum (a shard). */
  fewestInOneSum: number;
  /** The smallest SecAgg threshold t any shard ran with. */
  threshold: number;
  /** SHA-256 (hex) of the RFC 8785 bytes of the published aggregate ({@link aggregateSha256}); none when nothing is published. */
  aggregateSha256?: string;
  /** The decoded noisy count of devices within the update clip (adaptive clipping). */
  clipCount?: number;
}

export interface RoundPrivacyOptions {
  budgets: PrivacyBudgetStore;
  ledger: AuditLedgerStore;
  signer: LedgerSigner;
  /**
   * Most epsilon a model may spend in any 24 hours, over the ledger's entries of the day, the open
   * rounds and the new one (default: the production floor `maxEpsilonPerModelPerDay`).
   */
  dailyEpsilonCap?: number;
  /** The key signed with before `signer`: chains it signed are rotated to `signer` on their next append. */
  previousSigner?: LedgerSigner;
  /** When checkpoints are published (ledger SPEC.md §8.2); defaults {@link DEFAULT_CHECKPOINT_SCHEDULE}. */
  checkpoints?: Partial<CheckpointSchedule>;
  clock?: Clock;
}

export interface RoundPrivacy {
  readonly publicKey: LedgerPublicKey;
  /**
   * Sets the model's cap and delta, and records the policy in the ledger first (a `policy` entry,
   * with the declared DP settings when a model declaration sets it), so no change is off the record.
   */
  setBudget(
    tenantId: string,
    modelId: string,
    request: PrivacyBudgetRequest,
    declared?: DeclaredPolicy,
  ): Promise<PrivacyBudgetStatus>;
  budgetStatus(tenantId: string, modelId: string): Promise<PrivacyBudgetStatus>;
  /**
   * Plans a round's DP configuration and checks the projected cumulative epsilon against the cap;
   * throws {@link PrivacyBudgetExceededError} (409) before any device is invited if it would pass.
   */
  plan(
    tenantId: string,
    modelId: string,
    request: DpRoundRequest,
    shape: {
      roundId: string;
      dimension: number;
      threshold: number;
      /** Assumed colluders among the threshold's noise shares (default `defaultColluders`). */
      colluders?: number;
      /** The smallest shard's SecAgg threshold t. */
      secaggThreshold?: number;
      expectedClients: number;
      rotationSeed: string;
      /** When the round gives up at the latest (its budget reservation lapses then). */
      expiresAt: number;
      /** Checks the draft plan (the privacy floors) before any budget is looked at or reserved. */
      accept?: (draft: RoundDpPlan) => void;
    },
  ): Promise<RoundDpPlan>;
  /** Drops the round's budget reservation once it has ended (its release, if any, is in the ledger). */
  release(tenantId: string, modelId: string, roundId: string): Promise<void>;
  /** Appends the round's signed entry (and its clipping-quantile release); idempotent per round. */
  record(tenantId: string, release: RoundRelease): Promise<LedgerEntry>;
  /**
   * Appends a `publication` entry binding a published model version (SHA-256 of its RFC 8785
   * JSON, as served) to the round entry whose aggregate it was computed from; idempotent.
   */
  recordPublication(
    tenantId: string,
    modelId: string,
    publication: { roundId: string; modelVersion: number; modelVersionSha256: string },
  ): Promise<LedgerEntry | null>;
  /** The auditor's raw pages of the tenant's ledger. */
  rows: AuditLedgerStore["rows"];
  /** A signed checkpoint of the model's chain head (SPEC.md §8), or null for an empty chain. */
  checkpoint(tenantId: string, modelId: string): Promise<LedgerCheckpoint | null>;
  /**
   * Publishes a signed checkpoint of every chain that is due (SPEC.md §8.2): one never published,
   * one whose head moved at least `minIntervalMs` after its last checkpoint, and one whose last
   * checkpoint is `refreshMs` old. The Worker's cron calls it with `minIntervalMs: 0`; every
   * append calls it for its own chain. Returns what it published.
   */
  publishCheckpoints(o?: { scope?: LedgerScope; minIntervalMs?: number }): Promise<LedgerCheckpoint[]>;
  /** The chain's newest published checkpoints, oldest first. */
  publishedCheckpoints(tenantId: string, modelId: string, limit: number): Promise<LedgerCheckpoint[]>;
}

/** When checkpoints of a chain are published. */
export interface CheckpointSchedule {
  /** A moved head waits this long after the chain's last checkpoint (the append path's rate). */
  minIntervalMs: number;
  /** An unchanged head is signed again after this long, so a witness knows it is current. */
  refreshMs: number;
}

/** One checkpoint a minute per chain at most from appends, and one a day for an idle chain. */
export const DEFAULT_CHECKPOINT_SCHEDULE: CheckpointSchedule = {
  minIntervalMs: 60_000,
  refreshMs: DAY_MS,
};

/** The DP settings a model declaration fixes, recorded with its budget. */
export type DeclaredPolicy = Pick<
  LedgerPolicy,
  "mechanism" | "targetEpsilon" | "minNoiseShares" | "modulusBits" | "clipNorm" | "threatModel"
>;

/** Retries `append` when a concurrent appender took the head (the store's conditional append). */
async function retryConflicts<T>(append: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await append();
    } catch (error) {
      if (!(error instanceof LedgerConflictError) || attempt >= 4) throw error;
    }
  }
}

/** Default delta policy: 1/population^1.1 (DESIGN.md). */
export function defaultDelta(population: number): number {
  return population ** -1.1;
}

function plannedEvent(plan: RoundDpPlan): DpEvent {
  const { config } = plan;
  return config.mechanism === "distributed_discrete_gaussian"
    ? distributedRoundEvent(config, {
        survivors: plan.plannedNoiseShares,
        colluders: plan.colluders ?? 0,
        sampling: plan.sampling,
      })
    : centralRoundEvent(config, { sampling: plan.sampling });
}

/** Creates the round-facing privacy service over the budget and ledger stores. */
export function createRoundPrivacy(options: RoundPrivacyOptions): RoundPrivacy {
  const { budgets, ledger: store, signer } = options;
  const clock = options.clock ?? Date.now;

  async function budgetOf(tenantId: string, modelId: string): Promise<PrivacyBudget> {
    const budget = await budgets.get(tenantId, modelId);
    if (!budget) {
      throw new ConflictError(
        "privacy_budget_missing",
        `model ${modelId} has no privacy budget: set one with PUT /v1/privacy/budgets/${modelId} before opening DP rounds`,
      );
    }
    return budget;
  }

  const ledgerFor = (tenantId: string, modelId: string, budget: PrivacyBudget) =>
    new PrivacyLedger({
      store,
      signer,
      scope: { tenant: tenantId, model: modelId },
      policy: { epsilonCap: budget.epsilonCap, delta: budget.delta },
      now: () => new Date(clock()),
      ...(options.previousSigner ? { previousSigner: options.previousSigner } : {}),
    });

  async function status(
    tenantId: string,
    modelId: string,
    budget: PrivacyBudget,
  ): Promise<PrivacyBudgetStatus> {
    const position = await ledgerFor(tenantId, modelId, budget).status();
    return {
      v: WIRE_VERSION,
      modelId,
      epsilonCap: budget.epsilonCap,
      delta: budget.delta,
      population: budget.population,
      epsilonSpent: position.epsilon,
      remaining: position.remaining,
      entries: position.entries,
      headHash: position.headHash,
      updatedAt: budget.updatedAt,
    };
  }

  const dailyCap = options.dailyEpsilonCap ?? DEFAULT_PRIVACY_POLICY.maxEpsilonPerModelPerDay;
  const schedule = { ...DEFAULT_CHECKPOINT_SCHEDULE, ...options.checkpoints };

  function checkpointOf(scope: LedgerScope): Promise<LedgerCheckpoint | null> {
    // A checkpoint states no budget figure, so a chain without a budget row still gets one.
    const policy = { epsilonCap: 1, delta: 0.5 };
    return new PrivacyLedger({ store, signer, scope, policy, now: () => new Date(clock()) }).checkpoint();
  }

  async function publishCheckpoints(only: LedgerScope | undefined, minIntervalMs: number) {
    const published: LedgerCheckpoint[] = [];
    for (const scope of only ? [only] : await store.scopes()) {
      const [head, last] = await Promise.all([store.head(scope), store.checkpoints(scope, 1)]);
      const previous = last.at(-1);
      if (!head) continue;
      const age = previous ? clock() - Date.parse(previous.timestamp) : Number.POSITIVE_INFINITY;
      const moved = previous?.seq !== head.seq || previous.hash !== head.hash;
      if (!(moved ? age >= minIntervalMs : age >= schedule.refreshMs)) continue;
      const checkpoint = await checkpointOf(scope);
      if (!checkpoint) continue;
      await store.putCheckpoint(checkpoint);
      published.push(checkpoint);
    }
    return published;
  }

  /** After an append: the chain's checkpoint if due. The release is recorded either way; a failed
   * publication is retried by the next append or the cron (SPEC.md §8.2). */
  async function publishAfterAppend(scope: LedgerScope): Promise<void> {
    await publishCheckpoints(scope, schedule.minIntervalMs).catch(() => []);
  }

  /** The RDP curve (ledger orders) of the model's release entries of `roundIds`. */
  async function priorRdp(tenantId: string, modelId: string, roundIds: readonly string[]) {
    const wanted = new Set(roundIds);
    const accountant = new RdpAccountant({ orders: DEFAULT_RDP_ORDERS });
    for (const entry of await readAll(store, { tenant: tenantId, model: modelId })) {
      if (!isReleaseEntry(entry) || entry.roundId === undefined || !wanted.has(entry.roundId)) continue;
      for (const c of entry.events) accountant.compose(c.event, c.count);
    }
    return { orders: DEFAULT_RDP_ORDERS, rdp: accountant.rdp() };
  }

  /** Refuses the round if the model's last 24 hours, open rounds and this one pass the daily cap. */
  async function assertDailyCap(tenantId: string, modelId: string, budget: PrivacyBudget, event: DpEvent) {
    const since = clock() - DAY_MS;
    const entries = await readAll(store, { tenant: tenantId, model: modelId });
    const accountant = new RdpAccountant();
    for (const entry of entries) {
      if (!isReleaseEntry(entry) || Date.parse(entry.timestamp) < since) continue;
      for (const c of entry.events) accountant.compose(c.event, c.count);
    }
    for (const r of await budgets.reservations(tenantId, modelId, clock())) accountant.compose(r.event, 1);
    accountant.compose(event, 1);
    const epsilon = accountant.getEpsilon(budget.delta).epsilon;
    if (epsilon > dailyCap) {
      throw new ConflictError(
        "daily_budget_exceeded",
        `model ${modelId} would spend epsilon ${epsilon.toPrecision(4)} in 24 hours, above the daily cap ${dailyCap}`,
      );
    }
  }

  return {
    publicKey: {
      v: WIRE_VERSION,
      algorithm: "Ed25519",
      publicKey: bytesToHex(signer.publicKey),
      keyId: keyIdOf(signer.publicKey),
    },

    async setBudget(tenantId, modelId, request, declared) {
      const delta =
        request.delta ?? (request.population === undefined ? undefined : defaultDelta(request.population));
      if (delta === undefined) throw new InvalidRequestError("delta: give delta, or population");
      const budget: Omit<PrivacyBudget, "version"> = {
        epsilonCap: request.epsilonCap,
        delta,
        population: request.population ?? null,
        updatedAt: clock(),
      };
      // The delta is part of every cumulative figure in the chain: it may not change under it.
      const head = await store.head({ tenant: tenantId, model: modelId });
      if (head && head.cumulative.delta !== budget.delta) {
        throw new ConflictError(
          "privacy_delta_fixed",
          `model ${modelId}'s ledger is stated at delta ${head.cumulative.delta}; a budget cannot change it`,
        );
      }
      const policy: LedgerPolicy = {
        source: declared ? "model_declaration" : "budget",
        epsilonCap: budget.epsilonCap,
        delta: budget.delta,
        population: budget.population,
        ...declared,
      };
      // On the record before it is in force: the chain states every cap a round ran under.
      await retryConflicts(async () => {
        const last = await store.head({ tenant: tenantId, model: modelId });
        if (last?.kind === "policy" && canonicalJson(last.policy) === canonicalJson(policy)) return;
        await ledgerFor(tenantId, modelId, { ...budget, version: 0 }).recordPolicy(policy);
      });
      await budgets.set(tenantId, modelId, budget);
      await publishAfterAppend({ tenant: tenantId, model: modelId });
      return status(tenantId, modelId, await budgetOf(tenantId, modelId));
    },

    rows: (tenantId, query) => store.rows(tenantId, query),

    checkpoint: (tenantId, modelId) => checkpointOf({ tenant: tenantId, model: modelId }),

    publishCheckpoints: (o = {}) => publishCheckpoints(o.scope, o.minIntervalMs ?? schedule.minIntervalMs),

    publishedCheckpoints: (tenantId, modelId, limit) =>
      store.checkpoints({ tenant: tenantId, model: modelId }, limit),

    async budgetStatus(tenantId, modelId) {
      const budget = await budgets.get(tenantId, modelId);
      if (!budget) throw new NotFoundError(`model ${modelId} has no privacy budget`);
      return status(tenantId, modelId, budget);
    },

    async plan(tenantId, modelId, request, shape) {
      const budget = await budgetOf(tenantId, modelId);
      const colluders = shape.colluders ?? request.colluders ?? defaultColluders(shape.threshold);
      const adaptive = request.adaptiveClipping
        ? AdaptiveClippingOptions.parse({ ...request.adaptiveClipping, initialClip: request.clipNorm })
        : null;
      // Adaptive clipping carries its clip from round to round in the ledger itself.
      const head = await store.head({ tenant: tenantId, model: modelId });
      const clipNorm =
        adaptive && head?.kind === "clip_quantile" && head.clipRelease
          ? head.clipRelease.nextClip
          : request.clipNorm;
      const base = {
        dim: shape.dimension,
        clipNorm,
        expectedClients: shape.expectedClients,
        modulusBits: request.modulusBits,
        // Six stddevs of the aggregate must fit in m bits, not KLS21's usual four: at d = 65,536
        // four would let about four coordinates a round wrap (P(|Z| > 4) = 6.3e-5 each), while six
        // costs at most ~1e-6 of the noise variance in extra rounding (or nothing, at m = 24).
        kStddevs: 6,
        rotationSeed: shape.rotationSeed,
        ...(adaptive ? { clipCountStddev: adaptive.countStddev } : {}),
      };
      // The request schema guarantees a target, or (central only) a noise multiplier.
      const target =
        request.targetEpsilon !== undefined && request.rounds !== undefined
          ? {
              targetEpsilon: request.targetEpsilon,
              rounds: request.rounds,
              delta: budget.delta,
              samplingRate: SELF_SELECTED.rate,
            }
          : null;
      // The run's released rounds as the ledger recorded them, at the ledger's own orders, so
      // the calibration and the cap check below compose the same curve.
      const prior = request.priorRounds ? await priorRdp(tenantId, modelId, request.priorRounds) : undefined;
      let config: DpRoundConfig;
      try {
        if (request.mechanism === "distributed_discrete_gaussian") {
          if (!target)
            throw new InvalidRequestError("dp: a distributed round needs targetEpsilon and rounds");
          config = planDistributedRound({
            ...base,
            ...target,
            threshold: shape.threshold,
            colluders,
            ...(prior ? { prior } : {}),
          });
        } else {
          const noise =
            request.noiseMultiplier !== undefined ? { noiseMultiplier: request.noiseMultiplier } : target;
          if (!noise) throw new InvalidRequestError("dp: give noiseMultiplier, or targetEpsilon and rounds");
          config = planCentralRound({ ...base, ...noise });
        }
      } catch (cause) {
        if (cause instanceof FedprofileError) throw cause;
        throw new InvalidRequestError(
          `dp: ${cause instanceof Error ? cause.message : "cannot plan the round"}`,
          {
            cause,
          },
        );
      }
      const draft: RoundDpPlan = {
        config,
        plannedNoiseShares: shape.threshold,
        colluders: request.mechanism === "distributed_discrete_gaussian" ? colluders : 0,
        ...(shape.secaggThreshold === undefined ? {} : { secaggThreshold: shape.secaggThreshold }),
        sampling: SELF_SELECTED,
        adaptive,
        projectedEpsilon: 0,
        delta: budget.delta,
      };
      shape.accept?.(draft);
      const event = plannedEvent(draft);
      await assertDailyCap(tenantId, modelId, budget, event);
      // Rounds still open count at their planned cost, and the reservation is taken only if no
      // other open or budget change slipped in since the budget was read (optimistic retry).
      let current = budget;
      for (let attempt = 0; attempt < 8; attempt++) {
        const open = await budgets.reservations(tenantId, modelId, clock());
        const projected = await ledgerFor(tenantId, modelId, current).assertCanRun([
          ...open.map((r) => ({ event: r.event, count: 1 })),
          { event, count: 1 },
        ]);
        const reservation = { roundId: shape.roundId, event, expiresAt: shape.expiresAt };
        if (await budgets.reserve(tenantId, modelId, current.version, reservation)) {
          return { ...draft, projectedEpsilon: projected.epsilon };
        }
        current = await budgetOf(tenantId, modelId);
      }
      throw new ConflictError(
        "privacy_budget_busy",
        `model ${modelId}'s budget kept changing; retry the request`,
      );
    },

    release: (tenantId, modelId, roundId) => budgets.release(tenantId, modelId, roundId),

    async record(tenantId, release) {
      const { plan, modelId, roundId } = release;
      const budget = await budgetOf(tenantId, modelId);
      const scope = { tenant: tenantId, model: modelId };
      // A retried end (after a crash between the append and the root's save) finds its entry:
      // one entry per round, covering every shard sum it revealed.
      const recorded = await store.roundEntry(scope, roundId);
      if (recorded) return recorded;
      // Two rounds of one model may end at once in different objects: the store's conditional
      // append refuses the loser, which rereads the head and tries again.
      const entry = await retryConflicts(async () => {
        const head = await store.head(scope);
        if (head && isReleaseEntry(head) && head.roundId === roundId) return head;
        const ledger = ledgerFor(tenantId, modelId, budget);
        const record = roundRecordFromConfig(plan.config, {
          round: head ? head.round + 1 : 1,
          roundId,
          cohortSize: release.cohortSize,
          survivors: release.survivors,
          // Trusted shares of the least-noised sum: its contributors minus the assumed colluders.
          noiseShares: release.fewestInOneSum - (plan.colluders ?? 0),
          threshold: release.threshold,
          colluders: plan.colluders ?? 0,
          sampling: plan.sampling,
        });
        const hashes =
          release.aggregateSha256 === undefined
            ? {}
            : { release: { aggregateSha256: release.aggregateSha256 } };
        const entry = await ledger.recordRound({ ...record, ...hashes });
        if (plan.adaptive && plan.config.clipIndicator && release.clipCount !== undefined) {
          const { release: clip } = updateClip(
            plan.adaptive,
            { clipNorm: plan.config.clipIndicator.updateClip, releases: 0 },
            release.clipCount,
            release.survivors,
          );
          await ledger.recordClipRelease(entry, plan.adaptive, clip);
        }
        return entry;
      });
      await publishAfterAppend(scope);
      return entry;
    },

    async recordPublication(tenantId, modelId, publication) {
      const budget = await budgetOf(tenantId, modelId);
      const scope = { tenant: tenantId, model: modelId };
      const entry = await retryConflicts(async () => {
        const head = await store.head(scope);
        if (!head) return null;
        // The trainer publishes right after its round: the round entry is among the last few.
        const recent = await store.list(scope, { afterSeq: head.seq - 9, limit: 10 });
        if (recent.some((e) => e.kind === "publication" && e.publication.roundId === publication.roundId))
          return null;
        const round = recent.findLast((e) => e.kind === "round" && e.roundId === publication.roundId);
        if (round?.kind !== "round" || !round.release) return null;
        return ledgerFor(tenantId, modelId, budget).recordPublication({
          roundId: publication.roundId,
          roundSeq: round.seq,
          aggregateSha256: round.release.aggregateSha256,
          modelVersion: publication.modelVersion,
          modelVersionSha256: publication.modelVersionSha256,
        });
      });
      if (entry) await publishAfterAppend(scope);
      return entry;
    },
  };
}
