import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { EventName, EventProperties, StoredEvent } from "../events/schemas";
import {
  assignTags,
  computeFeatures,
  DEFAULT_TAG_THRESHOLDS,
  type ProfileConfig,
  summarise,
} from "./features";
import { applyEvent, cloneFeatureState, DEFAULT_FEATURE_CONFIG, foldEvents } from "./state";
import { profileVector, VECTOR_FIELDS, Z_CLAMP } from "./vector";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const config: ProfileConfig = { ...DEFAULT_FEATURE_CONFIG, topK: 3, priceBands: [10, 50] };

let n = 0;
const ev = (name: EventName, p: EventProperties = {}, t = T0): StoredEvent => ({ id: `e${n++}`, name, t, p });
const features = (events: StoredEvent[], asOf: number, cfg = config) =>
  computeFeatures(foldEvents(null, events, cfg), asOf, cfg);

describe("RFM features", () => {
  const orders = [
    ev("Product Viewed", { product_id: "a" }, T0 - 10 * DAY),
    ev("Order Completed", { order_id: "o1", revenue: 100 }, T0),
    ev(
      "Order Completed",
      { order_id: "o2", products: [{ price: 2.5, quantity: 4 }, { price: 5 }] },
      T0 + 5 * DAY,
    ),
  ];

  it("recency, frequency, monetary, average order value and tenure follow the definitions", () => {
    const f = features(orders, T0 + 7.5 * DAY);
    expect(f.recencyDays).toBeCloseTo(2.5, 12);
    expect(f.frequency).toBe(2);
    expect(f.monetary).toBe(100 + 2.5 * 4 + 5);
    expect(f.avgOrderValue).toBe((100 + 15) / 2);
    expect(f.tenureDays).toBeCloseTo(17.5, 12);
  });

  it("counts distinct order ids: a repeated Order Completed adds nothing", () => {
    const f = features(
      [...orders, ev("Order Completed", { order_id: "o1", revenue: 100 }, T0 + 6 * DAY)],
      T0 + 7 * DAY,
    );
    expect(f.frequency).toBe(2);
    expect(f.monetary).toBe(115);
    expect(f.recencyDays).toBeCloseTo(2, 12);
  });

  it("Order Cancelled removes the order, its revenue and, if it was the last, moves recency back", () => {
    const f = features([...orders, ev("Order Cancelled", { order_id: "o2" }, T0 + 6 * DAY)], T0 + 10 * DAY);
    expect(f.frequency).toBe(1);
    expect(f.monetary).toBe(100);
    expect(f.recencyDays).toBeCloseTo(10, 12);
  });

  it("a cancellation folded before its completion (another tab) still wins", () => {
    const f = features(
      [
        ev("Order Cancelled", { order_id: "o9" }, T0 + DAY),
        ev("Order Completed", { order_id: "o9", revenue: 50 }),
      ],
      T0 + DAY,
    );
    expect(f.frequency).toBe(0);
    expect(f.monetary).toBe(0);
    expect(f.recencyDays).toBeNull();
  });

  it("Order Refunded lowers monetary by total, else Σ price × quantity, else the order's revenue; frequency stays", () => {
    const refunds = [
      ev("Order Refunded", { order_id: "o1", total: 30 }, T0 + DAY),
      ev("Order Refunded", { order_id: "o2", products: [{ price: 2.5, quantity: 2 }] }, T0 + 6 * DAY),
    ];
    let f = features([...orders, ...refunds], T0 + 7 * DAY);
    expect(f.frequency).toBe(2);
    expect(f.monetary).toBe(115 - 30 - 5);
    expect(f.refunds).toBe(35);
    expect(f.avgOrderValue).toBe(57.5);
    f = features([...orders, ev("Order Refunded", { order_id: "o1" }, T0 + DAY)], T0 + 7 * DAY);
    expect(f.monetary).toBe(15);
  });

  it("a visitor without orders has null recency and average order value", () => {
    const f = features([ev("Products Searched", {}, T0)], T0 + DAY);
    expect(f).toMatchObject({
      recencyDays: null,
      frequency: 0,
      monetary: 0,
      avgOrderValue: null,
      tenureDays: 1,
    });
  });
});

