import { describe, expect, it } from "vitest";
import type { FeatureState } from "./features/state";
import { type HistoryEvent, importHistory } from "./history";
import { createProfiler, type ProfilerOptions } from "./profiler";
import { createMemoryStore } from "./store/memory-store";

const T0 = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const OPTIONS: ProfilerOptions = {
  storage: "memory",
  now: () => T0 + 30 * DAY,
  randomBytes: (length) => new Uint8Array(length).fill(7),
  currency: "EUR",
  rates: { USD: 0.9 },
};

/** Every kind of call the fold and the intake treat differently, good and bad. */
const HISTORY: HistoryEvent[] = [
  { name: "Product Viewed", properties: { product_id: "a", category: "Shoes", price: 40 }, timestamp: T0 },
  {
    name: "Product Added",
    properties: { product_id: "a", category: "Shoes", price: "$40.00" },
    timestamp: T0 + 1,
  },
  { name: "Product Removed", properties: { product_id: "a" }, timestamp: T0 + 2 },
  { name: "Checkout Started", properties: {}, timestamp: T0 + 3 },
  {
    name: "Order Completed",
    properties: {
      order_id: "o1",
      revenue: 60,
      products: { 0: { product_id: "a", category: "Shoes", price: 40 }, 1: { sku: "b", price: "x" } },
    },
    timestamp: T0 + DAY,
  },
  {
    name: "Order Completed",
    properties: { products: [{ product_id: "c", category: "Hats", price: 9 }] },
    timestamp: T0 + 2 * DAY,
  },
  {
    name: "Order Completed",
    properties: { order_id: "o2", total: 100, currency: "USD" },
    timestamp: "2026-06-05T00:00:00Z",
  },
  {
    name: "Order Completed",
    properties: { order_id: "o3", total: 5, currency: "GBP" },
    timestamp: T0 + 5 * DAY,
  },
  { name: "Order Refunded", properties: { order_id: "o1", total: 20 }, timestamp: T0 + 6 * DAY },
  { name: "Order Refunded", properties: { order_id: "o1", total: 20 }, timestamp: T0 + 7 * DAY },
  { name: "Order Refunded", properties: { order_id: "nope", total: 1 }, timestamp: T0 + 7 * DAY },
  { name: "Order Cancelled", properties: { order_id: "o2" }, timestamp: T0 + 8 * DAY },
  { name: "Order Refunded", properties: {}, timestamp: T0 + 8 * DAY },
  { name: "Promotion Viewed", properties: { promotion_id: "p" }, timestamp: T0 + 9 * DAY },
  { name: "Made Up Event", timestamp: T0 + 9 * DAY },
  {
    name: "Product Clicked",
    properties: { product_id: "d", category: ["Bags", "Totes"] },
    timestamp: "never",
  },
  { name: "Product List Viewed", properties: { category: "Bags" }, timestamp: T0 + 10 * DAY },
];

/** The same calls through a profiler: one `track()` each, then `getProfile()`. */
async function tracked(events: readonly HistoryEvent[], options: ProfilerOptions, asOf: number) {
  const profiler = createProfiler({ ...options, maxBatch: 3 });
  const results = [];
  for (const event of events) {
    results.push(await profiler.track(event.name, event.properties, { timestamp: event.timestamp }));
  }
  const profile = await profiler.getProfile({ asOf });
  await profiler.close();
  return { profile, results };
}

describe("importHistory", () => {
  it("gives exactly the profile and results of track() + getProfile() for every kind of event", async () => {
    const asOf = T0 + 20 * DAY;
    const expected = await tracked(HISTORY, OPTIONS, asOf);
    const imported = await importHistory(HISTORY, { ...OPTIONS, asOf });
    expect(imported).toEqual(expected);
    // The history exercises what it claims to: drops of each kind, and a fold of the rest.
    expect(imported.profile.dropped.byReason).toEqual({
      duplicate_refund: 1,
      unknown_order: 1,
      invalid_event: 1,
      unused_event: 1,
      unknown_event: 1,
    });
    expect(imported.profile.eventCount).toBe(HISTORY.length - 5);
    expect(imported.profile.dropped.unusedEvents).toEqual({ "Promotion Viewed": 1 });
    expect(imported.profile.features.refunds).toBeGreaterThan(0);
  });

  it("differs as soon as one event is missing or repeated", async () => {
    const asOf = T0 + 20 * DAY;
    const imported = await importHistory(HISTORY, { ...OPTIONS, asOf });
    const missing = await tracked(HISTORY.slice(1), OPTIONS, asOf);
    const twice = await tracked([HISTORY[0] as HistoryEvent, ...HISTORY], OPTIONS, asOf);
    expect(imported.profile).not.toEqual(missing.profile);
    expect(imported.profile).not.toEqual(twice.profile);
  });

  it("rejects like a strict track() on the first bad event", async () => {
    const bad: HistoryEvent[] = [
      { name: "Product Viewed", properties: { product_id: "a" }, timestamp: T0 },
      { name: "Product Viewed", properties: { product_id: "b", price: "lots" }, timestamp: T0 },
    ];
    const profiler = createProfiler({ ...OPTIONS, strict: true });
    const first = bad[1] as HistoryEvent;
    const rejection = await profiler.track(first.name, first.properties).catch((error: unknown) => error);
    await profiler.close();
    await expect(importHistory(bad, { ...OPTIONS, strict: true })).rejects.toEqual(rejection);
    expect(rejection).toBeInstanceOf(Error);
    expect(String(rejection)).toContain("price");
  });

  it("hands the folded profile to the store in one adopt, with the raw events retention keeps", async () => {
    const store = createMemoryStore();
    const options = { ...OPTIONS, retention: { maxEvents: 4 }, store };
    const { profile } = await importHistory(HISTORY, options);
    const events = await store.events();
    expect(events).toHaveLength(4);
    expect(events.map((e) => e.t)).toEqual([...events.map((e) => e.t)].sort((a, b) => a - b));
    const reduce = (base: FeatureState | null) => {
      if (!base) throw new Error("the store holds no state");
      return base;
    };
    const folded = await store.fold(reduce, {
      maxEvents: 4,
      maxAgeMs: 90 * DAY,
      now: T0,
    });
    expect(folded.state.eventCount).toBe(profile.eventCount);
    await expect(importHistory(HISTORY, options)).rejects.toThrow(/already holds a profile/);
  });
});
