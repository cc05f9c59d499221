/**
 * The SDK's error classes. Every error the profiler reports carries a stable `code` that a
 * storefront can switch on, and `cause` when it wraps another error. Nothing here is ever
 * thrown synchronously into the page; `track()` reports bad input as `warning` events and
 * rejects only with `strict: true`.
 */

/** Base class of every error the profiling core reports. */
export class FedprofileError extends Error {
  /** Stable, machine-readable error code. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FedprofileError";
    this.code = code;
  }
}

/**
 * With `strict: true`, `track()` rejects with this for bad input: a name outside Segment's V2
 * e-commerce spec, or a field or event that could not be read. `field` names the offending
 * property path (`products[0].price`), or `event` for the name itself; the message says what
 * was expected and what came.
 */
export class InvalidEventError extends FedprofileError {
  /** The event name as given. */
  readonly event: string;
  /** Dotted path of the first invalid field. */
  readonly field: string;

  constructor(event: string, field: string, message: string, options?: { cause?: unknown }) {
    super("invalid_event", `${event}: ${field}: ${message}`, options);
    this.name = "InvalidEventError";
    this.event = event;
    this.field = field;
  }
}

/**
 * Device storage failed (quota, blocked, unavailable, wiped). The profiler never rethrows it
 * to the page; it compacts or falls back to memory and reports it in a `storage` event.
 */
export class StorageError extends FedprofileError {
  /** Only a `StorageErrorCode` reaches the constructor (a type-only narrowing: no field is emitted). */
  declare readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "StorageError";
  }
}

/** Why device storage degraded. */
export type StorageErrorCode =
  | "storage_unavailable"
  | "storage_blocked"
  | "storage_quota"
  | "storage_wiped"
  /** The browser deleted the stored profile between visits; a fresh one starts. */
  | "storage_evicted"
  | "storage_failed";

/** Turns anything thrown into an `Error` (the SDK never passes non-Errors to listeners). */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** True for the DOMException a browser raises when a write would exceed the origin's quota. */
export function isQuotaError(error: unknown): boolean {
  if (typeof error !== "object" || error === null || !("name" in error)) return false;
  return error.name === "QuotaExceededError";
}