describe("category affinities", () => {
  it("decay exponentially with the half-life, weight by event and normalise", () => {
    const f = features(
      [
        ev("Product Viewed", { category: "kitchen" }, T0),
        ev("Product Added", { category: "bags" }, T0 + 30 * DAY),
      ],
      T0 + 30 * DAY,
    );
    // kitchen: 1 × 2^(−30/30) = 0.5; bags: 3.
    expect(f.affinities.map((a) => a.category)).toEqual(["bags", "kitchen"]);
    expect(f.affinities[0]?.share).toBeCloseTo(3 / 3.5, 12);
    expect(f.affinities[1]?.share).toBeCloseTo(0.5 / 3.5, 12);
  });

  it("purchases weigh 5 per line, half-life and weights are configurable, top K kept", () => {
    const cfg = {
      ...config,
      halfLifeDays: 10,
      weights: { "Product Viewed": 2, "Order Completed": 1 },
      topK: 2,
    };
    const f = features(
      [
        ev("Product Viewed", { category: "a" }, T0),
        ev(
          "Order Completed",
          { order_id: "o", products: [{ category: "b" }, { category: "c" }] },
          T0 + 10 * DAY,
        ),
        ev("Product Viewed", { category: "d" }, T0 - 10 * DAY),
      ],
      T0 + 10 * DAY,
      cfg,
    );
    // a: 2·0.5 = 1, b: 1, c: 1, d: 2·0.25 = 0.5 → total 3.5; top 2 of the ties a, b, c by name.
    expect(f.affinities).toEqual([
      { category: "a", share: expect.closeTo(1 / 3.5, 12) },
      { category: "b", share: expect.closeTo(1 / 3.5, 12) },
    ]);
  });

  it("keeps the accumulator bounded: the weakest category is evicted beyond maxCategories", () => {
    const cfg = { ...config, maxCategories: 8, maxViewedProducts: 16 };
    const events = Array.from({ length: 500 }, (_, i) =>
      ev("Product Viewed", { category: `c${i}`, product_id: `p${i}` }, T0 + i * 1000),
    );
    const state = foldEvents(null, events, cfg);
    expect(state.affinity.size).toBe(8);
    expect([...state.affinity.keys()]).toContain("c499");
    expect(state.viewed.size).toBe(16);
    expect(state.viewedDistinct).toBe(500);
  });
});

describe("price band, activity, conversion", () => {
  it("bands the mean unit price and decays activity with its own half-life", () => {
    const f = features(
      [
        ev("Product Viewed", { price: 4 }, T0),
        ev("Product Added", { price: 20 }, T0),
        ev("Product Clicked", { price: 30 }, T0),
      ],
      T0 + 7 * DAY,
    );
    expect(f.avgUnitPrice).toBe(18);
    expect(f.priceBand).toBe("mid");
    expect(f.activity).toBeCloseTo(1.5, 12);
  });

  it("view-to-purchase is the share of distinct viewed products bought afterwards", () => {
    const f = features(
      [
        ev("Product Viewed", { product_id: "a" }),
        ev("Product Viewed", { product_id: "a" }),
        ev("Product Viewed", { product_id: "b" }),
        ev("Product Viewed", { product_id: "c" }),
        ev("Product Viewed", { product_id: "d" }),
        ev(
          "Order Completed",
          { order_id: "o", products: [{ product_id: "a" }, { product_id: "z" }] },
          T0 + 1,
        ),
      ],
      T0 + DAY,
    );
    expect(f.viewToPurchase).toBe(0.25);
  });
});

