/**
 * The twelve Segment e-commerce spec v2 events the profiler understands, validated with
 * `zod/mini` (the full `zod` build would cost ~60 KB gzip; mini keeps the core under budget).
 * Property names and meanings follow https://segment.com/docs/connections/spec/ecommerce/v2/.
 *
 * Unknown properties are stripped before storage: the device keeps only what the profile uses
 * (data minimisation), and a stored event can never carry a page's arbitrary payload.
 */
import * as z from "zod/mini";
import { InvalidEventError } from "../errors";

/** The event names `track()` accepts. */
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
] as const;

/** One of the twelve supported event names. */
export type EventName = (typeof EVENT_NAMES)[number];

const text = z.string().check(z.maxLength(1024));
const id = z.pipe(
  z.union([text, z.number().check(z.int())]),
  z.transform((value: string | number) => String(value)),
);
const amount = z.number().check(z.gte(0));
const opt = z.optional;

const productFields = {
  product_id: opt(id),
  sku: opt(text),
  category: opt(text),
  name: opt(text),
  brand: opt(text),
  variant: opt(text),
  price: opt(amount),
  quantity: opt(amount),
  coupon: opt(text),
  position: opt(z.number()),
  url: opt(text),
  image_url: opt(text),
};

/** A product, as it appears in product events and in `products` arrays. */
export const Product = z.object(productFields);
/** A validated product. */
export type Product = z.infer<typeof Product>;

// Large wholesale orders exist (UCI Online Retail has invoices of 542 lines); 1,000 bounds memory.
const products = opt(z.array(Product).check(z.maxLength(1000)));

const orderFields = {
  checkout_id: opt(id),
  affiliation: opt(text),
  subtotal: opt(amount),
  total: opt(amount),
  revenue: opt(amount),
  value: opt(amount),
  shipping: opt(amount),
  tax: opt(amount),
  discount: opt(amount),
  coupon: opt(text),
  currency: opt(text),
  products,
};

/** Property schemas per event name. `order_id` is required where the profile counts orders. */
export const EVENT_SCHEMAS = {
  "Products Searched": z.object({ query: text }),
  "Product List Viewed": z.object({ list_id: opt(id), category: opt(text), products }),
  "Product Viewed": Product,
  "Product Clicked": Product,
  "Product Added": z.object({ cart_id: opt(id), ...productFields }),
  "Product Removed": z.object({ cart_id: opt(id), ...productFields }),
  "Cart Viewed": z.object({ cart_id: opt(id), products }),
  "Checkout Started": z.object({ order_id: opt(id), ...orderFields }),
  "Order Completed": z.object({ order_id: id, ...orderFields }),
  "Order Refunded": z.object({ order_id: id, ...orderFields }),
  "Order Cancelled": z.object({ order_id: id, ...orderFields }),
  "Product Reviewed": z.object({
    product_id: opt(id),
    review_id: opt(id),
    review_body: opt(z.string().check(z.maxLength(10_000))),
    rating: opt(z.number().check(z.gte(0), z.lte(10))),
  }),
} as const;

/**
 * The union of every property any event may carry, all optional. Each event schema's output
 * is assignable to it (checked by the compiler in `parseEvent`), so the feature fold reads one
 * shape and guards the fields an event family always has.
 */
export interface EventProperties {
  query?: string;
  list_id?: string;
  cart_id?: string;
  checkout_id?: string;
  order_id?: string;
  product_id?: string;
  sku?: string;
  category?: string;
  name?: string;
  brand?: string;
  variant?: string;
  price?: number;
  quantity?: number;
  coupon?: string;
  position?: number;
  url?: string;
  image_url?: string;
  affiliation?: string;
  subtotal?: number;
  total?: number;
  revenue?: number;
  value?: number;
  shipping?: number;
  tax?: number;
  discount?: number;
  currency?: string;
  products?: Product[];
  review_id?: string;
  review_body?: string;
  rating?: number;
}

/** A validated event: its name and its properties (unknown ones stripped). */
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

function isEventName(name: unknown): name is EventName {
  return typeof name === "string" && (EVENT_NAMES as readonly string[]).includes(name);
}

function fieldOf(path: readonly PropertyKey[]): string {
  let field = "";
  for (const key of path) {
    if (typeof key === "number") field += `[${key}]`;
    else field += field ? `.${String(key)}` : String(key);
  }
  return field || "properties";
}

/**
 * Validates `properties` for the event `name`. Returns the event with unknown properties
 * stripped, or throws `InvalidEventError` naming the first invalid field.
 */
export function parseEvent(name: unknown, properties: unknown): TrackedEvent {
  if (!isEventName(name)) {
    throw new InvalidEventError(
      String(name),
      "event",
      `unknown event name; expected one of ${EVENT_NAMES.join(", ")}`,
    );
  }
  const result = EVENT_SCHEMAS[name].safeParse(properties ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new InvalidEventError(name, fieldOf(issue?.path ?? []), issue?.message ?? "invalid", {
      cause: result.error,
    });
  }
  const validated: EventProperties = result.data;
  return { name, properties: validated };
}

/**
 * Rebuilds a stored event from untrusted data (e.g. JSON read back from localStorage): checks
 * the envelope and re-validates the properties. Returns `null` for anything invalid.
 */
export function restoreEvent(value: unknown): StoredEvent | null {
  if (typeof value !== "object" || value === null) return null;
  if (!("id" in value && "name" in value && "t" in value && "p" in value)) return null;
  const { id, name, t, p } = value;
  if (typeof id !== "string" || typeof t !== "number" || !Number.isFinite(t)) return null;
  try {
    const event = parseEvent(name, p);
    return { id, name: event.name, t, p: event.properties };
  } catch {
    return null;
  }
}
