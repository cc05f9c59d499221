/**
 * Feature accumulators: the profile's "dynamic update". Every event is folded into a small
 * record in O(1) amortised work (bounded maps, no rescan of history), and the features at any
 * time `asOf` are read off the record (see `features.ts`). The record is structured-cloneable,
 * so IndexedDB stores it as is, and folding is order-insensitive (sums, min/max, sets, decay
 * with per-key anchors), so events folded by several tabs in any order give the same profile.
 *
 * Money is kept per order (value, cancellation, refunds), and the totals are summed at read
 * time (`orderTotals`): that is what lets a refund be netted against its own order, capped at
 * that order's value, counted once, and cancelled with it.
 */
import type { EventName, EventProperties, StoredEvent } from "../events/schemas";
import { inShopCurrency, orderValue, refundAmount, refundFingerprint } from "./money";

/** Tunable parameters of the fold. */
export interface FeatureConfig {
  /** Half-life of category affinities, in days (default 30). */
  halfLifeDays: number;
  /** Half-life of the activity counter, in days (default 7). */
  activityHalfLifeDays: number;
  /** Affinity weight per event name; events without a weight add no affinity. */
  weights: Partial<Record<EventName, number>>;
  /** Categories kept in the accumulator; the weakest is evicted beyond this (default 64). */
  maxCategories: number;
  /** Viewed product ids remembered for view-to-purchase conversion (default 256). */
  maxViewedProducts: number;
  /** Cart lines remembered for the open-cart signal (default 100). */
  maxCartLines: number;
  /**
   * The storefront's currency (ISO 4217, default `USD`, the currency of the spec's examples).
   * Amounts stored in another currency (no rate was given for it) count in no monetary feature.
   */
  currency: string;
}

/** Defaults of `FeatureConfig`: view 1, add 3, purchase 5, as in the issue. */
export const DEFAULT_FEATURE_CONFIG: FeatureConfig = {
  halfLifeDays: 30,
  activityHalfLifeDays: 7,
  weights: {
    "Product List Viewed": 0.5,
    "Product Viewed": 1,
    "Product Clicked": 1,
    "Product Added": 3,
    "Wishlist Product Added to Cart": 3,
    "Order Completed": 5,
  },
  maxCategories: 64,
  maxViewedProducts: 256,
  maxCartLines: 100,
  currency: "USD",
};

/** One order id seen by the device. */
export interface OrderRecord {
  /** Earliest completion time, or `null` while only a cancellation or refund has been seen. */
  t: number | null;
  /** Value at completion (`money.ts`); `null` when unknown or in an unconverted currency. */
  value: number | null;
  /** The order's `total` when `value` came from `revenue` (scales refunds of the total). */
  gross: number | null;
  cancelled: boolean;
  /** A refund without an amount was seen: the whole order is refunded. */
  fullRefund: boolean;
  /** Σ refunded amounts stated as `total`, and Σ of the others (not yet capped). */
  refundByTotal: number;
  refundOther: number;
  /** Fingerprints of the refunds folded (a refund sent twice counts once). */
  refunds: number[];
}

/** A score decayed exponentially, stored as its value at `at` (its own anchor time). */
export type Decayed = [score: number, at: number];

/** The accumulators. Version `v` guards against reading an incompatible stored record. */
export interface FeatureState {
  v: 2;
  /** Valid events folded (the activity model's round vector is `[1, eventCount]`). */
  eventCount: number;
  /** Events folded per name. */
  counts: Partial<Record<EventName, number>>;
  firstAt: number | null;
  lastAt: number | null;
  /** Every order id seen, with its money. */
  orders: Map<string, OrderRecord>;
  /** Latest completion of a counted (not cancelled) order. */
  lastOrderAt: number | null;
  /** Latest completion of any order, cancelled or not (a placed order empties the cart). */
  lastCompletionAt: number | null;
  /** Category affinity scores, each decayed to its own anchor. */
  affinity: Map<string, Decayed>;
  /** Decayed count of all events. */
  activity: Decayed | null;
  /** Σ price × units and Σ units of products viewed, clicked, added and bought. */
  priceSum: number;
  priceUnits: number;
  /** Viewed product id -> bought since. Insertion order is age order (oldest evicted first). */
  viewed: Map<string, boolean>;
  viewedDistinct: number;
  viewedBought: number;
  /** Cart line (product id, else sku) -> [last added, last removed]. */
  cart: Map<string, [added: number, removed: number]>;
  lastCheckoutAt: number | null;
}