describe("order-insensitive folding", () => {
  const names: EventName[] = [
    "Product Viewed",
    "Product Added",
    "Order Completed",
    "Order Cancelled",
    "Order Refunded",
    "Checkout Started",
  ];
  const arbitraryEvent = fc.record({
    name: fc.constantFrom(...names),
    order: fc.integer({ min: 0, max: 5 }),
    category: fc.constantFrom("a", "b", "c"),
    price: fc.double({ min: 0, max: 500, noNaN: true }),
    day: fc.double({ min: 0, max: 300, noNaN: true }),
  });

  it("any permutation of the same events gives the same features (tabs fold in any order)", () => {
    fc.assert(
      fc.property(fc.array(arbitraryEvent, { maxLength: 40 }), fc.integer(), (specs, seed) => {
        const events = specs.map(
          (s, i): StoredEvent => ({
            id: `x${i}`,
            name: s.name,
            // A repeated Order Completed is a retry of the same event: same content, same timestamp.
            t: T0 + (s.name === "Order Completed" ? s.order * 11 : s.day) * DAY,
            p:
              s.name === "Order Completed"
                ? {
                    order_id: `o${s.order}`,
                    products: [{ category: "abc"[s.order % 3], price: s.order * 7.5, quantity: 2 }],
                  }
                : {
                    order_id: `o${s.order}`,
                    category: s.category,
                    price: s.price,
                    products: [{ category: s.category, price: s.price, quantity: 1 }],
                  },
          }),
        );
        const shuffled = [...events];
        let r = seed;
        for (let i = shuffled.length - 1; i > 0; i--) {
          r = (r * 1103515245 + 12345) & 0x7fffffff;
          const j = r % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        const asOf = T0 + 400 * DAY;
        const a = features(events, asOf);
        const b = features(shuffled, asOf);
        for (const key of ["frequency", "eventCount", "recencyDays", "tenureDays"] as const)
          expect(b[key]).toBe(a[key]);
        for (const key of ["monetary", "refunds", "activity"] as const) expect(b[key]).toBeCloseTo(a[key], 6);
        expect(b.affinities.map((x) => x.share)).toEqual(a.affinities.map((x) => expect.closeTo(x.share, 9)));
      }),
      { numRuns: 500 },
    );
  });

  it("cloneFeatureState is a deep copy: equal to structuredClone, and folding into it leaves the original alone", () => {
    fc.assert(
      fc.property(fc.array(arbitraryEvent, { minLength: 1, maxLength: 30 }), (specs) => {
        const events = specs.map(
          (s, i): StoredEvent => ({
            id: `c${i}`,
            name: s.name,
            t: T0 + s.day * DAY,
            p: {
              order_id: `o${s.order}`,
              product_id: `p${s.order}`,
              category: s.category,
              price: s.price,
              products: [{ product_id: `p${s.order}`, category: s.category, price: s.price, quantity: 1 }],
            },
          }),
        );
        const original = foldEvents(null, events, config);
        const snapshot = structuredClone(original);
        const copy = cloneFeatureState(original);
        expect(copy).toEqual(snapshot);
        // Folded in place, every event again a day later and as new orders: touches orders,
        // affinities, activity, viewed and cart.
        for (const e of events) {
          applyEvent(copy, { ...e, id: `${e.id}'`, t: e.t + DAY }, config);
          applyEvent(
            copy,
            { ...e, id: `${e.id}"`, t: e.t - DAY, p: { ...e.p, order_id: `n${e.id}` } },
            config,
          );
        }
        expect(copy).not.toEqual(snapshot);
        expect(original).toEqual(snapshot);
      }),
      { numRuns: 200 },
    );
  });
});

describe("tags, summary and vector", () => {
  it("assigns tags from thresholds, replaceable per call", () => {
    const loyal = features(
      Array.from({ length: 6 }, (_, i) =>
        ev("Order Completed", { order_id: `o${i}`, revenue: 300 }, T0 + i * 10 * DAY),
      ),
      T0 + 60 * DAY,
    );
    expect(assignTags(loyal, DEFAULT_TAG_THRESHOLDS)).toEqual(["high_value", "loyal"]);
    expect(
      assignTags(loyal, { ...DEFAULT_TAG_THRESHOLDS, loyalMinFrequency: 10, highValueMinMonetary: 5000 }),
    ).toEqual([]);
    const lapsing = features(
      [
        ev("Order Completed", { order_id: "a", revenue: 5 }),
        ev("Order Completed", { order_id: "b", revenue: 5 }, T0 + DAY),
      ],
      T0 + 100 * DAY,
    );
    expect(assignTags(lapsing, DEFAULT_TAG_THRESHOLDS)).toContain("at_risk");
    expect(
      assignTags(
        features([ev("Order Completed", { order_id: "a", revenue: 5 })], T0 + 200 * DAY),
        DEFAULT_TAG_THRESHOLDS,
      ),
    ).toEqual(["lapsed", "one_time"]);
    const browsing = features(
      [
        ...Array.from({ length: 10 }, () => ev("Product Viewed", { price: 3 })),
        ev("Product Added", {}, T0 + DAY),
      ],
      T0 + 2 * DAY,
    );
    expect(assignTags(browsing, DEFAULT_TAG_THRESHOLDS)).toEqual(["new", "window_shopper", "cart_abandoner"]);
  });

  it("summarises readably", () => {
    const f = features(
      [ev("Order Completed", { order_id: "o", revenue: 12.5, products: [{ category: "kitchen" }] })],
      T0 + 3 * DAY,
    );
    const text = summarise(f, assignTags(f, DEFAULT_TAG_THRESHOLDS));
    expect(text).toBe(
      "1 order worth 12.50 net of refunds, the last 3 days ago; first seen 3 days ago; mostly interested in kitchen (100%). Tags: new, one_time.",
    );
    expect(summarise(features([], T0), [])).toBe("No activity recorded on this device yet.");
  });

  it("standardises to a fixed-length, clamped vector; missing values impute to 0", () => {
    const empty = profileVector(features([], T0));
    expect(empty).toHaveLength(VECTOR_FIELDS.length);
    expect(empty[VECTOR_FIELDS.indexOf("avg_unit_price")]).toBe(0);
    expect(empty[VECTOR_FIELDS.indexOf("view_to_purchase")]).toBe(0);
    const whale = profileVector(features([ev("Order Completed", { order_id: "o", revenue: 1e12 })], T0));
    for (const z of whale) expect(Math.abs(z)).toBeLessThanOrEqual(Z_CLAMP);
    expect(whale[VECTOR_FIELDS.indexOf("monetary")]).toBe(Z_CLAMP);
  });
});
