/**
 * The client half of a round: check in, then take part according to the round's aggregation.
 * `plain-sum` (the walking skeleton) joins and contributes once; `secagg` runs the SecAgg+
 * stages (`./secagg-round.ts`), loaded only when a SecAgg round is open.
 */

import type { RoundInfo } from "@fedprofile/protocol/wire";
import { encodeFloat64Vector } from "@fedprofile/protocol/wire";
import type { PrivacyPolicyOption } from "../privacy-policy";
import type { AdmissionOptions } from "./admission";
import { type CoordinatorClient, CoordinatorError } from "./coordinator-client";
import { assertFiniteVector, assertRoundMeetsPolicy, resolvePolicy } from "./policy-check";
import type { SecAggSessionStore } from "./secagg-round";

export type RoundOutcome =
  | { status: "no-round"; latestModelVersion: number | null }
  | { status: "contributed"; roundId: string; contributions: number; stage: string }
  | { status: "already-contributed"; roundId: string }
  /** SecAgg: the round (or this device's shard) fell below its threshold; nothing was revealed. */
  | { status: "aborted"; roundId: string; code: string; reason: string }
  /** SecAgg: this device missed a stage deadline and was left out (or recovered) by the others. */
  | { status: "dropped"; roundId: string; reason: string }
  /** The round (or every shard with room) already has all the participants it can count. */
  | { status: "round-full"; roundId: string; reason: string }
  /** The round admits by token and this device got none (no issuer configured, quota used, issuer down). */
  | { status: "not-admitted"; roundId: string; reason: string }
  /** No answer (or only 429/5xx) from the coordinator for the whole retry window. */
  | { status: "unreachable"; reason: string }
  /** The device's privacy policy refused the round before anything was sent (`refused_by_policy`). */
  | {
      status: "refused-by-policy";
      roundId: string | null;
      reason: string;
      /** The floors the round does not meet (`PolicyRefusedError.violations`), when known. */
      floors?: string[];
    };

/**
 * The outcome a failure stands for, or `null` for a failure that is a bug to report (a 4xx other
 * than a full round, an answer the wire schemas reject). Errors are read by `code`, not class:
 * the policy error is the SDK core's, which the lazily loaded sync code does not share.
 */
export function failureOutcome(error: unknown, roundId: string | null = null): RoundOutcome | null {
  if (!(error instanceof Error) || !("code" in error)) return null;
  if (error.code === "refused_by_policy") {
    const floors =
      "violations" in error && Array.isArray(error.violations)
        ? error.violations.map((v: { floor?: unknown }) => String(v.floor))
        : [];
    return {
      status: "refused-by-policy",
      roundId,
      reason: error.message,
      ...(floors.length > 0 ? { floors } : {}),
    };
  }
  if (error.code === "admission_unavailable" && roundId !== null)
    return { status: "not-admitted", roundId, reason: error.message };
  // The round's model is one this device cannot compute with: it leaves the round, sync goes on.
  if (error.code === "model_unusable" && roundId !== null)
    return { status: "dropped", roundId, reason: `model_unusable: ${error.message}` };
  if (!(error instanceof CoordinatorError)) return null;
  if (error.code === "round_full" && roundId !== null)
    return { status: "round-full", roundId, reason: error.message };
  return error.retryable ? { status: "unreachable", reason: error.message } : null;
}

export interface ParticipationOptions {
  /** Lets the caller enforce one contribution per device per round across reloads. */
  alreadyContributed?: (roundId: string) => Promise<boolean> | boolean;
  /** Where SecAgg sessions are kept between stages, so a reload resumes the round. */
  sessions?: SecAggSessionStore;
  /** SecAgg poll interval in ms. */
  pollMs?: number;
  /** The open round, when the caller already has it (from `/v1/tasks`): no second check-in. */
  round?: RoundInfo;
  /**
   * The device's privacy policy (default: the production floors). A round below it is refused
   * with `PolicyRefusedError` before anything is sent.
   */
  policy?: PrivacyPolicyOption;
  /** Where the device gets admission tokens for rounds that require them. */
  admission?: AdmissionOptions;
}

/** This device's vector for a round (the round tells the model kind's task, if any). */
export type VectorFor = (dimension: number, round: RoundInfo) => Promise<Float64Array> | Float64Array;

/** Takes part in the open round of `modelId`, whatever its aggregation. */
export async function participateInRound(
  client: CoordinatorClient,
  modelId: string,
  vectorFor: VectorFor,
  options: ParticipationOptions = {},
): Promise<RoundOutcome> {
  let round = options.round ?? null;
  try {
    if (!round) {
      const checkin = await client.checkin(modelId);
      if (!checkin.round) return { status: "no-round", latestModelVersion: checkin.latestModelVersion };
      round = checkin.round;
    }
    return await participateIn(client, round, vectorFor, options);
  } catch (error) {
    const outcome = failureOutcome(error, round?.roundId ?? null);
    if (outcome) return outcome;
    throw error;
  }
}

async function participateIn(
  client: CoordinatorClient,
  round: RoundInfo,
  vectorFor: VectorFor,
  options: ParticipationOptions,
): Promise<RoundOutcome> {
  const policy = resolvePolicy(options.policy);
  assertRoundMeetsPolicy(policy, round);
  // A SecAgg session in progress (e.g. before a reload) is resumed even though it contributed.
  const sessions = options.sessions;
  const resuming =
    round.aggregation === "secagg" && sessions ? (await sessions.load(round.roundId)) !== null : false;
  if (!resuming && (await options.alreadyContributed?.(round.roundId))) {
    return { status: "already-contributed", roundId: round.roundId };
  }
  if (round.aggregation === "secagg") {
    const { participateInSecAggRound } = await import("./secagg-round");
    const outcome = await participateInSecAggRound(client, round, vectorFor, {
      ...(sessions ? { sessions } : {}),
      ...(options.pollMs ? { pollMs: options.pollMs } : {}),
      ...(options.admission ? { admission: options.admission } : {}),
      policy,
    });
    return outcome.status === "contributed"
      ? {
          status: "contributed",
          roundId: outcome.roundId,
          contributions: outcome.contributors,
          stage: "done",
        }
      : outcome;
  }
  return contributeToPlainRound(client, round.roundId, (dimension) => vectorFor(dimension, round));
}

/** Joins plain-sum round `roundId` and contributes this device's vector once. */
export async function contributeToPlainRound(
  client: CoordinatorClient,
  roundId: string,
  vectorFor: (dimension: number) => Promise<Float64Array> | Float64Array,
): Promise<RoundOutcome> {
  const round = { roundId };
  const joined = await client.join(round.roundId);
  const vector = await vectorFor(joined.dimension);
  if (vector.length !== joined.dimension) {
    throw new RangeError(`vector: expected dimension ${joined.dimension}, got ${vector.length}`);
  }
  assertFiniteVector(vector);
  try {
    const accepted = await client.contribute(
      round.roundId,
      joined.participantId,
      joined.participantToken,
      encodeFloat64Vector(vector),
    );
    return {
      status: "contributed",
      roundId: round.roundId,
      contributions: accepted.contributions,
      stage: accepted.stage,
    };
  } catch (error) {
    // A retry after a lost response finds our own contribution already counted: that is success.
    if (!(error instanceof CoordinatorError && error.code === "duplicate_contribution")) throw error;
    const status = await client.roundStatus(round.roundId);
    return {
      status: "contributed",
      roundId: round.roundId,
      contributions: status.contributions,
      stage: status.stage,
    };
  }
}