/** Current version of the stored accumulator record. */
export const FEATURE_STATE_VERSION = 2;

/** An empty accumulator record. */
export function emptyFeatureState(): FeatureState {
  return {
    v: FEATURE_STATE_VERSION,
    eventCount: 0,
    counts: {},
    firstAt: null,
    lastAt: null,
    orders: new Map(),
    lastOrderAt: null,
    lastCompletionAt: null,
    affinity: new Map(),
    activity: null,
    priceSum: 0,
    priceUnits: 0,
    viewed: new Map(),
    viewedDistinct: 0,
    viewedBought: 0,
    cart: new Map(),
    lastCheckoutAt: null,
  };
}

const DAY_MS = 86_400_000;

/**
 * `score * 2^(-(to - from) / halfLife)`: exponential decay with the given half-life. With
 * `to < from` it grows the score, which is how an out-of-order event is folded into a score
 * anchored later than itself.
 */
export function decay(score: number, from: number, to: number, halfLifeDays: number): number {
  return score * 2 ** (-(to - from) / (halfLifeDays * DAY_MS));
}

/** Adds weight `w` at time `t` to a decayed score, keeping the later of the two anchors. */
export function addDecayed(
  current: Decayed | undefined | null,
  w: number,
  t: number,
  halfLifeDays: number,
): Decayed {
  if (!current) return [w, t];
  // In place: the record owns its tuples (`cloneFeatureState` copies them), and a fresh tuple
  // per product line was most of a replay's garbage.
  const [score, at] = current;
  if (t === at) current[0] = score + w;
  else if (t > at) {
    current[0] = decay(score, at, t, halfLifeDays) + w;
    current[1] = t;
  } else current[0] = score + decay(w, t, at, halfLifeDays);
  return current;
}

/** Before any time (an open cart line's "removed", say). */
const NEVER = Number.NEGATIVE_INFINITY;
const minOf = (a: number | null, b: number) => (a === null || b < a ? b : a);
const maxOf = (a: number | null, b: number) => (a === null || b > a ? b : a);

/** The key a product is known by: its `product_id`, else its `sku` (the spec allows either). */
export const productKey = (p: { product_id?: string; sku?: string }) => p.product_id ?? p.sku;

function addAffinity(
  state: FeatureState,
  category: string | undefined,
  w: number,
  t: number,
  config: FeatureConfig,
) {
  if (!category || w === 0) return;
  const existing = state.affinity.get(category);
  if (existing) {
    addDecayed(existing, w, t, config.halfLifeDays);
    return;
  }
  state.affinity.set(category, [w, t]);
  if (state.affinity.size > config.maxCategories) {
    // Evict the weakest category at time t: O(maxCategories), only when a new one arrives at capacity.
    let weakest: string | undefined;
    let weakestScore = Number.POSITIVE_INFINITY;
    for (const [name, [score, at]] of state.affinity) {
      const now = decay(score, at, t, config.halfLifeDays);
      if (name !== category && now < weakestScore) {
        weakest = name;
        weakestScore = now;
      }
    }
    if (weakest !== undefined) state.affinity.delete(weakest);
  }
}

/** Adds a price level observation: per unit, so a line of 10 at 2 weighs 10 units at 2. */
function addPrice(state: FeatureState, price: number | undefined, quantity: number | undefined) {
  if (price === undefined) return;
  const units = quantity ?? 1;
  state.priceSum += price * units;
  state.priceUnits += units;
}

function recomputeLastOrder(state: FeatureState) {
  let last: number | null = null;
  for (const order of state.orders.values()) {
    if (order.t !== null && !order.cancelled) last = maxOf(last, order.t);
  }
  state.lastOrderAt = last;
}

function orderRecord(state: FeatureState, orderId: string): OrderRecord {
  let record = state.orders.get(orderId);
  if (!record) {
    record = {
      t: null,
      value: null,
      gross: null,
      cancelled: false,
      fullRefund: false,
      refundByTotal: 0,
      refundOther: 0,
      refunds: [],
    };
    state.orders.set(orderId, record);
  }
  return record;
}

