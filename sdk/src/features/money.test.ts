import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { EventName, EventProperties, StoredEvent } from "../events/schemas";
import { computeFeatures, type ProfileConfig } from "./features";
import { orderValue, refundAmount, toShopCurrency } from "./money";
import { DEFAULT_FEATURE_CONFIG, foldEvents } from "./state";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const config: ProfileConfig = { ...DEFAULT_FEATURE_CONFIG, topK: 3, priceBands: [10, 50] };
const features = (events: StoredEvent[], cfg = config) =>
  computeFeatures(foldEvents(null, events, cfg), T0 + 400 * DAY, cfg);
let n = 0;
const ev = (name: EventName, p: EventProperties, t = T0): StoredEvent => ({ id: `m${n++}`, name, t, p });

function shuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let r = seed;
  for (let i = out.length - 1; i > 0; i--) {
    r = (r * 1103515245 + 12345) & 0x7fffffff;
    const j = r % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe("the order value rule (Segment's facade: revenue, else total; then lines, then value)", () => {
  it("takes the first non-zero of revenue, total, Σ price × quantity, value", () => {
    const lines = [{ price: 2, quantity: 3 }, { price: 4 }];
    expect(orderValue({ revenue: 25, total: 27.5, value: 30, products: lines })).toEqual({
      value: 25,
      gross: 27.5,
    });
    expect(orderValue({ total: 27.5, value: 30, products: lines })).toEqual({ value: 27.5, gross: null });
    expect(orderValue({ value: 30, products: lines })).toEqual({ value: 10, gross: null });
    expect(orderValue({ value: 30 })).toEqual({ value: 30, gross: null });
    // The facade tests `!revenue`: a revenue of 0 falls through to total.
    expect(orderValue({ revenue: 0, total: 9 })).toEqual({ value: 9, gross: null });
    expect(orderValue({ revenue: 0 })).toEqual({ value: 0, gross: null });
    expect(orderValue({ products: [{ category: "x" }] })).toBeNull();
    expect(orderValue({ lines_total: 600, products: lines })).toEqual({ value: 600, gross: null });
  });

  it("an order with only total, or only value, is worth it (not 0)", () => {
    expect(features([ev("Order Completed", { order_id: "a", total: 27.5 })]).monetary).toBe(27.5);
    expect(features([ev("Order Completed", { order_id: "b", value: 80 })]).monetary).toBe(80);
  });

  it("a refund states revenue, total, lines or value; none is a full refund", () => {
    expect(refundAmount({ order_id: "o" })).toEqual({ full: true, byTotal: 0, other: 0 });
    expect(refundAmount({ total: 30 })).toEqual({ full: false, byTotal: 30, other: 0 });
    expect(refundAmount({ revenue: 5, total: 30 })).toEqual({ full: false, byTotal: 0, other: 5 });
    expect(refundAmount({ products: [{ price: 3, quantity: 2 }] })).toEqual({
      full: false,
      byTotal: 0,
      other: 6,
    });
  });
});

describe("refunds are netted per order", () => {
  it("a full refund of the total nets the order's revenue to exactly 0 (not negative)", () => {
    const f = features([
      ev("Order Completed", { order_id: "o", revenue: 25, total: 27.5 }),
      ev("Order Refunded", { order_id: "o", total: 27.5 }, T0 + DAY),
    ]);
    expect(f).toMatchObject({ revenue: 25, refunds: 25, monetary: 0, frequency: 1 });
  });

  it("a refund tracked twice counts once; a refund of an unseen order counts nothing", () => {
    const f = features([
      ev("Order Completed", { order_id: "o", revenue: 100 }),
      ev("Order Refunded", { order_id: "o", total: 30 }, T0 + DAY),
      ev("Order Refunded", { order_id: "o", total: 30 }, T0 + 2 * DAY),
      ev("Order Refunded", { order_id: "never-seen", total: 80 }, T0 + 3 * DAY),
    ]);
    expect(f).toMatchObject({ revenue: 100, refunds: 30, monetary: 70 });
  });

  it("cancel then refund counts the order once", () => {
    const f = features([
      ev("Order Completed", { order_id: "keep", revenue: 10 }),
      ev("Order Completed", { order_id: "o", revenue: 40 }),
      ev("Order Cancelled", { order_id: "o" }, T0 + DAY),
      ev("Order Refunded", { order_id: "o" }, T0 + 2 * DAY),
    ]);
    expect(f).toMatchObject({ frequency: 1, revenue: 10, refunds: 0, monetary: 10 });
  });
});

// An independent model of the rules: per order, a value, a cancellation flag and a set of
// distinct refunds, each order's net clamped to [0, value].
type Shape = { kind: "full" } | { kind: "total" | "revenue" | "lines"; amount: number };
const shapeProps = (s: Shape): EventProperties =>
  s.kind === "full"
    ? {}
    : s.kind === "lines"
      ? { products: [{ price: s.amount, quantity: 1 }] }
      : { [s.kind]: s.amount };
const amounts = fc.constantFrom(0.5, 5, 12.25, 30, 99.99, 250);
const shape: fc.Arbitrary<Shape> = fc.oneof(
  fc.constant<Shape>({ kind: "full" }),
  fc.record({
    kind: fc.constantFrom("total" as const, "revenue" as const, "lines" as const),
    amount: amounts,
  }),
);
type Action =
  | { op: "complete"; order: number }
  | { op: "cancel"; order: number }
  | { op: "refund"; order: number; shape: Shape };
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ op: fc.constant("complete" as const), order: fc.nat(4) }),
  fc.record({ op: fc.constant("cancel" as const), order: fc.nat(4) }),
  fc.record({ op: fc.constant("refund" as const), order: fc.nat(6), shape }),
);
/** Order k is worth revenue 10·(k+1) of a total 12·(k+1); orders 5 and 6 are never completed. */
const completion = (k: number): EventProperties => ({
  order_id: `o${k}`,
  revenue: 10 * (k + 1),
  total: 12 * (k + 1),
});

