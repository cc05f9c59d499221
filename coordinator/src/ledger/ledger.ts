/**
 * The privacy ledger service: budget checks before a round, and signed, chained entries after.
 *
 * The coordinator calls {@link PrivacyLedger.assertCanRun} with the round's planned event
 * (calibrated for the SecAgg threshold, the worst case) *before* any device is asked for a
 * contribution, and {@link PrivacyLedger.recordRound} after unmasking with what actually ran.
 */

import type { DpRoundConfig } from "@fedprofile/protocol/dp";
import {
  type ComposedEvent,
  centralNoiseStddev,
  centralRoundEvent,
  centralSigma,
  DEFAULT_RDP_ORDERS,
  type DpEvent,
  decodedSensitivity,
  distributedRoundEvent,
  eventRdpCurve,
  localStddev,
} from "@fedprofile/protocol/dp";
import { bytesToHex } from "@noble/hashes/utils.js";
import { RdpAccountant } from "../dp/accountant.ts";
import type { AdaptiveClippingOptions, ClipRelease } from "../dp/adaptive-clipping.ts";
import { rdpToEpsilon } from "../dp/conversion.ts";
import { PrivacyBudgetExceededError } from "../dp/errors.ts";
import { keyIdOf, type LedgerSigner, sealEntry, signCheckpoint } from "./chain.ts";
import {
  GENESIS_HASH,
  isReleaseEntry,
  type LedgerCheckpoint,
  type LedgerClipRelease,
  type LedgerCohort,
  type LedgerEntry,
  type LedgerEntryBody,
  type LedgerNoise,
  type LedgerPolicy,
  type LedgerPublication,
  type LedgerRoundRelease,
  type LedgerSampling,
  type ReleaseEntry,
} from "./schema.ts";
import type { LedgerScope, LedgerStore } from "./store.ts";

/** A model's budget: the epsilon cap at a fixed delta. */
export interface BudgetPolicy {
  /** Cumulative epsilon the model may never exceed. */
  readonly epsilonCap: number;
  /** The delta every figure is stated at (default policy: at most 1/population^1.1). */
  readonly delta: number;
}

/** Options of {@link PrivacyLedger}. */
export interface PrivacyLedgerOptions {
  readonly store: LedgerStore;
  readonly signer: LedgerSigner;
  readonly scope: LedgerScope;
  readonly policy: BudgetPolicy;
  /** Clock for entry timestamps (injectable for tests). */
  readonly now?: () => Date;
  /**
   * The key this coordinator signed with before `signer` (after a key change). A chain whose head
   * it signed is handed over by a `key_rotation` entry, signed by both, before the next append.
   */
  readonly previousSigner?: LedgerSigner;
}

/** The budget position of a chain. */
export interface BudgetStatus {
  readonly epsilon: number;
  readonly delta: number;
  readonly optimalOrder: number;
  readonly epsilonCap: number;
  readonly remaining: number;
  /** Entries in the chain. */
  readonly entries: number;
  /** Hash of the chain's head entry (null for an empty chain). */
  readonly headHash: string | null;
}

/** What a round ran, in ledger terms. */
export interface RoundRecord {
  readonly round: number;
  readonly roundId?: string;
  readonly mechanism: ReleaseEntry["mechanism"];
  readonly trustModel: ReleaseEntry["trustModel"];
  readonly noise: LedgerNoise;
  readonly clipNorm: number;
  readonly modulusBits: number | null;
  readonly cohort: LedgerCohort;
  readonly sampling: LedgerSampling;
  readonly events: readonly ComposedEvent[];
  /** Hashes of what the round released. */
  readonly release?: LedgerRoundRelease;
}

/** Context of a finished round. */
export interface RoundOutcome {
  readonly round: number;
  readonly roundId?: string;
  readonly cohortSize: number;
  readonly survivors: number;
  /**
   * Trusted noise shares in the *least* noised sum the coordinator saw, when that is fewer than
   * `survivors - colluders` (hierarchical aggregation reveals each shard's sum; a user is protected
   * by the noise of their own shard). Defaults to `survivors - colluders`.
   */
  readonly noiseShares?: number;
  readonly threshold?: number;
  readonly colluders?: number;
  readonly sampling: LedgerSampling;
}

/**
 * Builds the ledger record of a round from its public configuration and outcome: the event the
 * accountant composes (survivors minus colluders as noise shares for the distributed mechanism)
 * and the noise actually present.
 */