function completeOrder(state: FeatureState, event: StoredEvent, config: FeatureConfig) {
  const { order_id: orderId, products } = event.p;
  if (orderId === undefined) return;
  const record = orderRecord(state, orderId);
  state.lastCompletionAt = maxOf(state.lastCompletionAt, event.t);
  if (record.t !== null) {
    // Distinct ids: a repeated completion (a retry) adds nothing, except that the order's time
    // is its earliest completion, whichever order the tabs fold them in.
    if (event.t < record.t) {
      const wasLast = !record.cancelled && state.lastOrderAt === record.t;
      record.t = event.t;
      if (wasLast) recomputeLastOrder(state);
    }
    return;
  }
  const money = inShopCurrency(event.p, config.currency);
  const value = money ? orderValue(event.p) : null;
  record.t = event.t;
  record.value = value?.value ?? null;
  record.gross = value?.gross ?? null;
  // Interest signals count even for an order cancelled later (or, folded out of order, earlier):
  // that keeps the fold independent of the order in which tabs fold events.
  const w = config.weights["Order Completed"] ?? 0;
  for (const product of products ?? []) {
    addAffinity(state, product.category, w, event.t, config);
    if (money) addPrice(state, product.price, product.quantity);
    const id = productKey(product);
    if (id !== undefined && state.viewed.get(id) === false) {
      state.viewed.set(id, true);
      state.viewedBought += 1;
    }
  }
  if (!record.cancelled) state.lastOrderAt = maxOf(state.lastOrderAt, event.t);
}

function cancelOrder(state: FeatureState, orderId: string | undefined) {
  if (orderId === undefined) return;
  const record = orderRecord(state, orderId);
  if (record.cancelled) return;
  record.cancelled = true;
  // Only a cancelled *latest* order moves recency; that rescan is rare and bounded by orders.
  if (record.t !== null && state.lastOrderAt === record.t) recomputeLastOrder(state);
}

function refund(state: FeatureState, p: EventProperties, config: FeatureConfig) {
  if (p.order_id === undefined || !inShopCurrency(p, config.currency)) return;
  // A refund folded before its order (another tab's) waits on a record without a completion.
  const record = orderRecord(state, p.order_id);
  const fingerprint = refundFingerprint(p);
  if (record.refunds.includes(fingerprint)) return;
  record.refunds.push(fingerprint);
  const amount = refundAmount(p);
  if (amount.full) record.fullRefund = true;
  record.refundByTotal += amount.byTotal;
  record.refundOther += amount.other;
}

/** What a counted order's refunds take back: capped at its value, never below zero. */
export function refundedOf(record: OrderRecord): number {
  const value = record.value ?? 0;
  if (record.fullRefund) return value;
  const byTotal = record.gross ? (record.refundByTotal * value) / record.gross : record.refundByTotal;
  return Math.min(value, record.refundOther + byTotal);
}

/** Order totals summed over the order records (read time, in the records' insertion order). */
export interface OrderTotals {
  /** Distinct completed, not cancelled, order ids. */
  frequency: number;
  /** Of those, the orders with a known value in the storefront's currency. */
  valued: number;
  /** Their value, their refunds (each capped at its order) and the net of both. */
  revenue: number;
  refunds: number;
  monetary: number;
}

/** Sums the counted orders. O(orders); each order's net is `value − refunded`, never below 0. */
export function orderTotals(state: FeatureState): OrderTotals {
  const totals: OrderTotals = { frequency: 0, valued: 0, revenue: 0, refunds: 0, monetary: 0 };
  for (const record of state.orders.values()) {
    if (record.t === null || record.cancelled) continue;
    totals.frequency += 1;
    if (record.value === null) continue;
    const refunded = refundedOf(record);
    totals.valued += 1;
    totals.revenue += record.value;
    totals.refunds += refunded;
    totals.monetary += record.value - refunded;
  }
  return totals;
}

function viewProduct(state: FeatureState, id: string | undefined, config: FeatureConfig) {
  if (id === undefined || state.viewed.has(id)) return;
  state.viewed.set(id, false);
  state.viewedDistinct += 1;
  if (state.viewed.size > config.maxViewedProducts) {
    const oldest = state.viewed.keys().next();
    if (!oldest.done) state.viewed.delete(oldest.value);
  }
}

/** Records a cart line added (`slot` 0) or removed (`slot` 1) at `t`. */
function touchCart(state: FeatureState, p: EventProperties, slot: 0 | 1, t: number, config: FeatureConfig) {
  const key = productKey(p) ?? "";
  const line = state.cart.get(key) ?? [NEVER, NEVER];
  line[slot] = Math.max(line[slot], t);
  state.cart.delete(key); // re-insert: insertion order is recency order, the oldest is evicted
  state.cart.set(key, line);
  if (state.cart.size > config.maxCartLines) {
    const oldest = state.cart.keys().next();
    if (!oldest.done) state.cart.delete(oldest.value);
  }
}

