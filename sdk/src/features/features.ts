/**
 * Reads features, tags and a readable summary off the accumulators at a time `asOf`. Pure;
 * O(categories + orders): `getProfile()` can call it on every render.
 *
 * Definitions (all times in days of 86,400,000 ms, as floats):
 * - `recencyDays`: `asOf` minus the last counted Order Completed; `null` without orders.
 * - `frequency`: distinct completed `order_id`s; an Order Cancelled of the same id removes it.
 * - `revenue`: Σ value of counted orders (`money.ts`: `revenue`, else `total`, else
 *   Σ price × quantity, else `value`), in the storefront's currency.
 * - `refunds`: Σ over counted orders of what their refunds take back, each capped at its own
 *   order's value; a refund sent twice counts once, a refund of a cancelled order adds nothing.
 * - `monetary`: Σ over counted orders of value − refunded, so never below zero.
 * - `avgOrderValue`: revenue / counted orders with a known value (gross of refunds).
 * - `tenureDays`: `asOf` minus the first event of any kind.
 * - `affinities`: each category's exponentially decayed weighted score (half-life
 *   `halfLifeDays`), normalised to shares of the total, top `topK` kept.
 * - `priceBand`: the mean price *per unit* of products viewed, clicked, added and bought
 *   (Σ price × quantity / Σ quantity), banded by `priceBands`.
 * - `activity`: the decayed count of all events (half-life `activityHalfLifeDays`): about the
 *   number of events in the last ~1.44 half-lives.
 * - `viewToPurchase`: share of distinct viewed products (by `product_id`, else `sku`) bought afterwards.
 * - `openCartDays`: days since the cart was left open (`cartOpenSince`): a line added and
 *   neither removed nor bought since, or a checkout started and not completed.
 */
import type { EventName } from "../events/schemas";
import { cartOpenSince, decay, type FeatureConfig, type FeatureState, orderTotals } from "./state";

const DAY_MS = 86_400_000;

/** Price band names, cheapest first. */
export type PriceBand = "budget" | "mid" | "premium";

/** Parameters of the read-out (the fold's parameters plus presentation choices). */
export interface ProfileConfig extends FeatureConfig {
  /** Categories reported in `affinities` (default 5). */
  topK: number;
  /** Upper bounds of the `budget` and `mid` bands, in the shop's currency (default 10, 50). */
  priceBands: readonly [number, number];
}

/** A category and its share of the decayed affinity mass. */
export interface Affinity {
  category: string;
  share: number;
}

/** The profile's numeric features at `asOf`. */
export interface Features {
  asOf: number;
  eventCount: number;
  counts: Partial<Record<EventName, number>>;
  recencyDays: number | null;
  frequency: number;
  monetary: number;
  revenue: number;
  refunds: number;
  avgOrderValue: number | null;
  tenureDays: number | null;
  lastSeenDays: number | null;
  affinities: Affinity[];
  avgUnitPrice: number | null;
  priceBand: PriceBand | null;
  activity: number;
  viewToPurchase: number | null;
  /** Days since the cart was left open (a line added, not removed or bought since); `null` if closed. */
  openCartDays: number | null;
}

const days = (from: number | null, to: number) => (from === null ? null : (to - from) / DAY_MS);

/** Every category's affinity share at `asOf`, strongest first (ties by name). */
export function affinityShares(state: FeatureState, asOf: number, halfLifeDays: number): Affinity[] {
  const scores: Array<[string, number]> = [];
  let total = 0;
  for (const [category, [score, at]] of state.affinity) {
    const value = decay(score, at, asOf, halfLifeDays);
    scores.push([category, value]);
    total += value;
  }
  if (total <= 0) return [];
  scores.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return scores.map(([category, value]) => ({ category, share: value / total }));
}

/** The features at `asOf` (epoch ms). */
export function computeFeatures(state: FeatureState, asOf: number, config: ProfileConfig): Features {
  const avgUnitPrice = state.priceUnits > 0 ? state.priceSum / state.priceUnits : null;
  const orders = orderTotals(state);
  const [budgetBelow, premiumFrom] = config.priceBands;
  const priceBand: PriceBand | null =
    avgUnitPrice === null
      ? null
      : avgUnitPrice < budgetBelow
        ? "budget"
        : avgUnitPrice < premiumFrom
          ? "mid"
          : "premium";
  const cartSince = cartOpenSince(state);
  return {
    asOf,
    eventCount: state.eventCount,
    counts: { ...state.counts },
    recencyDays: days(state.lastOrderAt, asOf),
    frequency: orders.frequency,
    monetary: orders.monetary,
    revenue: orders.revenue,
    refunds: orders.refunds,
    avgOrderValue: orders.valued > 0 ? orders.revenue / orders.valued : null,
    tenureDays: days(state.firstAt, asOf),
    lastSeenDays: days(state.lastAt, asOf),
    affinities: affinityShares(state, asOf, config.halfLifeDays).slice(0, config.topK),
    avgUnitPrice,
    priceBand,
    activity: state.activity
      ? decay(state.activity[0], state.activity[1], asOf, config.activityHalfLifeDays)
      : 0,
    viewToPurchase: state.viewedDistinct > 0 ? state.viewedBought / state.viewedDistinct : null,
    openCartDays: days(cartSince, asOf),
  };
}

/** Tag names the default rules can assign. */
export type Tag =
  | "new"
  | "high_value"
  | "loyal"
  | "at_risk"
  | "lapsed"
  | "one_time"
  | "window_shopper"
  | "cart_abandoner"
  | "frequent_refunder"
  | "bargain_hunter"
  | "premium_buyer";