export function roundRecordFromConfig(cfg: DpRoundConfig, o: RoundOutcome): RoundRecord {
  const colluders = o.colluders ?? 0;
  const cohort: LedgerCohort =
    o.threshold === undefined
      ? { size: o.cohortSize, survivors: o.survivors, colluders }
      : { size: o.cohortSize, survivors: o.survivors, threshold: o.threshold, colluders };
  const common = {
    round: o.round,
    ...(o.roundId === undefined ? {} : { roundId: o.roundId }),
    clipNorm: cfg.clipNorm,
    modulusBits: cfg.modulusBits,
    cohort,
    sampling: o.sampling,
  };
  if (cfg.mechanism === "distributed_discrete_gaussian") {
    const trustedSurvivors = o.noiseShares === undefined ? o.survivors : o.noiseShares + colluders;
    const event = distributedRoundEvent(cfg, {
      survivors: trustedSurvivors,
      colluders,
      sampling: o.sampling,
    });
    const local = localStddev(cfg);
    const trusted = Math.sqrt(event.noiseShares) * local;
    return {
      ...common,
      mechanism: "distributed_discrete_gaussian",
      trustModel: "distributed",
      noise: {
        sigma: Math.sqrt(o.survivors) * local,
        noiseMultiplier: trusted / cfg.clipNorm,
        localStddev: local,
        noiseShares: event.noiseShares,
        varianceActual: o.survivors * local * local,
      },
      events: [{ event, count: 1 }],
    };
  }
  const sigma = centralSigma(cfg);
  const actual = centralNoiseStddev(cfg);
  return {
    ...common,
    mechanism: "central_gaussian",
    trustModel: "central",
    noise: { sigma, noiseMultiplier: sigma / decodedSensitivity(cfg), varianceActual: actual * actual },
    events: [{ event: centralRoundEvent(cfg, { sampling: o.sampling }), count: 1 }],
  };
}

function isEventList(p: DpEvent | readonly ComposedEvent[]): p is readonly ComposedEvent[] {
  return Array.isArray(p);
}

function addCurve(
  base: ArrayLike<number>,
  events: readonly ComposedEvent[],
  orders: readonly number[],
): number[] {
  const out = Array.from(base);
  for (const e of events) {
    const c = eventRdpCurve(e.event, orders);
    for (let k = 0; k < out.length; k++) out[k] = out[k]! + e.count * c[k]!;
  }
  return out;
}

/** The privacy ledger of one (tenant, model) chain. */
export class PrivacyLedger {
  private readonly o: PrivacyLedgerOptions;
  private readonly keyId: string;

  constructor(opts: PrivacyLedgerOptions) {
    if (!(opts.policy.epsilonCap > 0)) throw new RangeError("policy.epsilonCap must be positive");
    if (!(opts.policy.delta > 0 && opts.policy.delta < 1))
      throw new RangeError("policy.delta must be in (0, 1)");
    this.o = opts;
    this.keyId = keyIdOf(opts.signer.publicKey);
  }

  private async cumulative(forAppend = false): Promise<{ rdp: number[]; head: LedgerEntry | null }> {
    let head = await this.o.store.head(this.o.scope);
    // After a rotation entry the chain's key is the one it introduced.
    const chainKey = head?.kind === "key_rotation" ? head.rotation.keyId : head?.keyId;
    if (forAppend && head && chainKey !== this.keyId) {
      const prev = this.o.previousSigner;
      if (!prev || keyIdOf(prev.publicKey) !== chainKey)
        throw new RangeError(
          `${this.o.scope.tenant}/${this.o.scope.model}: the chain's key is ${chainKey}, not by this coordinator's key ${this.keyId}; configure the previous key to rotate`,
        );
      const old = new PrivacyLedger({ ...this.o, signer: prev, previousSigner: undefined });
      head = (await old.rotateKey(this.o.signer)).entry;
    }
    if (!head) return { rdp: DEFAULT_RDP_ORDERS.map(() => 0), head: null };
    if (head.accountant.orders !== "default") throw new RangeError("this ledger writes default orders only");
    return { rdp: head.accountant.rdp, head };
  }

