/**
 * Feature accumulators: the profile's "dynamic update". Every event is folded into a small
 * record in O(1) work (bounded maps, no rescan of history), and the features at any time
 * `asOf` are read off the record (see `features.ts`). The record is structured-cloneable, so
 * IndexedDB stores it as is, and folding is order-insensitive (sums, min/max, decay with
 * per-key anchors), so events folded by several tabs in any order give the same profile.
 */
import type { EventName, Product, StoredEvent } from "../events/schemas";

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
    "Order Completed": 5,
  },
  maxCategories: 64,
  maxViewedProducts: 256,
};

/** One order id seen by the device. */
export interface OrderRecord {
  /** Completion time, or `null` if only a cancellation has been seen so far. */
  t: number | null;
  /** Revenue recorded at completion. */
  revenue: number;
  cancelled: boolean;
}

/** A score decayed exponentially, stored as its value at `at` (its own anchor time). */
export type Decayed = [score: number, at: number];

/** The accumulators. Version `v` guards against reading an incompatible stored record. */
export interface FeatureState {
  v: 1;
  /** Valid events folded (the activity model's round vector is `[1, eventCount]`). */
  eventCount: number;
  /** Events folded per name. */
  counts: Partial<Record<EventName, number>>;
  firstAt: number | null;
  lastAt: number | null;
  /** Every order id seen; needed to count distinct ids and to undo cancelled ones. */
  orders: Map<string, OrderRecord>;
  /** Distinct completed, not cancelled, order ids. */
  frequency: number;
  /** Revenue of those orders. */
  revenue: number;
  /** Refunded amount. */
  refunds: number;
  lastOrderAt: number | null;
  /** Category affinity scores, each decayed to its own anchor. */
  affinity: Map<string, Decayed>;
  /** Decayed count of all events. */
  activity: Decayed | null;
  priceSum: number;
  priceCount: number;
  /** Viewed product id -> bought since. Insertion order is age order (oldest evicted first). */
  viewed: Map<string, boolean>;
  viewedDistinct: number;
  viewedBought: number;
  /** Last Product Added or Checkout Started. */
  lastCartAt: number | null;
}

/** Current version of the stored accumulator record. */
export const FEATURE_STATE_VERSION = 1;

