/**
 * The protocol guard: every message is parsed against its versioned schema and checked against
 * the round state before any handler touches it. It rejects, each with its own stable code,
 * malformed and wrong-version messages, other rounds' messages, senders outside the cohort,
 * messages for a stage that has not opened (out of order) or has closed (late or replayed),
 * devices dropped earlier, and second submissions, telling an idempotent retry (`duplicate`) from
 * a different second message (`conflict`). Flower's SecAgg+ guard is the model: one precise error
 * per violation, tested over the whole stage-transition matrix.
 */

import { bytesToBase64, utf8 } from "@fedprofile/protocol/bytes";
import { ERROR_CODES, ProtocolError, type Stage, stageIndex } from "@fedprofile/protocol/secagg";
import { SecAggClientMessage } from "@fedprofile/protocol/wire";
import type { ServerRoundState } from "./state";

/** Parses any client message or throws `malformed` with the first schema issue. */
export function parseClientMessage(input: unknown): SecAggClientMessage {
  const parsed = SecAggClientMessage.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "message";
    throw new ProtocolError(ERROR_CODES.malformed, `${where}: ${issue?.message ?? "invalid"}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * SHA-256 of a parsed message's canonical JSON (zod emits keys in schema order), on WebCrypto:
 * a masked input is ~300 KB of JSON, and native hashing keeps acceptance cheap.
 */
export async function messageDigest(message: SecAggClientMessage): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", utf8(JSON.stringify(message)));
  return bytesToBase64(new Uint8Array(digest));
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

/** A message that passed the guard, with its digest. */
export interface Admitted<M extends SecAggClientMessage> {
  message: M;
  digest: string;
}

/**
 * Admits `input` as a message of `stage` for this round, or throws the precise `ProtocolError`.
 * Checks, in order: schema and version, stage of the handler, round id, cohort membership, round
 * still running, stage order, eligibility, and first submission.
 */
export async function admit<S extends Stage>(
  state: ServerRoundState,
  input: unknown,
  stage: S,
): Promise<Admitted<Extract<SecAggClientMessage, { stage: S }>>> {
  const message = parseClientMessage(input);
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
  const digest = await messageDigest(message);
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
  return { message: message as Extract<SecAggClientMessage, { stage: S }>, digest };
}

function duplicate(stage: Stage, slot: number): ProtocolError {
  return new ProtocolError(
    ERROR_CODES.duplicate,
    `slot ${slot}: this ${stage} message was already accepted`,
    { stage },
  );
}