  /** The chain's budget position. */
  async status(): Promise<BudgetStatus> {
    const { rdp, head } = await this.cumulative();
    const e = rdpToEpsilon(DEFAULT_RDP_ORDERS, rdp, this.o.policy.delta);
    return {
      epsilon: e.epsilon,
      delta: this.o.policy.delta,
      optimalOrder: e.optimalOrder,
      epsilonCap: this.o.policy.epsilonCap,
      remaining: this.o.policy.epsilonCap - e.epsilon,
      entries: head ? head.seq + 1 : 0,
      headHash: head?.hash ?? null,
    };
  }

  /**
   * Projects the cumulative epsilon after `planned` and throws
   * {@link PrivacyBudgetExceededError} if it would pass the cap. Call it before any device
   * contributes, with the event calibrated for the worst admissible outcome (threshold survivors).
   */
  async assertCanRun(planned: DpEvent | readonly ComposedEvent[]): Promise<BudgetStatus> {
    const events: readonly ComposedEvent[] = isEventList(planned) ? planned : [{ event: planned, count: 1 }];
    const { rdp, head } = await this.cumulative();
    const spent = rdpToEpsilon(DEFAULT_RDP_ORDERS, rdp, this.o.policy.delta);
    const next = rdpToEpsilon(
      DEFAULT_RDP_ORDERS,
      addCurve(rdp, events, DEFAULT_RDP_ORDERS),
      this.o.policy.delta,
    );
    if (next.epsilon > this.o.policy.epsilonCap) {
      throw new PrivacyBudgetExceededError({
        tenant: this.o.scope.tenant,
        model: this.o.scope.model,
        epsilonCap: this.o.policy.epsilonCap,
        epsilonSpent: spent.epsilon,
        projectedEpsilon: next.epsilon,
        delta: this.o.policy.delta,
      });
    }
    return {
      epsilon: next.epsilon,
      delta: this.o.policy.delta,
      optimalOrder: next.optimalOrder,
      epsilonCap: this.o.policy.epsilonCap,
      remaining: this.o.policy.epsilonCap - next.epsilon,
      entries: head ? head.seq + 1 : 0,
      headHash: head?.hash ?? null,
    };
  }

  /** The members every kind carries, for the entry after `head` spending `events`. */
  private commonBody(
    head: LedgerEntry | null,
    rdp: readonly number[],
    events: readonly ComposedEvent[],
    cap: number,
    delta: number,
    round: number,
  ) {
    const next = addCurve(rdp, events, DEFAULT_RDP_ORDERS);
    const eps = rdpToEpsilon(DEFAULT_RDP_ORDERS, next, delta);
    return {
      v: 1 as const,
      seq: head ? head.seq + 1 : 0,
      tenant: this.o.scope.tenant,
      model: this.o.scope.model,
      round,
      timestamp: (this.o.now?.() ?? new Date()).toISOString(),
      accountant: { orders: "default" as const, rdp: next },
      cumulative: { epsilon: eps.epsilon, delta, optimalOrder: eps.optimalOrder },
      budget: { epsilonCap: cap, remaining: cap - eps.epsilon },
      prevHash: head ? head.hash : GENESIS_HASH,
      keyId: this.keyId,
    };
  }

  private async append(
    kind: "round" | "clip_quantile",
    rec: RoundRecord,
    clipRelease?: LedgerClipRelease,
  ): Promise<ReleaseEntry> {
    const { rdp, head } = await this.cumulative(true);
    const common = this.commonBody(
      head,
      rdp,
      rec.events,
      this.o.policy.epsilonCap,
      this.o.policy.delta,
      rec.round,
    );
    const data = {
      ...(rec.roundId === undefined ? {} : { roundId: rec.roundId }),
      mechanism: rec.mechanism,
      trustModel: rec.trustModel,
      noise: rec.noise,
      clipNorm: rec.clipNorm,
      modulusBits: rec.modulusBits,
      cohort: rec.cohort,
      sampling: rec.sampling,
      events: rec.events.map((e) => ({ event: e.event, count: e.count })),
    };
    const body: LedgerEntryBody =
      kind === "clip_quantile" && clipRelease
        ? { ...common, kind, ...data, clipRelease }
        : { ...common, kind: "round", ...data, ...(rec.release ? { release: rec.release } : {}) };
    const entry = sealEntry(body, this.o.signer);
    if (!isReleaseEntry(entry)) throw new TypeError("sealed a release body into another kind");
    await this.o.store.append(entry);
    return entry;
  }

