/**
 * The protocol guard: every message is parsed against its versioned schema and checked against
 * the round state before any handler touches it. It rejects, each with its own stable code,
 * malformed and wrong-version messages, other rounds' messages, senders outside the cohort,
 * messages for a stage that has not opened (out of order) or has closed (late or replayed),
 * devices dropped earlier, and second submissions, telling an idempotent retry (`duplicate`) from
 * a different second message (`conflict`). Flower's SecAgg+ guard is the model: one precise error
 * per violation, tested over the whole stage-transition matrix.
 */

import { bytesToBase64 } from "@fedprofile/protocol/bytes";
import { ERROR_CODES, ProtocolError, type Stage, stageIndex } from "@fedprofile/protocol/secagg";
import {
  decodeClientFrame,
  encodeClientFrame,
  FrameError,
  type FrameOf,
  frameMessageFromJson,
  type SecAggFrameMessage,
} from "@fedprofile/protocol/wire";
import type { ServerRoundState } from "./state";

/** A decoded message with the SHA-256 (base64) of its frame. */
export interface Received<M extends SecAggFrameMessage = SecAggFrameMessage> {
  message: M;
  digest: string;
}

function malformed(cause: unknown): ProtocolError {
  const text = cause instanceof FrameError ? cause.message : "message: invalid";
  return new ProtocolError(ERROR_CODES.malformed, text, { cause });
}

/**
 * SHA-256 of a frame, on WebCrypto. Frames are canonical (`secagg-frame.ts`), so this names the
 * message: a retry hashes to the same digest, a different message to another.
 */
export async function frameDigest(frame: Uint8Array): Promise<string> {
  const copy = frame.byteOffset === 0 && frame.byteLength === frame.buffer.byteLength ? frame : frame.slice();
  const digest = await crypto.subtle.digest("SHA-256", copy as Uint8Array<ArrayBuffer>);
  return bytesToBase64(new Uint8Array(digest));
}

/** Decodes a binary frame once (or throws `malformed` naming the field) and digests its bytes. */
export async function receiveFrame(frame: Uint8Array): Promise<Received> {
  let message: SecAggFrameMessage;
  try {
    message = decodeClientFrame(frame);
  } catch (cause) {
    throw malformed(cause);
  }
  return { message, digest: await frameDigest(frame) };
}

/**
 * Validates a JSON-form message (in-process hosts and tests), converts it to typed bytes and
 * digests its canonical frame, so it is recognised as the same message as its frame.
 */
export async function receiveJson(input: unknown): Promise<Received> {
  let message: SecAggFrameMessage;
  try {
    message = frameMessageFromJson(input);
  } catch (cause) {
    throw malformed(cause);
  }
  return { message, digest: await frameDigest(encodeClientFrame(message)) };
}

/** The set of devices allowed to send in `stage` (the survivors of the previous stage). */
export function eligible(state: ServerRoundState, stage: Stage): readonly number[] | null {
  switch (stage) {
    case "advertise-keys":
      return null; // the whole cohort
    case "share-keys":
      return state.members;
    case "masked-input":
      return state.sharers;
    case "consistency-check":
      return state.survivors;
    case "unmask":
      return state.config.consistencyCheck ? state.checked : state.survivors;
  }
}

/**
 * Admits a received message as one of `stage` for this round, or throws the precise
 * `ProtocolError`. Checks, in order: stage of the handler, round id, cohort membership, round
 * still running, stage order, eligibility, and first submission. The schema was checked when the
 * message was received.
 */
export function admit<S extends Stage>(
  state: ServerRoundState,
  received: Received,
  stage: S,
): Received<FrameOf<S>> {
  const { message, digest } = received;
  if (message.stage !== stage) {
    throw new ProtocolError(ERROR_CODES.malformed, `expected a ${stage} message, got ${message.stage}`, {
      stage,
    });
  }
  const { config } = state;
  if (message.roundId !== config.roundId) {
    throw new ProtocolError(
      ERROR_CODES.wrongRound,
      `message is for round ${message.roundId}, this is ${config.roundId}`,
      {
        stage,
      },
    );
  }
  if (message.slot >= config.cohortSize) {
    throw new ProtocolError(
      ERROR_CODES.foreign,
      `slot ${message.slot} is not in this cohort of ${config.cohortSize}`,
      {
        stage,
      },
    );
  }
  const previous = state.devices[String(message.slot)]?.digests[stage];
  if (state.phase === "done" || state.phase === "aborted") {
    throw new ProtocolError(
      ERROR_CODES.roundClosed,
      `round ${config.roundId} has ${state.phase === "done" ? "finished" : "aborted"}`,
      {
        stage,
      },
    );
  }
  const here = stageIndex(state.phase);
  const there = stageIndex(stage);
  if (there > here) {
    throw new ProtocolError(
      ERROR_CODES.outOfOrder,
      `${stage} is not open yet: the round is in ${state.phase}`,
      { stage },
    );
  }
  if (there < here) {
    // A retry of an accepted message is still a duplicate; anything else is late or replayed.
    if (previous === digest) throw duplicate(stage, message.slot);
    throw new ProtocolError(ERROR_CODES.staleStage, `${stage} has closed: the round is in ${state.phase}`, {
      stage,
    });
  }
  const allowed = eligible(state, stage);
  if (allowed !== null && !allowed.includes(message.slot)) {
    throw new ProtocolError(ERROR_CODES.notParticipant, `slot ${message.slot} was dropped before ${stage}`, {
      stage,
    });
  }
  if (previous !== undefined) {
    if (previous === digest) throw duplicate(stage, message.slot);
    throw new ProtocolError(
      ERROR_CODES.conflict,
      `slot ${message.slot} already submitted a different ${stage} message`,
      {
        stage,
      },
    );
  }
  return { message: message as FrameOf<S>, digest };
}

function duplicate(stage: Stage, slot: number): ProtocolError {
  return new ProtocolError(
    ERROR_CODES.duplicate,
    `slot ${slot}: this ${stage} message was already accepted`,
    { stage },
  );
}
