/**
 * The walking skeleton's round: a plaintext float64 sum. Pure transitions over a
 * serialisable state record, so a Durable Object can persist it after every message and
 * resume after a restart. Secure aggregation (SecAgg+) replaces the sum in a later stage;
 * the lifecycle (collect until a count or a deadline, then publish or abort) stays.
 */

import { constantTimeEqual } from "@fedprofile/protocol/bytes";
import type { OpenRoundRequest, RoundInfo, RoundStage, RoundStatus } from "@fedprofile/protocol/wire";
import { WIRE_VERSION } from "@fedprofile/protocol/wire";
import { ConflictError, FedprofileError, InvalidRequestError } from "../errors";

export interface PlainSumParticipant {
  tokenHash: string;
  contributed: boolean;
}

/** Everything a plain-sum round needs to resume; JSON-serialisable by construction. */
export interface PlainSumRoundState {
  kind: "plain-sum";
  tenantId: string;
  roundId: string;
  modelId: string;
  dimension: number;
  minContributions: number;
  maxContributions: number;
  openedAt: number;
  closesAt: number;
  stage: RoundStage;
  closedAt: number | null;
  outcome: string | null;
  modelVersion: number | null;
  participants: Record<string, PlainSumParticipant>;
  contributions: number;
  sum: number[];
}

/** Creates the initial state of a round. */
export function openPlainSumRound(
  tenantId: string,
  roundId: string,
  request: OpenRoundRequest,
  now: number,
): PlainSumRoundState {
  return {
    kind: "plain-sum",
    tenantId,
    roundId,
    modelId: request.modelId,
    dimension: request.dimension,
    minContributions: request.minContributions,
    maxContributions: request.maxContributions,
    openedAt: now,
    closesAt: now + request.deadlineSeconds * 1000,
    stage: "collecting",
    closedAt: null,
    outcome: null,
    modelVersion: null,
    participants: {},
    contributions: 0,
    sum: new Array<number>(request.dimension).fill(0),
  };
}

function assertCollecting(state: PlainSumRoundState, now: number): void {
  if (state.stage !== "collecting") {
    throw new ConflictError(
      "round_not_collecting",
      `round ${state.roundId} is ${state.stage}, not collecting`,
    );
  }
  if (now >= state.closesAt) {
    throw new ConflictError(
      "round_deadline_passed",
      `round ${state.roundId} stopped collecting at its deadline`,
    );
  }
}

/** Admits a participant. Joins beyond `maxContributions` are refused: they could never count. */
export function joinPlainSumRound(
  state: PlainSumRoundState,
  participantId: string,
  tokenHash: string,
  now: number,
): PlainSumRoundState {
  assertCollecting(state, now);
  if (state.participants[participantId]) {
    throw new ConflictError("duplicate_participant", `participant ${participantId} already joined`);
  }
  if (Object.keys(state.participants).length >= state.maxContributions * 2) {
    throw new ConflictError("round_full", `round ${state.roundId} has no room for more participants`);
  }
  return {
    ...state,
    participants: { ...state.participants, [participantId]: { tokenHash, contributed: false } },
  };
}

/**
 * Adds one participant's vector to the sum. Each participant contributes at most once
 * (user-level accounting later relies on it).
 */
export function contributePlainSum(
  state: PlainSumRoundState,
  participantId: string,
  tokenHash: string,
  vector: Float64Array,
  now: number,
): PlainSumRoundState {
  assertCollecting(state, now);
  const participant = state.participants[participantId];
  if (!participant || !constantTimeEqual(participant.tokenHash, tokenHash)) {
    throw new FedprofileError(
      "unknown_participant",
      `no participant ${participantId} with that token in this round`,
      403,
    );
  }
  if (participant.contributed) {
    throw new ConflictError("duplicate_contribution", `participant ${participantId} already contributed`);
  }
  if (vector.length !== state.dimension) {
    throw new InvalidRequestError(`vector: expected dimension ${state.dimension}, got ${vector.length}`);
  }
  const sum = state.sum.slice();
  for (let i = 0; i < sum.length; i++) {
    sum[i] = (sum[i] as number) + (vector[i] as number);
    // Two finite inputs can still overflow (1e308 + 1e308 = +Infinity, issue 13): refuse it.
    if (!Number.isFinite(sum[i])) {
      throw new InvalidRequestError(`vector[${i}]: the round's sum would not be finite`, {
        code: "non_finite_sum",
      });
    }
  }
  return {
    ...state,
    sum,
    contributions: state.contributions + 1,
    participants: { ...state.participants, [participantId]: { ...participant, contributed: true } },
  };
}

/** True once the round should close without waiting for its deadline. */
export function plainSumRoundIsFull(state: PlainSumRoundState): boolean {
  return state.stage === "collecting" && state.contributions >= state.maxContributions;
}

/**
 * Ends the round: `closed` when at least `minContributions` arrived, otherwise `aborted`
 * (publishing a sum of too few devices would single them out).
 */
export function endPlainSumRound(state: PlainSumRoundState, now: number, reason: string): PlainSumRoundState {
  if (state.stage !== "collecting") return state;
  const enough = state.contributions >= state.minContributions;
  return {
    ...state,
    stage: enough ? "closed" : "aborted",
    closedAt: now,
    outcome: enough ? reason : `too-few-contributions: ${state.contributions} < ${state.minContributions}`,
    // An aborted round reveals nothing: drop the partial sum.
    sum: enough ? state.sum : [],
  };
}

export function plainSumRoundInfo(state: PlainSumRoundState): RoundInfo {
  return {
    roundId: state.roundId,
    modelId: state.modelId,
    aggregation: "plain-sum",
    stage: state.stage,
    dimension: state.dimension,
    minContributions: state.minContributions,
    maxContributions: state.maxContributions,
    openedAt: state.openedAt,
    closesAt: state.closesAt,
  };
}

export function plainSumRoundStatus(state: PlainSumRoundState): RoundStatus {
  return {
    v: WIRE_VERSION,
    ...plainSumRoundInfo(state),
    participants: Object.keys(state.participants).length,
    contributions: state.contributions,
    closedAt: state.closedAt,
    outcome: state.outcome,
    modelVersion: state.modelVersion,
  };
}
