/**
 * Money rules: what an order is worth, what a refund takes back, and which currency a figure
 * is in. Pure functions over stored event properties; the fold (`state.ts`) applies them.
 *
 * - Order value (Segment's facade, `Track#revenue`: "it's always revenue, unless it's called
 *   during an order completion", then `total`): the first non-zero of `revenue`, `total`,
 *   Σ price × quantity of the products, `value`. The facade tests `!revenue`, so a `revenue`
 *   of 0 falls through to `total` too. An order with none of them has no known value.
 * - Refund amount, in the same order: `revenue`, `total`, Σ price × quantity, `value`. A refund
 *   that states no amount at all is a full refund (the spec's Order Refunded requires only
 *   `order_id`). A `total` refunded from an order whose value came from `revenue` is scaled by
 *   revenue / total of that order, so a full refund of the total nets exactly its revenue.
 * - Currency: amounts in the storefront's currency count as they are; another currency is
 *   converted through the page's rate table, or kept out of every monetary figure.
 */
import type { EventProperties, Product } from "../events/schemas";

/** Units of the storefront's currency per unit of another (`{ JPY: 0.0061 }` for a euro shop). */
export type RateTable = Readonly<Record<string, number>>;

/** What an order is worth and where that came from. */
export interface OrderValue {
  value: number;
  /** The order's `total` when `value` came from `revenue` (to scale refunds of the total). */
  gross: number | null;
}

/** What a refund takes back: `byTotal` is in the order's `total` terms, `other` in its value's. */
export interface RefundAmount {
  full: boolean;
  byTotal: number;
  other: number;
}

/** Σ price × quantity (a missing quantity counts 1), or `undefined` when no line has a price. */
export function lineTotal(products: readonly Product[] | undefined): number | undefined {
  let sum: number | undefined;
  for (const product of products ?? []) {
    if (product.price === undefined) continue;
    sum = (sum ?? 0) + product.price * (product.quantity ?? 1);
  }
  return sum;
}

/** The lines total of stored properties (the untruncated one if the list was cut). */
const linesOf = (p: EventProperties) => p.lines_total ?? lineTotal(p.products);

/** The order value rule (module comment), or `null` when the order states no amount. */
export function orderValue(p: EventProperties): OrderValue | null {
  const candidates = [p.revenue, p.total, linesOf(p), p.value];
  const index = candidates.findIndex((v) => v !== undefined && v > 0);
  if (index === -1) {
    const zero = candidates.find((v) => v !== undefined);
    return zero === undefined ? null : { value: zero, gross: null };
  }
  const value = candidates[index] ?? 0;
  return { value, gross: index === 0 && p.total !== undefined && p.total > 0 ? p.total : null };
}

/** The refund amount rule (module comment). */
export function refundAmount(p: EventProperties): RefundAmount {
  const lines = linesOf(p);
  const candidates = [p.revenue, p.total, lines, p.value];
  if (candidates.every((v) => v === undefined)) return { full: true, byTotal: 0, other: 0 };
  const index = candidates.findIndex((v) => v !== undefined && v > 0);
  if (index === -1) return { full: false, byTotal: 0, other: 0 };
  const amount = candidates[index] ?? 0;
  return index === 1
    ? { full: false, byTotal: amount, other: 0 }
    : { full: false, byTotal: 0, other: amount };
}

/**
 * A 32-bit FNV-1a fingerprint of a refund's amounts and lines. Segment's spec gives a refund
 * no id of its own, and a re-sent refund (a retried request, a reloaded confirmation page) is
 * identical to the first, so two refunds of one order with the same fingerprint count once.
 */
export function refundFingerprint(p: EventProperties): number {
  let text = `${p.revenue}|${p.total}|${p.value}|${p.lines_total}`;
  for (const line of p.products ?? []) {
    text += `|${line.product_id ?? line.sku ?? ""}:${line.price}:${line.quantity}`;
  }
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** True when the amounts of `p` are in the storefront's currency (stated or implied). */
export function inShopCurrency(p: EventProperties, currency: string): boolean {
  return p.currency === undefined || p.currency === currency;
}

/** Multiplies every amount of `p` by `rate` (a new object; `p` is not changed). */
function scaled(p: EventProperties, rate: number): EventProperties {
  const times = (v: number | undefined) => (v === undefined ? undefined : v * rate);
  const out: EventProperties = { ...p };
  for (const key of ["revenue", "total", "value", "lines_total", "price"] as const) {
    const v = times(p[key]);
    if (v === undefined) delete out[key];
    else out[key] = v;
  }
  if (p.products) {
    out.products = p.products.map((line) => {
      const price = times(line.price);
      return price === undefined ? line : { ...line, price };
    });
  }
  return out;
}

/** What `toShopCurrency` did. */
export type CurrencyOutcome = "shop" | "converted" | "unconverted";

/**
 * Brings the amounts of `p` into the storefront's `currency`: unchanged when they are in it
 * already (the stated code is then dropped: it says nothing), converted through `rates` when
 * there is a rate, and otherwise left with their code, which keeps them out of monetary features.
 */
export function toShopCurrency(
  p: EventProperties,
  currency: string,
  rates: RateTable | undefined,
): { properties: EventProperties; outcome: CurrencyOutcome } {
  if (p.currency === undefined) return { properties: p, outcome: "shop" };
  if (p.currency === currency) {
    const { currency: _, ...rest } = p;
    return { properties: rest, outcome: "shop" };
  }
  const rate = rates?.[p.currency];
  if (rate === undefined) return { properties: p, outcome: "unconverted" };
  const { currency: _, ...rest } = scaled(p, rate);
  return { properties: rest, outcome: "converted" };
}

/** True when `p` carries any amount (and so can be affected by its currency). */
export function hasAmounts(p: EventProperties): boolean {
  return (
    p.revenue !== undefined ||
    p.total !== undefined ||
    p.value !== undefined ||
    p.price !== undefined ||
    (p.products ?? []).some((line) => line.price !== undefined)
  );
}
