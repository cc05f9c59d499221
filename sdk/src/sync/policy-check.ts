/**
 * The device's policy check (issue 13): run on the round description from check-in before
 * joining, and again on the SecAgg configuration of the advertise-keys view before the device's
 * keys leave it, since that configuration (cohort, t, consistency check) is what the protocol runs.
 */

import {
  checkRoundFloors,
  DEFAULT_PRIVACY_POLICY,
  DEVELOPMENT_PRIVACY_POLICY,
  type PrivacyPolicy,
  privacyPolicy,
  type RoundFacts,
} from "@fedprofile/protocol/dp";
import { maliciousServerShortfalls } from "@fedprofile/protocol/secagg";
import type { RoundInfo, SecAggConfig } from "@fedprofile/protocol/wire";
import { FedprofileError } from "../errors";
import { PolicyRefusedError, type PrivacyPolicyOption } from "../privacy-policy";

/** The policy an option names (a bad override throws a TypeError naming the field). */
export function resolvePolicy(option: PrivacyPolicyOption | undefined): PrivacyPolicy {
  if (option === undefined || option === "default") return DEFAULT_PRIVACY_POLICY;
  if (option === "development") return DEVELOPMENT_PRIVACY_POLICY;
  return privacyPolicy(option);
}

function refuseBelow(policy: PrivacyPolicy, roundId: string, facts: RoundFacts): void {
  const violations = checkRoundFloors(policy, facts);
  if (violations.length > 0) throw new PolicyRefusedError(roundId, violations);
}

/** Refuses `round` (from check-in) if it is below `policy`; call before joining. */
export function assertRoundMeetsPolicy(policy: PrivacyPolicy, round: RoundInfo): void {
  refuseBelow(policy, round.roundId, {
    aggregation: round.aggregation,
    dp: round.dp,
    privacy: round.secagg?.privacy,
    cohort: round.secagg?.minShardSize,
    threshold: round.secagg?.threshold,
    consistencyCheck: round.secagg?.consistencyCheck,
    admission: round.secagg?.admission !== undefined,
  });
}

/** Refuses the SecAgg configuration a shard actually runs if it is below `policy`. */
export function assertSecAggMeetsPolicy(policy: PrivacyPolicy, round: RoundInfo, config: SecAggConfig): void {
  refuseBelow(policy, round.roundId, {
    aggregation: "secagg",
    dp: round.dp,
    privacy: round.secagg?.privacy,
    cohort: config.cohortSize,
    threshold: config.t,
    consistencyCheck: config.consistencyCheck,
    admission: round.secagg?.admission !== undefined,
    honestMajority: maliciousServerShortfalls(config).length === 0,
  });
}

/** A device never sends a non-finite value: NaN or ±Infinity would poison a sum (issue 13). */
export function assertFiniteVector(vector: Float64Array): void {
  for (let i = 0; i < vector.length; i++) {
    if (!Number.isFinite(vector[i] as number)) {
      throw new FedprofileError(
        "non_finite_value",
        `vector[${i}] is ${vector[i]}; only finite values are sent`,
      );
    }
  }
}
