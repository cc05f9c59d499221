/**
 * Privacy floors: the weakest round a device will take part in, and the weakest round a
 * coordinator will open. Both sides run {@link checkRoundFloors} over the same defaults, kept here
 * once, so a configuration the coordinator accepts is one a device with the default policy accepts.
 *
 * A device cannot trust the round configuration it is shown: an operator's mistake (or an
 * attacker holding the secret key) could set a tiny noise, a central mechanism, a cohort of two or
 * a plaintext sum (issue 13, finding 2). The check runs before the device sends anything.
 */

import * as z from "zod/mini";
import type { RoundPrivacyInfo } from "../wire/round.ts";
import type { DpRoundConfig } from "./config.ts";
import { rdpToEpsilon } from "./conversion.ts";
import { eventRdpCurve } from "./events.ts";
import { distributedRoundEvent } from "./mechanism.ts";
import { DEFAULT_RDP_ORDERS } from "./rdp.ts";

const count = z.int().check(z.minimum(1), z.maximum(1 << 20));
const epsilon = z.number().check(z.positive(), z.maximum(1e6));

/** A privacy policy: every floor a round must meet. */
export const PrivacyPolicy = z.strictObject({
  /** Only distributed DP (devices add the noise, KLS21): refuses `central_gaussian` and no-DP rounds. */
  requireDistributedDp: z.boolean(),
  /** `plain-sum` sends the vector in the clear: development only. */
  allowPlainSum: z.boolean(),
  /** Fewest trusted noise shares (planned shares minus assumed colluders) in any revealed sum. */
  minNoiseShares: count,
  /** Largest epsilon one round may spend (at the round's delta, with the counted shares). */
  maxEpsilonPerRound: epsilon,
  /** Largest epsilon a model may stand at after this round (the coordinator's projection). */
  maxEpsilonPerModel: epsilon,
  /**
   * Largest epsilon a model may spend in any 24 hours (composed over the ledger's entries of the
   * day and the open rounds), so a key holder cannot drain a budget by opening rounds. The
   * coordinator enforces it; a device cannot see other rounds, so it does not.
   */
  maxEpsilonPerModelPerDay: epsilon,
  /** Largest delta a round may be stated at. */
  maxDelta: z.number().check(z.positive(), z.lt(1)),
  /** Smallest SecAgg shard (its sum is revealed to the coordinator). */
  minCohort: z.int().check(z.minimum(2), z.maximum(1 << 20)),
  /** Smallest Shamir threshold t of a shard. */
  minThreshold: count,
  /** The consistency check (Bonawitz et al. 2017 round 3) must be on. */
  requireConsistencyCheck: z.boolean(),
  /** Clip bounds: a clip outside them is a misconfiguration (1e-300 makes every update vanish). */
  minClipNorm: z.number().check(z.positive()),
  maxClipNorm: z.number().check(z.positive()),
  /**
   * Devices are admitted by a single-use Privacy Pass token per round (`../admission.ts`): without
   * it a holder of the publishable key can fill a round with Sybils of known input.
   */
  requireAdmission: z.boolean(),
  /**
   * The `maliciousServer` preset's honest majority: t > k/2 of every shard's effective degree
   * (`../secagg/threat.ts`), so a server showing split survivor sets learns nothing, and signed key
   * advertisements bound to admission tokens (`../secagg/identity.ts`). Off in both
   * presets here (it costs a larger k); a page that does not trust the coordinator turns it on.
   */
  requireHonestMajority: z.boolean(),
});
export type PrivacyPolicy = z.infer<typeof PrivacyPolicy>;

/**
 * The production floors (device and coordinator default). Why these values:
 * - 10 trusted noise shares: below that one device's own share is a large part of the noise.
 * - ε 2 per round and 10 per model: the range DP deployments report (Apple, Google Gboard ε ≤ 10);
 *   at most 3 a day, so a model's whole budget takes at least four days to spend.
 * - δ ≤ 1e-4: the DESIGN rule 1/N^1.1 at N ≈ 4,300 (the Online Retail population).
 * - Shards of at least 20 devices with t ≥ 3 and the consistency check on.
 */
