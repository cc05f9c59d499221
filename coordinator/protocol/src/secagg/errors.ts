import { FedprofileError } from "../errors";
import { ERROR_CODES, type ErrorCode, type RoundPhase } from "./constants";

/** HTTP status a host should answer with for each code (the guard's errors are client errors). */
const STATUS: Record<ErrorCode, number> = {
  [ERROR_CODES.malformed]: 400,
  [ERROR_CODES.wrongLength]: 400,
  [ERROR_CODES.outOfRange]: 400,
  [ERROR_CODES.badKey]: 400,
  [ERROR_CODES.authentication]: 400,
  [ERROR_CODES.wrongRound]: 404,
  [ERROR_CODES.foreign]: 403,
  [ERROR_CODES.notParticipant]: 403,
  [ERROR_CODES.unauthenticated]: 403,
  [ERROR_CODES.outOfOrder]: 409,
  [ERROR_CODES.staleStage]: 409,
  [ERROR_CODES.duplicate]: 409,
  [ERROR_CODES.conflict]: 409,
  [ERROR_CODES.roundClosed]: 409,
  [ERROR_CODES.belowThreshold]: 409,
  [ERROR_CODES.inconsistent]: 409,
  [ERROR_CODES.reconstruction]: 500,
};

/**
 * The one SecAgg error class: a stable `code`, the stage it happened in, and `cause`. It extends
 * the coordinator's `FedprofileError`, so the app's error handler answers with the JSON envelope
 * and the right status without knowing anything about SecAgg.
 */
export class ProtocolError extends FedprofileError {
  override readonly code: ErrorCode;
  /** The round phase the error refers to, when known. */
  readonly stage: RoundPhase | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; stage?: RoundPhase }) {
    super(code, message, STATUS[code], options);
    this.code = code;
    this.stage = options?.stage;
  }
}

/**
 * The round cannot complete (too few devices for the threshold t, or an inconsistent view).
 * Thrown by clients that refuse to continue; on the server an abort is a state, not a throw.
 */
export class ProtocolAbortError extends ProtocolError {}

/** Throws a `ProtocolError` with `wrongLength` unless `bytes` has exactly `expected` bytes. */
export function expectLength(field: string, bytes: Uint8Array, expected: number, stage?: RoundPhase): void {
  if (bytes.length !== expected) {
    throw new ProtocolError(
      ERROR_CODES.wrongLength,
      `${field}: expected ${expected} bytes, got ${bytes.length}`,
      stage === undefined ? undefined : { stage },
    );
  }
}