/**
 * Since when the cart has been open, or `null`: the latest add of a line neither removed nor
 * bought since (a completed order empties the cart), or a checkout started after the last
 * order and after every removal.
 */
export function cartOpenSince(state: FeatureState): number | null {
  const after = state.lastCompletionAt ?? NEVER;
  let since: number | null = null;
  let lastRemoved = NEVER;
  for (const [added, removed] of state.cart.values()) {
    lastRemoved = Math.max(lastRemoved, removed);
    if (added > removed && added > after) since = maxOf(since, added);
  }
  const checkout = state.lastCheckoutAt;
  if (checkout !== null && checkout > after && checkout >= lastRemoved) since = maxOf(since, checkout);
  return since;
}

/**
 * Folds one event into `state` (mutating it) in O(1) amortised work. Events are assumed to
 * be new: the store guarantees each event id is folded at most once.
 */
export function applyEvent(state: FeatureState, event: StoredEvent, config: FeatureConfig): void {
  const { t, p, name } = event;
  state.eventCount += 1;
  state.counts[name] = (state.counts[name] ?? 0) + 1;
  state.firstAt = minOf(state.firstAt, t);
  state.lastAt = maxOf(state.lastAt, t);
  state.activity = addDecayed(state.activity, 1, t, config.activityHalfLifeDays);
  const w = config.weights[name] ?? 0;
  const money = inShopCurrency(p, config.currency);
  switch (name) {
    case "Product Viewed":
      viewProduct(state, productKey(p), config);
      addAffinity(state, p.category, w, t, config);
      if (money) addPrice(state, p.price, p.quantity);
      break;
    case "Product Clicked":
      addAffinity(state, p.category, w, t, config);
      if (money) addPrice(state, p.price, p.quantity);
      break;
    case "Product Added":
    case "Wishlist Product Added to Cart":
      addAffinity(state, p.category, w, t, config);
      if (money) addPrice(state, p.price, p.quantity);
      touchCart(state, p, 0, t, config);
      break;
    case "Product Removed":
      touchCart(state, p, 1, t, config);
      break;
    case "Product List Viewed":
      addAffinity(state, p.category, w, t, config);
      break;
    case "Checkout Started":
      state.lastCheckoutAt = maxOf(state.lastCheckoutAt, t);
      break;
    case "Order Completed":
      completeOrder(state, event, config);
      break;
    case "Order Cancelled":
      cancelOrder(state, p.order_id);
      break;
    case "Order Refunded":
      refund(state, p, config);
      break;
    default:
      break;
  }
}

/** Folds `events` into a copy of `base` (or an empty record). */
export function foldEvents(
  base: FeatureState | null | undefined,
  events: Iterable<StoredEvent>,
  config: FeatureConfig,
): FeatureState {
  const state = base ? cloneFeatureState(base) : emptyFeatureState();
  for (const event of events) applyEvent(state, event, config);
  return state;
}

/**
 * A deep copy (maps and order records included), written out field by field: the record's
 * shape is fixed, and `structuredClone` was the largest single cost of a replay (its
 * serialise/deserialise round trip, per fold).
 */
export function cloneFeatureState(state: FeatureState): FeatureState {
  const orders = new Map<string, OrderRecord>();
  for (const [id, order] of state.orders) orders.set(id, { ...order, refunds: [...order.refunds] });
  const affinity = new Map<string, Decayed>();
  for (const [category, [score, at]] of state.affinity) affinity.set(category, [score, at]);
  const cart = new Map<string, [number, number]>();
  for (const [line, [added, removed]] of state.cart) cart.set(line, [added, removed]);
  return {
    ...state,
    counts: { ...state.counts },
    orders,
    affinity,
    activity: state.activity ? [state.activity[0], state.activity[1]] : null,
    viewed: new Map(state.viewed),
    cart,
  };
}

/** True when a value read back from storage is an accumulator record of this version. */
export function isFeatureState(value: unknown): value is FeatureState {
  return (
    typeof value === "object" &&
    value !== null &&
    "v" in value &&
    value.v === FEATURE_STATE_VERSION &&
    "orders" in value &&
    value.orders instanceof Map &&
    "affinity" in value &&
    value.affinity instanceof Map &&
    "cart" in value &&
    value.cart instanceof Map
  );
}