export const DEFAULT_PRIVACY_POLICY: Readonly<PrivacyPolicy> = Object.freeze({
  requireDistributedDp: true,
  allowPlainSum: false,
  minNoiseShares: 10,
  maxEpsilonPerRound: 2,
  maxEpsilonPerModel: 10,
  maxEpsilonPerModelPerDay: 3,
  maxDelta: 1e-4,
  minCohort: 20,
  minThreshold: 3,
  requireConsistencyCheck: true,
  minClipNorm: 1e-6,
  maxClipNorm: 1e6,
  requireAdmission: true,
  requireHonestMajority: false,
});

/**
 * Floors for local development and tests (a page or a `wrangler dev` opts in explicitly):
 * plain-sum, tiny cohorts and rounds without DP are allowed, but the ε ceilings, finite clips and
 * at least one trusted noise share in a DP round still hold.
 */
export const DEVELOPMENT_PRIVACY_POLICY: Readonly<PrivacyPolicy> = Object.freeze({
  requireDistributedDp: false,
  allowPlainSum: true,
  minNoiseShares: 1,
  maxEpsilonPerRound: 1000,
  maxEpsilonPerModel: 10_000,
  maxEpsilonPerModelPerDay: 1000,
  maxDelta: 0.1,
  minCohort: 2,
  minThreshold: 1,
  requireConsistencyCheck: false,
  minClipNorm: 1e-6,
  maxClipNorm: 1e9,
  requireAdmission: false,
  requireHonestMajority: false,
});

/**
 * Colluding or fake devices a round assumes when the operator names none: 5% of the noise
 * shares, rounded up, so never 0. Admission tokens bound Sybils per customer, not per person, and
 * the SecAgg parameters are already chosen against a colluding fraction of 5% (`chooseParameters`):
 * accounting for the same fraction keeps the two assumptions one.
 */
export const DEFAULT_COLLUDING_FRACTION = 0.05;

/** The default `colluders` for a round whose smallest revealed sum carries `noiseShares` shares. */
export function defaultColluders(noiseShares: number): number {
  return Math.max(1, Math.ceil(DEFAULT_COLLUDING_FRACTION * noiseShares));
}

/** What a side knows of a round when it checks the floors; absent facts count as unmet floors. */
export interface RoundFacts {
  aggregation: "plain-sum" | "secagg";
  dp?: DpRoundConfig | undefined;
  privacy?: RoundPrivacyInfo | undefined;
  /** Smallest shard, its threshold, and whether the consistency check runs. */
  cohort?: number | undefined;
  threshold?: number | undefined;
  consistencyCheck?: boolean | undefined;
  /** Whether devices are admitted by token. */
  admission?: boolean | undefined;
  /**
   * Whether t > k/2 in every shard. Only known from a shard's configuration (k is not in the
   * check-in round info): undefined skips the floor, which the advertise-keys view then checks.
   */
  honestMajority?: boolean | undefined;
}

/** One unmet floor: which, and why (a sentence a person can read). */
export interface FloorViolation {
  floor: keyof PrivacyPolicy;
  reason: string;
}

/**
 * The epsilon of one distributed round at `delta`, counting `noiseShares - colluders` shares
 * (KLS21 Theorem 1 via the ledger's own event and conversion, so device and ledger agree).
 */
export function roundEpsilon(dp: DpRoundConfig, privacy: RoundPrivacyInfo): number {
  if (dp.mechanism !== "distributed_discrete_gaussian") return Number.POSITIVE_INFINITY;
  if (privacy.noiseShares - privacy.colluders < 1) return Number.POSITIVE_INFINITY;
  const event = distributedRoundEvent(dp, {
    survivors: privacy.noiseShares,
    colluders: privacy.colluders,
    sampling: { uniform: false, rate: 1 },
  });
  return rdpToEpsilon(DEFAULT_RDP_ORDERS, eventRdpCurve(event, DEFAULT_RDP_ORDERS), privacy.delta).epsilon;
}