/**
 * Thresholds of the default tag rules. Defaults are sensible for a shop whose currency unit
 * is about a euro; a global model may replace them (`profiler.setTagThresholds`).
 */
export interface TagThresholds {
  /** `new`: tenure at most this many days. */
  newMaxTenureDays: number;
  /** `high_value`: monetary at least this. */
  highValueMinMonetary: number;
  /** `loyal`: at least this many orders ... */
  loyalMinFrequency: number;
  /** ... the last within this many days. */
  loyalMaxRecencyDays: number;
  /** `at_risk`: a repeat buyer (≥ `atRiskMinFrequency` orders) silent for this many days ... */
  atRiskMinRecencyDays: number;
  atRiskMinFrequency: number;
  /** `lapsed`: last order at least this many days ago (takes precedence over `at_risk`). */
  lapsedMinRecencyDays: number;
  /** `window_shopper`: at least this many product views and no order. */
  windowShopperMinViews: number;
  /** `cart_abandoner`: a cart left open for at least this many hours (a cart in use is not abandoned) ... */
  cartAbandonerMinHours: number;
  /** ... and at most this many days. */
  cartAbandonerMaxDays: number;
  /** `frequent_refunder`: refunds at least this share of revenue. */
  refunderMinShare: number;
}

/** Default tag thresholds. */
export const DEFAULT_TAG_THRESHOLDS: TagThresholds = {
  newMaxTenureDays: 30,
  highValueMinMonetary: 1000,
  loyalMinFrequency: 5,
  loyalMaxRecencyDays: 90,
  atRiskMinRecencyDays: 60,
  atRiskMinFrequency: 2,
  lapsedMinRecencyDays: 180,
  windowShopperMinViews: 10,
  cartAbandonerMinHours: 1,
  cartAbandonerMaxDays: 7,
  refunderMinShare: 0.2,
};

/** The tags `features` earn under `thresholds`, in a stable order. */
export function assignTags(features: Features, thresholds: TagThresholds): Tag[] {
  const tags: Tag[] = [];
  const { recencyDays: recency, frequency } = features;
  if (features.tenureDays !== null && features.tenureDays <= thresholds.newMaxTenureDays) tags.push("new");
  if (features.monetary >= thresholds.highValueMinMonetary) tags.push("high_value");
  if (
    frequency >= thresholds.loyalMinFrequency &&
    recency !== null &&
    recency <= thresholds.loyalMaxRecencyDays
  ) {
    tags.push("loyal");
  }
  if (recency !== null && recency >= thresholds.lapsedMinRecencyDays) tags.push("lapsed");
  else if (
    recency !== null &&
    recency >= thresholds.atRiskMinRecencyDays &&
    frequency >= thresholds.atRiskMinFrequency
  ) {
    tags.push("at_risk");
  }
  if (frequency === 1) tags.push("one_time");
  if (frequency === 0 && (features.counts["Product Viewed"] ?? 0) >= thresholds.windowShopperMinViews) {
    tags.push("window_shopper");
  }
  const open = features.openCartDays;
  if (
    open !== null &&
    open * 24 >= thresholds.cartAbandonerMinHours &&
    open <= thresholds.cartAbandonerMaxDays
  ) {
    tags.push("cart_abandoner");
  }
  if (features.revenue > 0 && features.refunds / features.revenue >= thresholds.refunderMinShare) {
    tags.push("frequent_refunder");
  }
  if (features.priceBand === "budget" && frequency > 0) tags.push("bargain_hunter");
  if (features.priceBand === "premium") tags.push("premium_buyer");
  return tags;
}

// Intl.NumberFormat is costly to construct; build each of the two formats once, on first use.
const formats = new Map<number, Intl.NumberFormat>();
function fmt(value: number, digits = 0): string {
  // Whole numbers below 1,000 need no grouping: Intl's "halfExpand" is Math.round for x ≥ 0
  // (and 0 ≤ x, unlike -0 and negatives, which Intl writes with a sign). Intl costs ~8 µs a call.
  if (!digits && value >= 0 && value < 999.5 && 1 / value > 0) return `${Math.round(value)}`;
  let format = formats.get(digits);
  if (!format) {
    format = new Intl.NumberFormat("en", { maximumFractionDigits: digits, minimumFractionDigits: digits });
    formats.set(digits, format);
  }
  return format.format(value);
}

/** A one-paragraph, human-readable summary of the profile. */
export function summarise(features: Features, tags: readonly Tag[]): string {
  if (features.eventCount === 0) return "No activity recorded on this device yet.";
  const parts: string[] = [];
  const { frequency, recencyDays } = features;
  if (frequency > 0 && recencyDays !== null) {
    parts.push(
      `${frequency} order${frequency === 1 ? "" : "s"} worth ${fmt(features.monetary, 2)} net of refunds, ` +
        `the last ${fmt(recencyDays)} day${Math.round(recencyDays) === 1 ? "" : "s"} ago`,
    );
  } else {
    parts.push("no orders yet");
  }
  if (features.tenureDays !== null) parts.push(`first seen ${fmt(features.tenureDays)} days ago`);
  if (features.affinities.length > 0) {
    const top = features.affinities.slice(0, 3).map((a) => `${a.category} (${fmt(a.share * 100)}%)`);
    parts.push(`mostly interested in ${top.join(", ")}`);
  }
  if (features.priceBand) parts.push(`${features.priceBand} price range`);
  const sentence = parts.join("; ");
  const head = sentence.charAt(0).toUpperCase() + sentence.slice(1);
  return tags.length > 0 ? `${head}. Tags: ${tags.join(", ")}.` : `${head}.`;
}
