/**
 * Events of Segment's V2 e-commerce spec (segment.com/docs/connections/spec/ecommerce/v2/),
 * read leniently at the page boundary and stored minimised.
 *
 * Data minimisation: the device stores only the properties a feature reads (below, per event).
 * Everything else the page sends (names, brands, URLs, coupons, review bodies, search queries)
 * is never copied, so it can be of any shape or length without costing the event. Free text is
 * stored only if a feature needs it and says why here; none does today.
 *
 * One reader for both boundaries: `parseEvent` reads page input with the lenient coercion of
 * `coerce.ts`, and `restoreEvent` reads back what the device stored with it, rejecting anything
 * it would have to drop. It is hand-written rather than zod: each dropped field must be
 * reported while the event is kept, which a schema's all-or-nothing parse does not do, and the
 * tracking core must stay within its 20 KB up-front budget (a zod/mini schema of the stored
 * shape cost ~1.1 KB gzip there).
 */
import { type EventName, isUsedEvent, resolveEventName, type UnusedEventName } from "./catalogue";
import {
  type Coercer,
  type DecimalSeparator,
  describe,
  type FieldProblem,
  isRecord,
  pick,
  readAmount,
  readCurrency,
  readId,
  readLabel,
} from "./coerce";

export { EVENT_NAMES, type EventName, SPEC_EVENT_NAMES, type SpecEventName } from "./catalogue";

/** Product lines kept per event. Longer lists keep their money (`lines_total`) but not their lines. */
export const MAX_LINES = 1000;

/** A stored product line: the fields view-to-purchase, affinities and price level read. */
export interface Product {
  product_id?: string;
  sku?: string;
  category?: string;
  price?: number;
  quantity?: number;
}

/** Stored properties: the union of what any event keeps, all optional. */
export interface EventProperties extends Product {
  order_id?: string;
  revenue?: number;
  total?: number;
  value?: number;
  /** Σ price × quantity of every line, set only when the list was cut to `MAX_LINES`. */
  lines_total?: number;
  /** Kept only when the amounts are in a currency other than the storefront's, unconverted. */
  currency?: string;
  products?: Product[];
}

/** A validated event: its V2 name and its minimised properties. */
export interface TrackedEvent {
  name: EventName;
  properties: EventProperties;
}

/** An event as the device stores it. */
export interface StoredEvent {
  /** Unique per device: `<tab id>.<sequence>`; makes folding idempotent across tabs. */
  id: string;
  name: EventName;
  /** Event time, epoch milliseconds. */
  t: number;
  /** Validated properties. */
  p: EventProperties;
}

/** What `parseEvent` made of a call. */
export type ParseOutcome =
  | { status: "kept"; event: TrackedEvent; problems: FieldProblem[]; truncated: number }
  | { status: "unused"; name: UnusedEventName }
  | { status: "unknown" }
  | { status: "invalid"; name: EventName; problem: FieldProblem };

const PRODUCT_EVENTS: ReadonlySet<EventName> = new Set([
  "Product Viewed",
  "Product Clicked",
  "Product Added",
  "Product Removed",
  "Wishlist Product Added to Cart",
]);

// Segment's facade reads properties case- and style-insensitively (obj-case); V1 used `id`
// and `orderId`. These are the spellings accepted, first match wins.
const PRODUCT_ID = ["product_id", "productId", "id"] as const;
const ORDER_ID = ["order_id", "orderId"] as const;

/** A coercer that knows which product line it reads (`line` ≥ 0), so field paths are built only for a problem. */
interface LineCoercer extends Coercer {
  line: number;
}

function readLine(c: Coercer, bag: Record<string, unknown>): Product {
  const line: Product = {};
  const [idKey, id] = pick(bag, PRODUCT_ID);
  const productId = readId(c, id, idKey);
  if (productId !== undefined) line.product_id = productId;
  const sku = readId(c, bag.sku, "sku");
  if (sku !== undefined) line.sku = sku;
  const category = readLabel(c, bag.category, "category");
  if (category !== undefined) line.category = category;
  const price = readAmount(c, bag.price, "price");
  if (price !== undefined) line.price = price;
  const quantity = readAmount(c, bag.quantity, "quantity");
  if (quantity !== undefined) line.quantity = quantity;
  return line;
}

function readMoney(c: Coercer, bag: Record<string, unknown>, into: EventProperties) {
  for (const key of ["revenue", "total", "value"] as const) {
    const v = readAmount(c, bag[key], key);
    if (v !== undefined) into[key] = v;
  }
  const currency = readCurrency(c, bag.currency, "currency");
  if (currency !== undefined) into.currency = currency;
}