/** An empty accumulator record. */
export function emptyFeatureState(): FeatureState {
  return {
    v: FEATURE_STATE_VERSION,
    eventCount: 0,
    counts: {},
    firstAt: null,
    lastAt: null,
    orders: new Map(),
    frequency: 0,
    revenue: 0,
    refunds: 0,
    lastOrderAt: null,
    affinity: new Map(),
    activity: null,
    priceSum: 0,
    priceCount: 0,
    viewed: new Map(),
    viewedDistinct: 0,
    viewedBought: 0,
    lastCartAt: null,
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
export function addDecayed(current: Decayed | undefined | null, w: number, t: number, halfLifeDays: number) {
  if (!current) return [w, t] satisfies Decayed;
  const [score, at] = current;
  if (t >= at) return [decay(score, at, t, halfLifeDays) + w, t] satisfies Decayed;
  return [score + decay(w, t, at, halfLifeDays), at] satisfies Decayed;
}

const minOf = (a: number | null, b: number) => (a === null || b < a ? b : a);
const maxOf = (a: number | null, b: number) => (a === null || b > a ? b : a);

/** Σ price × quantity over a product list; a missing quantity counts 1, a missing price 0. */
export function lineTotal(products: readonly Product[] | undefined): number {
  let sum = 0;
  for (const product of products ?? []) sum += (product.price ?? 0) * (product.quantity ?? 1);
  return sum;
}

function addAffinity(
  state: FeatureState,
  category: string | undefined,
  w: number,
  t: number,
  config: FeatureConfig,
) {
  if (!category || w === 0) return;
  const existing = state.affinity.get(category);
  state.affinity.set(category, addDecayed(existing, w, t, config.halfLifeDays));
  if (!existing && state.affinity.size > config.maxCategories) {
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

function addPrice(state: FeatureState, price: number | undefined) {
  if (price === undefined) return;
  state.priceSum += price;
  state.priceCount += 1;
}

function recomputeLastOrder(state: FeatureState) {
  let last: number | null = null;
  for (const order of state.orders.values()) {
    if (order.t !== null && !order.cancelled) last = maxOf(last, order.t);
  }
  state.lastOrderAt = last;
}

function completeOrder(state: FeatureState, event: StoredEvent, config: FeatureConfig) {
  const { order_id: orderId, products, revenue } = event.p;
  if (orderId === undefined) return;
  const record = state.orders.get(orderId);
  if (record && record.t !== null) {
    // Distinct ids: a repeated completion (a retry) adds nothing, except that the order's time
    // is its earliest completion, whichever order the tabs fold them in.
    if (event.t < record.t) {
      const wasLast = !record.cancelled && state.lastOrderAt === record.t;
      record.t = event.t;
      if (wasLast) recomputeLastOrder(state);
    }
    return;
  }
  const value = revenue ?? lineTotal(products);
  // Interest signals count even for an order cancelled later (or, folded out of order, earlier):
  // that keeps the fold independent of the order in which tabs fold events.
  const w = config.weights["Order Completed"] ?? 0;
  for (const product of products ?? []) {
    addAffinity(state, product.category, w, event.t, config);
    addPrice(state, product.price);
    const id = product.product_id;
    if (id !== undefined && state.viewed.get(id) === false) {
      state.viewed.set(id, true);
      state.viewedBought += 1;
    }
  }
  if (record) {
    // Cancelled before its completion was folded: remember it, never count it.
    record.t = event.t;
    record.revenue = value;
    return;
  }
  state.orders.set(orderId, { t: event.t, revenue: value, cancelled: false });
  state.frequency += 1;
  state.revenue += value;
  state.lastOrderAt = maxOf(state.lastOrderAt, event.t);
}

function cancelOrder(state: FeatureState, orderId: string | undefined) {
  if (orderId === undefined) return;
  const record = state.orders.get(orderId);
  if (!record) {
    state.orders.set(orderId, { t: null, revenue: 0, cancelled: true });
    return;
  }
  if (record.cancelled) return;
  record.cancelled = true;
  if (record.t === null) return;
  state.frequency -= 1;
  state.revenue -= record.revenue;
  // Only a cancelled *latest* order moves recency; that rescan is rare and bounded by orders.
  if (state.lastOrderAt === record.t) recomputeLastOrder(state);
}

function refund(state: FeatureState, event: StoredEvent) {
  const { total, products, order_id: orderId } = event.p;
  if (total !== undefined) state.refunds += total;
  else if (products && products.length > 0) state.refunds += lineTotal(products);
  else if (orderId !== undefined) {
    // Segment's full refund carries only the order id: refund what that order brought in.
    const record = state.orders.get(orderId);
    if (record && record.t !== null && !record.cancelled) state.refunds += record.revenue;
  }
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
  switch (name) {
    case "Product Viewed":
      viewProduct(state, p.product_id, config);
      addAffinity(state, p.category, w, t, config);
      addPrice(state, p.price);
      break;
    case "Product Clicked":
    case "Product Added":
      addAffinity(state, p.category, w, t, config);
      addPrice(state, p.price);
      if (name === "Product Added") state.lastCartAt = maxOf(state.lastCartAt, t);
      break;
    case "Product List Viewed":
      addAffinity(state, p.category, w, t, config);
      break;
    case "Checkout Started":
      state.lastCartAt = maxOf(state.lastCartAt, t);
      break;
    case "Order Completed":
      completeOrder(state, event, config);
      break;
    case "Order Cancelled":
      cancelOrder(state, p.order_id);
      break;
    case "Order Refunded":
      refund(state, event);
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

/** A deep copy (maps and order records included). */
export function cloneFeatureState(state: FeatureState): FeatureState {
  return structuredClone(state);
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
    value.affinity instanceof Map
  );
}
