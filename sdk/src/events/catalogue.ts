/**
 * The event names of Segment's V2 e-commerce spec, which of them the profile reads, and the
 * V1 names Segment aliases to them.
 *
 * Source: "Spec: V2 Ecommerce Events" (segment.com/docs/connections/spec/ecommerce/v2/): 28
 * events in seven groups. Its alias notes name the V1 events (`Viewed Product`, `Added
 * Product`, ...); `Completed Order` is the V1 name that Segment's facade recognises for the
 * order-completion revenue rule (`/^[ _]?completed[ _]?order[ _]?|^[ _]?order[ _]?completed/i`).
 *
 * Names are matched after normalisation (case folded, runs of spaces and underscores as one
 * space), so `order_completed` and `ORDER COMPLETED` are `Order Completed`, as Segment's
 * facade matches them.
 */

/** The events the profile reads: folded into features, stored on the device. */
export const EVENT_NAMES = [
  "Products Searched",
  "Product List Viewed",
  "Product Viewed",
  "Product Clicked",
  "Product Added",
  "Product Removed",
  "Cart Viewed",
  "Checkout Started",
  "Order Completed",
  "Order Refunded",
  "Order Cancelled",
  "Product Reviewed",
  "Wishlist Product Added to Cart",
] as const;

/** An event the profile reads. */
export type EventName = (typeof EVENT_NAMES)[number];

/**
 * Spec events the profile has no use for. They are accepted, counted and dropped: nothing
 * of them is stored (data minimisation), and `track()` resolves `{ kept: false }`.
 */
export const UNUSED_EVENT_NAMES = [
  "Product List Filtered",
  "Promotion Viewed",
  "Promotion Clicked",
  "Checkout Step Viewed",
  "Checkout Step Completed",
  "Payment Info Entered",
  // Order Updated carries a new total, but without a revision number two tabs could apply
  // updates in either order; the order keeps the value it was completed with.
  "Order Updated",
  "Coupon Entered",
  "Coupon Applied",
  "Coupon Denied",
  "Coupon Removed",
  "Product Added to Wishlist",
  "Product Removed from Wishlist",
  "Product Shared",
  "Cart Shared",
] as const;

/** A spec event the profile does not read. */
export type UnusedEventName = (typeof UNUSED_EVENT_NAMES)[number];

/** Every event name of the V2 e-commerce spec. */
export type SpecEventName = EventName | UnusedEventName;

/** All 28 V2 names. */
export const SPEC_EVENT_NAMES: readonly SpecEventName[] = [...EVENT_NAMES, ...UNUSED_EVENT_NAMES];

/** V1 (and Segment GA Enhanced E-Commerce) names, as the V2 spec's alias notes give them. */
export const V1_ALIASES: Readonly<Record<string, SpecEventName>> = {
  "Viewed Product Category": "Product List Viewed",
  "Clicked Product": "Product Clicked",
  "Viewed Product": "Product Viewed",
  "Added Product": "Product Added",
  "Removed Product": "Product Removed",
  "Viewed Promotion": "Promotion Viewed",
  "Clicked Promotion": "Promotion Clicked",
  "Started Order": "Checkout Started",
  "Viewed Checkout Step": "Checkout Step Viewed",
  "Completed Checkout Step": "Checkout Step Completed",
  "Updated Order": "Order Updated",
  "Completed Order": "Order Completed",
};

const normalise = (name: string) =>
  name
    .trim()
    .replace(/[\s_]+/g, " ")
    .toLowerCase();

let index: Map<string, SpecEventName> | undefined;
function lookup(): Map<string, SpecEventName> {
  if (!index) {
    index = new Map();
    for (const name of SPEC_EVENT_NAMES) index.set(normalise(name), name);
    for (const [alias, name] of Object.entries(V1_ALIASES)) index.set(normalise(alias), name);
  }
  return index;
}

const used: ReadonlySet<string> = new Set(EVENT_NAMES);

/** True for a name the profile reads. */
export function isUsedEvent(name: SpecEventName): name is EventName {
  return used.has(name);
}

/** The V2 name `name` stands for (itself, a V1 alias, another spelling), or `null`. */
export function resolveEventName(name: unknown): SpecEventName | null {
  if (typeof name !== "string" || name.length > 256) return null;
  return lookup().get(normalise(name)) ?? null;
}