/** Every floor of `policy` that the round described by `facts` does not meet (empty: it may run). */
export function checkRoundFloors(policy: PrivacyPolicy, facts: RoundFacts): FloorViolation[] {
  const out: FloorViolation[] = [];
  const fail = (floor: keyof PrivacyPolicy, reason: string) => out.push({ floor, reason });
  if (facts.aggregation === "plain-sum") {
    if (!policy.allowPlainSum) fail("allowPlainSum", "a plain-sum round sends the vector in the clear");
    return out;
  }
  const { dp, privacy } = facts;
  if (dp?.mechanism !== "distributed_discrete_gaussian") {
    if (policy.requireDistributedDp) {
      fail(
        "requireDistributedDp",
        dp ? `mechanism ${dp.mechanism}: the device would add no noise` : "the round has no DP",
      );
    }
  }
  if (dp) {
    if (
      !Number.isFinite(dp.clipNorm) ||
      dp.clipNorm < policy.minClipNorm ||
      dp.clipNorm > policy.maxClipNorm
    ) {
      fail("minClipNorm", `clip ${dp.clipNorm} is outside [${policy.minClipNorm}, ${policy.maxClipNorm}]`);
    }
    if (dp.mechanism === "distributed_discrete_gaussian") {
      if (!privacy) fail("minNoiseShares", "the round does not state its noise shares");
      else {
        const counted = privacy.noiseShares - privacy.colluders;
        if (counted < policy.minNoiseShares) {
          fail(
            "minNoiseShares",
            `${counted} trusted noise shares (${privacy.noiseShares} minus ${privacy.colluders} colluders), below ${policy.minNoiseShares}`,
          );
        }
        if (privacy.delta > policy.maxDelta)
          fail("maxDelta", `delta ${privacy.delta} above ${policy.maxDelta}`);
        const eps = counted >= 1 ? roundEpsilon(dp, privacy) : Number.POSITIVE_INFINITY;
        if (!(eps <= policy.maxEpsilonPerRound)) {
          fail(
            "maxEpsilonPerRound",
            `one round spends epsilon ${eps.toPrecision(4)}, above ${policy.maxEpsilonPerRound}`,
          );
        }
        if (!(privacy.modelEpsilon <= policy.maxEpsilonPerModel)) {
          fail(
            "maxEpsilonPerModel",
            `the model would stand at epsilon ${privacy.modelEpsilon.toPrecision(4)}, above ${policy.maxEpsilonPerModel}`,
          );
        }
      }
    }
  }
  if (facts.cohort === undefined || facts.cohort < policy.minCohort) {
    fail("minCohort", `shard of ${facts.cohort ?? "unstated"} devices, below ${policy.minCohort}`);
  }
  if (facts.threshold === undefined || facts.threshold < policy.minThreshold) {
    fail("minThreshold", `threshold t = ${facts.threshold ?? "unstated"}, below ${policy.minThreshold}`);
  }
  if (policy.requireConsistencyCheck && facts.consistencyCheck !== true) {
    fail("requireConsistencyCheck", "the consistency check is off");
  }
  if (policy.requireAdmission && facts.admission !== true) {
    fail("requireAdmission", "the round admits devices without a token: one client could fill it");
  }
  if (policy.requireHonestMajority && facts.admission !== true) {
    fail("requireHonestMajority", "no admission tokens to bind signed keys to");
  }
  if (policy.requireHonestMajority && facts.honestMajority === false) {
    fail(
      "requireHonestMajority",
      "t is not above half of the neighbours: a split-view server could unmask a device",
    );
  }
  return out;
}

/** A policy from defaults plus the caller's overrides, validated (a bad field throws naming it). */
export function privacyPolicy(
  overrides: Partial<PrivacyPolicy> = {},
  base: Readonly<PrivacyPolicy> = DEFAULT_PRIVACY_POLICY,
): PrivacyPolicy {
  const parsed = PrivacyPolicy.safeParse({ ...base, ...overrides });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TypeError(`privacyPolicy.${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}
