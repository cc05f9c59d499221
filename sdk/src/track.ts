/**
 * One `track()` call, from the page's arguments to the event the device stores: argument
 * shapes (analytics.js style), lenient reading (`events/schemas.ts`), currency, the order
 * checks that need the device's state, and the result the page gets. It never throws: every
 * outcome is a `TrackResult`, and each problem is a typed `TrackWarning` naming the field, what
 * was expected and what came.
 */
import { FedprofileError, InvalidEventError } from "./errors";
import type { UnusedEventName } from "./events/catalogue";
import type { DecimalSeparator, FieldProblem } from "./events/coerce";
import { type EventProperties, parseEvent, type StoredEvent } from "./events/schemas";
import { hasAmounts, type RateTable, refundFingerprint, toShopCurrency } from "./features/money";
import type { FeatureState } from "./features/state";

/** Why an event was not kept. */
export type DropReason =
  /** A spec event the profile does not read (counted, not stored). */
  | "unused_event"
  /** A name outside the V2 spec and its V1 aliases. */
  | "unknown_event"
  /** Nothing of it can count: properties not an object, a refund or cancellation without order id. */
  | "invalid_event"
  /** A refund of an order this device never saw completed. */
  | "unknown_order"
  /** A refund identical to one already counted for that order. */
  | "duplicate_refund"
  /** The profiler has been closed. */
  | "closed";

/** What a warning is about. */
export type WarningCode =
  | "unknown_event"
  | "invalid_event"
  /** A field was dropped (the event was kept). */
  | "invalid_field"
  | "invalid_timestamp"
  /** An Order Completed without `order_id`: counted, but a resend would count again. */
  | "missing_order_id"
  | "products_truncated"
  | "unknown_order"
  | "duplicate_refund"
  /** Amounts in a currency without a rate: kept out of monetary features. */
  | "currency_unconverted"
  /** A `createProfiler` option was ignored. */
  | "invalid_option";

/** A typed warning, also emitted as `{ type: "warning", warning }`. */
export interface TrackWarning {
  code: WarningCode;
  /** The event name as the page gave it. */
  event: string;
  /** Property path, for field problems (`products[2].price`). */
  field?: string;
  expected?: string;
  received?: string;
  message: string;
}

/** What `track()` resolves to. */
export type TrackResult =
  | { kept: true; warnings: TrackWarning[] }
  | { kept: false; reason: DropReason; warnings: TrackWarning[] };

/** analytics.js-style completion callback: called once with the result, after the event is settled. */
export type TrackCallback = (result: TrackResult) => void;

/** Codes that mean the page sent bad input (what `strict: true` rejects). */
export const BAD_INPUT: ReadonlySet<WarningCode> = new Set([
  "unknown_event",
  "invalid_event",
  "invalid_field",
  "invalid_timestamp",
]);

/** When an event happened, if not now. */
export interface TrackOptions {
  timestamp?: number | string | Date;
}

/**
 * Sorts `track(name, properties?, options?, callback?)` arguments as analytics.js does: a
 * function in any position after the name is the callback.
 */
export function trackArguments(
  properties: unknown,
  options: unknown,
  callback: unknown,
): { properties: unknown; timestamp: unknown; callback: TrackCallback | undefined } {
  const args = [properties, options, callback];
  const at = args.findIndex((arg) => typeof arg === "function");
  const fn = args[at];
  const cb: TrackCallback | undefined =
    typeof fn === "function" ? (result) => Reflect.apply(fn, undefined, [result]) : undefined;
  const props = at === 0 ? undefined : properties;
  const opts = at === 0 || at === 1 ? undefined : options;
  const timestamp =
    typeof opts === "object" && opts !== null && "timestamp" in opts ? opts.timestamp : undefined;
  return { properties: props, timestamp, callback: cb };
}

/** What the intake needs from the profiler. */
export interface IntakeContext {
  currency: string;
  rates: RateTable | undefined;
  decimal: DecimalSeparator;
  now: () => number;
  nextId: () => string;
  view: () => FeatureState;
}

/** Session counts of events not kept. */
export interface DroppedCounts {
  total: number;
  byReason: Partial<Record<DropReason, number>>;
  /** Unused spec events, per name. */
  unusedEvents: Partial<Record<UnusedEventName, number>>;
}

const label = (name: unknown) => (typeof name === "string" ? name.slice(0, 256) : String(name));

function eventTime(value: unknown, now: () => number): number | undefined {
  if (value === undefined || value === null) return now();
  const t = value instanceof Date ? value.getTime() : typeof value === "string" ? Date.parse(value) : value;
  return typeof t === "number" && Number.isFinite(t) ? t : undefined;
}

// The call `intake` is reading (it is synchronous and never re-entered): module state rather
// than two closures per call, which were a tenth of a replay's intake.
let event = "";
let warnings: TrackWarning[] = [];