function model(actions: readonly Action[]) {
  const orders = new Map<number, { done: boolean; cancelled: boolean; refunds: Map<string, Shape> }>();
  const get = (k: number) => {
    const o = orders.get(k) ?? { done: false, cancelled: false, refunds: new Map() };
    orders.set(k, o);
    return o;
  };
  for (const a of actions) {
    const o = get(a.order);
    if (a.op === "complete") o.done = true;
    else if (a.op === "cancel") o.cancelled = true;
    else o.refunds.set(JSON.stringify(a.shape), a.shape);
  }
  let revenue = 0;
  let refunds = 0;
  let frequency = 0;
  for (const [k, o] of orders) {
    if (!o.done || o.cancelled) continue;
    const value = 10 * (k + 1);
    let back = 0;
    for (const s of o.refunds.values()) {
      if (s.kind === "full") back = Number.POSITIVE_INFINITY;
      else back += s.kind === "total" ? (s.amount * value) / (12 * (k + 1)) : s.amount;
    }
    frequency += 1;
    revenue += value;
    refunds += Math.min(value, back);
  }
  return { frequency, revenue, refunds, monetary: revenue - refunds };
}

describe("money rules hold for any sequence, by property", () => {
  const toEvents = (actions: readonly Action[]) =>
    actions.map((a, i) =>
      a.op === "complete"
        ? ev("Order Completed", completion(a.order), T0 + a.order * DAY)
        : a.op === "cancel"
          ? ev("Order Cancelled", { order_id: `o${a.order}` }, T0 + i * 3600_000)
          : ev("Order Refunded", { order_id: `o${a.order}`, ...shapeProps(a.shape) }, T0 + i * 3600_000),
    );

  it("match the model: netted per order, capped at its value, distinct refunds once, cancelled orders out", () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 30 }), fc.integer(), (actions, seed) => {
        const want = model(actions);
        for (const order of [actions, shuffle(actions, seed)]) {
          const f = features(toEvents(order));
          expect(f.frequency).toBe(want.frequency);
          expect(f.revenue).toBeCloseTo(want.revenue, 9);
          expect(f.refunds).toBeCloseTo(want.refunds, 9);
          expect(f.monetary).toBeCloseTo(want.monetary, 9);
          expect(f.monetary).toBeGreaterThanOrEqual(0);
          expect(f.refunds).toBeLessThanOrEqual(f.revenue);
        }
      }),
      { numRuns: 400 },
    );
  });

  it("tracking any refund again changes nothing", () => {
    fc.assert(
      fc.property(fc.array(action, { minLength: 1, maxLength: 25 }), fc.nat(), (actions, pick) => {
        const events = toEvents(actions);
        const refunds = events.filter((e) => e.name === "Order Refunded");
        fc.pre(refunds.length > 0);
        const again = refunds[pick % refunds.length];
        if (!again) return;
        const before = features(events);
        const after = features([...events, { ...again, id: `again${pick}`, t: again.t + DAY }]);
        expect(after.refunds).toBe(before.refunds);
        expect(after.monetary).toBe(before.monetary);
      }),
      { numRuns: 300 },
    );
  });

  it("a cancellation removes exactly that order's net, whatever was refunded before or after", () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 25 }), fc.nat(4), (actions, k) => {
        const events = [...toEvents(actions), ev("Order Completed", completion(k), T0 + k * DAY)];
        const before = features(events);
        const cancelled = features([...events, ev("Order Cancelled", { order_id: `o${k}` }, T0 + 90 * DAY)]);
        const alone = model([...actions, { op: "complete", order: k }, { op: "cancel", order: k }]);
        expect(cancelled.monetary).toBeCloseTo(alone.monetary, 9);
        expect(cancelled.monetary).toBeLessThanOrEqual(before.monetary + 1e-9);
      }),
      { numRuns: 300 },
    );
  });
});

