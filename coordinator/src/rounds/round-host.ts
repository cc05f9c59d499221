/**
 * Runs one plain-sum round over a `RoundStateStore`: every operation loads the state,
 * applies a pure transition, saves, and keeps the deadline alarm in step. Operations are
 * serialised, so a host is safe to drive from concurrent requests (a Durable Object's input
 * gates open while it awaits D1).
 */

import { type RandomBytes, systemRandomBytes } from "@fedprofile/protocol/bytes";
import type {
  ContributionRequest,
  ContributionResponse,
  JoinResponse,
  OpenRoundRequest,
  RoundStatus,
} from "@fedprofile/protocol/wire";
import { decodeFloat64Vector, encodeFloat64Vector, WIRE_VERSION } from "@fedprofile/protocol/wire";
import { ConflictError, InvalidRequestError, NotFoundError } from "../errors";
import { newParticipantId, newToken, sha256Hex } from "../ids";
import type { Clock, ModelStore, RoundHostHandle, RoundIndex, RoundStateStore } from "../ports";
import {
  contributePlainSum,
  endPlainSumRound,
  joinPlainSumRound,
  openPlainSumRound,
  type PlainSumRoundState,
  plainSumRoundInfo,
  plainSumRoundIsFull,
  plainSumRoundStatus,
} from "./plain-sum-round";
import { createSerialQueue } from "./serial-queue";

export interface PlainSumRoundHostOptions {
  store: RoundStateStore<PlainSumRoundState>;
  models: ModelStore;
  index: RoundIndex;
  clock?: Clock;
  randomBytes?: RandomBytes;
}

/** A round host plus the alarm entry point its runtime calls at the deadline. */
export interface PlainSumRoundHost extends RoundHostHandle {
  alarm(): Promise<void>;
}

/** Creates the host for one round. */
export function createPlainSumRoundHost(options: PlainSumRoundHostOptions): PlainSumRoundHost {
  const { store, models, index } = options;
  const clock = options.clock ?? Date.now;
  const randomBytes = options.randomBytes ?? systemRandomBytes;
  const serialised = createSerialQueue();

  async function mustLoad(): Promise<PlainSumRoundState> {
    const state = await store.load();
    if (!state) throw new NotFoundError("round not found");
    return state;
  }

  /** Publishes (or aborts) and records the outcome; safe to call twice. */
  async function end(state: PlainSumRoundState, reason: string): Promise<PlainSumRoundState> {
    let ended = endPlainSumRound(state, clock(), reason);
    if (ended.stage === "closed" && ended.modelVersion === null) {
      const published = await models.publish(
        ended.tenantId,
        {
          modelId: ended.modelId,
          roundId: ended.roundId,
          dimension: ended.dimension,
          contributions: ended.contributions,
          aggregation: "plain-sum",
          weights: encodeFloat64Vector(ended.sum),
        },
        ended.closedAt ?? clock(),
      );
      ended = { ...ended, modelVersion: published.version };
    }
    await store.save(ended);
    await store.deleteAlarm();
    await index.markEnded(ended.tenantId, ended.roundId, ended.stage, ended.modelVersion);
    return ended;
  }

  return {
    open: (tenantId: string, roundId: string, request: OpenRoundRequest): Promise<RoundStatus> =>
      serialised(async () => {
        if (await store.load()) throw new ConflictError("round_exists", `round ${roundId} already exists`);
        const state = openPlainSumRound(tenantId, roundId, request, clock());
        await store.save(state);
        await store.setAlarm(state.closesAt);
        await index.insert(tenantId, plainSumRoundInfo(state));
        return plainSumRoundStatus(state);
      }),

    join: (): Promise<JoinResponse> =>
      serialised(async () => {
        const state = await mustLoad();
        const participantId = newParticipantId(randomBytes);
        const participantToken = newToken(randomBytes);
        await store.save(joinPlainSumRound(state, participantId, sha256Hex(participantToken), clock()));
        return {
          v: WIRE_VERSION,
          roundId: state.roundId,
          participantId,
          participantToken,
          dimension: state.dimension,
          closesAt: state.closesAt,
        };
      }),

    contribute: (request: ContributionRequest): Promise<ContributionResponse> =>
      serialised(async () => {
        let state = await mustLoad();
        let vector: Float64Array;
        try {
          vector = decodeFloat64Vector(request.vector, state.dimension);
        } catch (cause) {
          throw new InvalidRequestError(cause instanceof Error ? cause.message : "vector: malformed", {
            cause,
          });
        }
        state = contributePlainSum(
          state,
          request.participantId,
          sha256Hex(request.participantToken),
          vector,
          clock(),
        );
        await store.save(state);
        if (plainSumRoundIsFull(state)) state = await end(state, "max-contributions");
        return { v: WIRE_VERSION, accepted: true, contributions: state.contributions, stage: state.stage };
      }),

    status: (): Promise<RoundStatus | null> =>
      serialised(async () => {
        const state = await store.load();
        return state ? plainSumRoundStatus(state) : null;
      }),

    // Plain-sum rounds publish their own aggregate; only a trainer's SecAgg rounds have a result.
    result: async () => null,

    alarm: (): Promise<void> =>
      serialised(async () => {
        const state = await store.load();
        if (state?.stage !== "collecting") return;
        // Alarms may fire early or be retried; only a passed deadline ends the round.
        if (clock() < state.closesAt) {
          await store.setAlarm(state.closesAt);
          return;
        }
        await end(state, "deadline");
      }),
  };
}