/** Adds a warning; its message is `<event>: <field>: <text>`, with what was expected and came. */
function warn(code: WarningCode, field: string | undefined, text: string, problem?: FieldProblem) {
  const detail = problem ? `expected ${problem.expected}, got ${problem.received}; ` : "";
  warnings.push({
    code,
    event,
    ...(field === undefined ? {} : { field }),
    ...(problem ? { expected: problem.expected, received: problem.received } : {}),
    message: `${event}: ${field === undefined ? "" : `${field}: `}${detail}${text}`,
  });
}

function drop(reason: DropReason) {
  return { stored: null, result: { kept: false as const, reason, warnings } };
}

/**
 * Turns one call into the event to store (or `null`) and its result. Pure apart from
 * `ctx.nextId()`; the caller adds the event, emits the warnings and counts the drop.
 */
export function intake(
  name: unknown,
  properties: unknown,
  timestamp: unknown,
  ctx: IntakeContext,
): { stored: StoredEvent | null; result: TrackResult; unused?: UnusedEventName } {
  event = label(name);
  warnings = [];
  const outcome = parseEvent(name, properties, { decimal: ctx.decimal });
  if (outcome.status === "unknown") {
    warn(
      "unknown_event",
      undefined,
      "not an event of Segment's V2 e-commerce spec (nor a V1 alias); dropped",
    );
    return drop("unknown_event");
  }
  if (outcome.status === "unused") return { ...drop("unused_event"), unused: outcome.name };
  if (outcome.status === "invalid") {
    warn("invalid_event", outcome.problem.field, "the event cannot count and was dropped", outcome.problem);
    return drop("invalid_event");
  }
  for (const problem of outcome.problems)
    warn("invalid_field", problem.field, "the field was dropped", problem);
  if (outcome.truncated > 0) {
    warn(
      "products_truncated",
      "products",
      `${outcome.truncated} lines beyond the first 1,000 were not kept (their amounts were)`,
    );
  }
  let t = eventTime(timestamp, ctx.now);
  if (t === undefined) {
    const received =
      typeof timestamp === "string" ? JSON.stringify(timestamp.slice(0, 40)) : typeof timestamp;
    warn("invalid_timestamp", "timestamp", "now was used", {
      field: "timestamp",
      expected: "a finite epoch-ms number, an ISO date or a Date",
      received,
    });
    t = ctx.now();
  }
  const { name: spec } = outcome.event;
  const { properties: p, outcome: currency } = toShopCurrency(
    outcome.event.properties,
    ctx.currency,
    ctx.rates,
  );
  if (currency === "unconverted" && hasAmounts(p)) {
    warn(
      "currency_unconverted",
      "currency",
      `amounts in ${p.currency} are kept out of monetary features: the storefront's currency is ` +
        `${ctx.currency} and no rate for ${p.currency} was given (createProfiler({ rates }))`,
    );
  }
  const id = ctx.nextId();
  let stored: EventProperties = p;
  if (spec === "Order Completed" && p.order_id === undefined) {
    // Never lose an order: count it under an id of its own (a resend cannot be recognised).
    stored = { ...p, order_id: `~${id}` };
    warn("missing_order_id", "order_id", "missing; the order counts, but a resend of it would count again");
  }
  if (spec === "Order Refunded" && p.order_id !== undefined) {
    const order = ctx.view().orders.get(p.order_id);
    if (!order || order.t === null) {
      warn(
        "unknown_order",
        "order_id",
        `order ${p.order_id} was never completed on this device; the refund is ignored`,
      );
      return drop("unknown_order");
    }
    if (order.refunds.includes(refundFingerprint(p))) {
      warn("duplicate_refund", "order_id", `this refund of order ${p.order_id} was already counted; ignored`);
      return drop("duplicate_refund");
    }
  }
  return { stored: { id, name: spec, t, p: stored }, result: { kept: true, warnings } };
}

/** Counts a result that was not kept (`getProfile().dropped`). */
export function countDrop(dropped: DroppedCounts, result: TrackResult, unused?: UnusedEventName): void {
  if (result.kept) return;
  dropped.total += 1;
  dropped.byReason[result.reason] = (dropped.byReason[result.reason] ?? 0) + 1;
  if (unused) dropped.unusedEvents[unused] = (dropped.unusedEvents[unused] ?? 0) + 1;
}

/** What `strict: true` rejects a result with: its first bad-input warning, or a closed profiler. */
export function strictError(result: TrackResult): Error | undefined {
  const bad = result.warnings.find((w) => BAD_INPUT.has(w.code));
  if (bad) {
    // The warning's message starts with "<event>: <field>: ", which the error adds itself.
    const prefix = `${bad.event}: ${bad.field === undefined ? "" : `${bad.field}: `}`;
    return new InvalidEventError(bad.event, bad.field ?? "event", bad.message.slice(prefix.length));
  }
  if (!result.kept && result.reason === "closed")
    return new FedprofileError("closed", "track: this profiler has been closed");
  return undefined;
}