describe("currency", () => {
  const cfg = { ...config, currency: "EUR" };

  it("converts through the rate table, or keeps the amounts out of every monetary feature", () => {
    const yen: EventProperties = {
      order_id: "jp",
      revenue: 3000,
      currency: "JPY",
      products: [{ price: 1500, quantity: 2 }],
    };
    const converted = toShopCurrency(yen, "EUR", { JPY: 0.0061 });
    expect(converted.outcome).toBe("converted");
    expect(converted.properties).toEqual({
      order_id: "jp",
      revenue: 3000 * 0.0061,
      products: [{ price: 1500 * 0.0061, quantity: 2 }],
    });
    const kept = toShopCurrency(yen, "EUR", {});
    expect(kept).toEqual({ properties: yen, outcome: "unconverted" });
    expect(toShopCurrency({ revenue: 3, currency: "EUR" }, "EUR", undefined)).toEqual({
      properties: { revenue: 3 },
      outcome: "shop",
    });

    const f = features(
      [ev("Order Completed", kept.properties), ev("Product Viewed", { price: 9000, currency: "JPY" })],
      cfg,
    );
    expect(f).toMatchObject({
      frequency: 1,
      revenue: 0,
      monetary: 0,
      avgOrderValue: null,
      avgUnitPrice: null,
      priceBand: null,
    });
  });

  it("never sums across currencies: unconverted amounts leave every monetary figure unchanged (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ amount: amounts, foreign: fc.boolean(), k: fc.nat(5) }), { maxLength: 20 }),
        (orders) => {
          const events = orders.map((o, i) =>
            ev("Order Completed", {
              order_id: `c${i}`,
              revenue: o.amount,
              ...(o.foreign ? { currency: "GBP" } : {}),
            }),
          );
          const f = features(events, cfg);
          const home = orders.filter((o) => !o.foreign);
          expect(f.revenue).toBeCloseTo(
            home.reduce((s, o) => s + o.amount, 0),
            9,
          );
          expect(f.frequency).toBe(orders.length);
          expect(f.avgOrderValue === null ? 0 : f.avgOrderValue * home.length).toBeCloseTo(f.revenue, 9);
        },
      ),
    );
  });
});

describe("price level is per unit", () => {
  it("weighs each line by its quantity (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ price: amounts, quantity: fc.integer({ min: 1, max: 50 }) }), {
          minLength: 1,
          maxLength: 12,
        }),
        (lines) => {
          const f = features([ev("Order Completed", { order_id: "u", products: lines })]);
          const units = lines.reduce((s, l) => s + l.quantity, 0);
          expect(f.avgUnitPrice).toBeCloseTo(lines.reduce((s, l) => s + l.price * l.quantity, 0) / units, 9);
        },
      ),
    );
  });
});