/** Reads `products`; returns the number of lines cut beyond `MAX_LINES`. */
function readProducts(c: LineCoercer, value: unknown, into: EventProperties): number {
  if (value === undefined || value === null) return 0;
  // A single product object is a list of one; an object keyed 0, 1, ... (PHP's json_encode of
  // a sparse array, as WooCommerce templates produce) is the list of its values.
  const record = isRecord(value) ? value : undefined;
  const indexed = record && Object.keys(record).every((key) => /^\d+$/.test(key));
  const list = Array.isArray(value)
    ? value
    : record
      ? indexed
        ? Object.values(record)
        : [record]
      : undefined;
  if (!list) {
    c.problem("products", "an array of product objects", value);
    return 0;
  }
  const lines: Product[] = [];
  for (const [i, item] of list.entries()) {
    if (isRecord(item)) {
      c.line = i;
      lines.push(readLine(c, item));
      c.line = -1;
    } else if (item !== null && item !== undefined) c.problem(`products[${i}]`, "a product object", item);
  }
  if (lines.length > MAX_LINES) {
    let sum = 0;
    let priced = false;
    for (const line of lines) {
      if (line.price === undefined) continue;
      sum += line.price * (line.quantity ?? 1);
      priced = true;
    }
    if (priced) into.lines_total = sum;
    into.products = lines.slice(0, MAX_LINES);
    return lines.length - MAX_LINES;
  }
  if (lines.length > 0) into.products = lines;
  return 0;
}

/** Options of `parseEvent`. */
export interface ParseOptions {
  /** Decimal separator of numeric strings (default `.`; see `coerce.ts`). */
  decimal?: DecimalSeparator;
  /** Reading back what the device stored: `lines_total`, which a page cannot set, is read too. */
  stored?: boolean;
}

/**
 * Reads one `track()` call. Never throws. Returns the event with only the fields its features
 * read (`kept`, with the fields it had to drop), or says why nothing is kept: a spec event the
 * profile does not read (`unused`), a name outside the spec (`unknown`), or an event that
 * cannot count at all (`invalid`: properties that are not an object, a refund or cancellation
 * without an order id).
 */
export function parseEvent(name: unknown, properties: unknown, options: ParseOptions = {}): ParseOutcome {
  const resolved = resolveEventName(name);
  if (resolved === null) return { status: "unknown" };
  if (!isUsedEvent(resolved)) return { status: "unused", name: resolved };
  const bag =
    properties === undefined || properties === null ? {} : isRecord(properties) ? properties : undefined;
  if (!bag) {
    return {
      status: "invalid",
      name: resolved,
      problem: { field: "properties", expected: "an object", received: describe(properties) },
    };
  }
  const problems: FieldProblem[] = [];
  const c: LineCoercer = {
    decimal: options.decimal ?? ".",
    line: -1,
    problem: (field, expected, value) =>
      problems.push({
        field: c.line < 0 ? field : `products[${c.line}].${field}`,
        expected,
        received: describe(value),
      }),
  };
  const p: EventProperties = {};
  let truncated = 0;
  if (PRODUCT_EVENTS.has(resolved)) {
    Object.assign(p, readLine(c, bag));
    const currency = readCurrency(c, bag.currency, "currency");
    if (currency !== undefined) p.currency = currency;
  } else if (resolved === "Product List Viewed") {
    const category = readLabel(c, bag.category, "category");
    if (category !== undefined) p.category = category;
  } else if (
    resolved === "Order Completed" ||
    resolved === "Order Refunded" ||
    resolved === "Order Cancelled"
  ) {
    const [key, raw] = pick(bag, ORDER_ID);
    const orderId = readId(c, raw, key);
    if (orderId !== undefined) p.order_id = orderId;
    else if (resolved !== "Order Completed") {
      const problem = problems.at(-1) ?? { field: "order_id", expected: "an order id", received: "nothing" };
      return { status: "invalid", name: resolved, problem };
    }
    if (resolved !== "Order Cancelled") {
      readMoney(c, bag, p);
      truncated = readProducts(c, bag.products, p);
      const lines = options.stored ? readAmount(c, bag.lines_total, "lines_total") : undefined;
      if (lines !== undefined) p.lines_total = lines;
    }
  }
  return { status: "kept", event: { name: resolved, properties: p }, problems, truncated };
}

/**
 * Rebuilds a stored event from untrusted data (e.g. JSON read back from localStorage) with the
 * same reader as `track()`: anything that reader would have to drop, or a name that is not
 * stored as such, makes the whole event invalid. Returns `null` for anything invalid.
 */
export function restoreEvent(value: unknown): StoredEvent | null {
  if (!isRecord(value)) return null;
  const { id, name, t, p } = value;
  if (typeof id !== "string" || typeof t !== "number" || !Number.isFinite(t) || !isRecord(p)) return null;
  const outcome = parseEvent(name, p, { stored: true });
  if (outcome.status !== "kept" || outcome.problems.length > 0 || outcome.event.name !== name) return null;
  return { id, name: outcome.event.name, t, p: outcome.event.properties };
}