  /** Records a finished round (after unmasking) and returns the signed entry. */
  async recordRound(rec: RoundRecord): Promise<ReleaseEntry> {
    return this.append("round", rec);
  }

  /**
   * Records the policy in force from now on (the cap, delta and declared DP settings); it spends
   * nothing. The ledger's own `policy` must already be the new one.
   */
  async recordPolicy(policy: LedgerPolicy): Promise<LedgerEntry> {
    if (policy.epsilonCap !== this.o.policy.epsilonCap || policy.delta !== this.o.policy.delta)
      throw new RangeError("recordPolicy: the ledger's policy must be the one recorded");
    const { rdp, head } = await this.cumulative(true);
    const common = this.commonBody(head, rdp, [], policy.epsilonCap, policy.delta, head?.round ?? 0);
    const entry = sealEntry({ ...common, kind: "policy", policy }, this.o.signer);
    await this.o.store.append(entry);
    return entry;
  }

  /**
   * Hands the chain over to `next`: an entry signed by the current key and by `next`, after which
   * every entry is signed by `next` (SPEC.md, key rotation). Returns the ledger of the new key.
   */
  async rotateKey(next: LedgerSigner): Promise<{ entry: LedgerEntry; ledger: PrivacyLedger }> {
    const { rdp, head } = await this.cumulative();
    const common = this.commonBody(
      head,
      rdp,
      [],
      this.o.policy.epsilonCap,
      this.o.policy.delta,
      head?.round ?? 0,
    );
    const rotation = {
      previousPublicKey: bytesToHex(this.o.signer.publicKey),
      publicKey: bytesToHex(next.publicKey),
      keyId: keyIdOf(next.publicKey),
    };
    const entry = sealEntry({ ...common, kind: "key_rotation", rotation }, this.o.signer, next);
    await this.o.store.append(entry);
    return { entry, ledger: new PrivacyLedger({ ...this.o, signer: next }) };
  }

  /** A signed checkpoint of the chain's head (SPEC.md §8), or null for an empty chain. */
  async checkpoint(): Promise<LedgerCheckpoint | null> {
    const head = await this.o.store.head(this.o.scope);
    if (!head) return null;
    return signCheckpoint(head, this.o.signer, this.o.now?.() ?? new Date());
  }

  /** Binds a published model version to the round entry whose aggregate it was computed from. */
  async recordPublication(publication: LedgerPublication): Promise<LedgerEntry> {
    const { rdp, head } = await this.cumulative(true);
    const common = this.commonBody(
      head,
      rdp,
      [],
      this.o.policy.epsilonCap,
      this.o.policy.delta,
      head?.round ?? 0,
    );
    const entry = sealEntry({ ...common, kind: "publication", publication }, this.o.signer);
    await this.o.store.append(entry);
    return entry;
  }

  /**
   * Records a clipping-quantile release. Its count travelled inside round entry
   * `roundEntry`'s noised vector, so this entry spends nothing itself and points there.
   */
  async recordClipRelease(
    roundEntry: ReleaseEntry,
    opts: AdaptiveClippingOptions,
    release: ClipRelease,
  ): Promise<ReleaseEntry> {
    const rec: RoundRecord = {
      round: roundEntry.round,
      ...(roundEntry.roundId === undefined ? {} : { roundId: roundEntry.roundId }),
      mechanism: roundEntry.mechanism,
      trustModel: roundEntry.trustModel,
      noise: roundEntry.noise,
      clipNorm: roundEntry.clipNorm,
      modulusBits: roundEntry.modulusBits,
      cohort: roundEntry.cohort,
      sampling: roundEntry.sampling,
      events: [],
    };
    return this.append("clip_quantile", rec, {
      previousClip: release.previousClip,
      nextClip: release.nextClip,
      targetQuantile: opts.targetQuantile,
      learningRate: opts.learningRate,
      countStddev: opts.countStddev,
      noisyFraction: release.noisyFraction,
      accountedInSeq: roundEntry.seq,
    });
  }
}

/** Re-exported for callers that build accountants from a verified chain. */
export function accountantFromEntries(entries: readonly LedgerEntry[]): RdpAccountant {
  const acc = new RdpAccountant();
  for (const e of entries) if (isReleaseEntry(e)) for (const c of e.events) acc.compose(c.event, c.count);
  return acc;
}
