import "fake-indexeddb/auto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { InvalidEventError } from "./errors";
import { createProfiler, type Profiler, type ProfilerEvent, type ProfilerOptions } from "./profiler";
import { openIndexedDbStore } from "./store/indexeddb-store";
import type { TrackWarning } from "./track";

const T0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;
let clock = T0;
let dbCounter = 0;
const open: Profiler[] = [];

function device(options: ProfilerOptions = {}) {
  const events: ProfilerEvent[] = [];
  const profiler = createProfiler({ now: () => clock, storage: "memory", flushIntervalMs: 5, ...options });
  profiler.on((event) => events.push(event));
  open.push(profiler);
  const warnings = () => events.flatMap((e): TrackWarning[] => (e.type === "warning" ? [e.warning] : []));
  return { profiler, events, warnings };
}

afterEach(async () => {
  clock = T0;
  await Promise.all(open.splice(0).map((p) => p.close()));
});

describe("track(): analytics.js-style calls", () => {
  it("calls the callback in any position after the name, once, with the result, and keeps the promise", async () => {
    const { profiler } = device();
    const cb1 = vi.fn();
    const cb2 = vi.fn();
    const cb3 = vi.fn();
    const r1 = await profiler.track("Product Viewed", { product_id: "a" }, { timestamp: T0 - HOUR }, cb1);
    const r2 = await profiler.track("Product Viewed", { product_id: "b" }, cb2);
    const r3 = await profiler.track("Cart Viewed", cb3);
    expect([cb1, cb2, cb3].map((cb) => cb.mock.calls)).toEqual([[[r1]], [[r2]], [[r3]]]);
    expect(r3).toEqual({ kept: true, warnings: [] });
    const profile = await profiler.getProfile();
    expect(profile.eventCount).toBe(3);
    expect(profile.features.tenureDays).toBeCloseTo(1 / 24, 12);
  });

  it("reports a throwing callback as an error, without breaking tracking", async () => {
    const { profiler, events } = device();
    const result = await profiler.track("Cart Viewed", {}, () => {
      throw new Error("page bug");
    });
    expect(result.kept).toBe(true);
    expect(events.find((e) => e.type === "error")).toMatchObject({ error: { message: "page bug" } });
  });

  it("never rejects fire-and-forget: a custom event resolves, and is reported once per name", async () => {
    const { profiler, warnings } = device();
    // Fire and forget, as analytics.track is called: a rejection here would be an unhandled
    // rejection, which fails the vitest run.
    void profiler.track("Newsletter Signed Up", { email: "a@b.c" });
    const results = await Promise.all([
      profiler.track("Newsletter Signed Up", {}),
      profiler.track("Video Played", {}),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(results.map((r) => (r.kept ? "kept" : r.reason))).toEqual(["unknown_event", "unknown_event"]);
    expect(warnings().map((w) => w.event)).toEqual(["Newsletter Signed Up", "Video Played"]);
    expect((await profiler.getProfile()).eventCount).toBe(0);
  });

  it("counts and drops spec events the profile does not read; resolves V1 names", async () => {
    const { profiler, warnings } = device();
    expect(await profiler.track("Coupon Applied", { coupon_id: "may" })).toEqual({
      kept: false,
      reason: "unused_event",
      warnings: [],
    });
    await profiler.track("Promotion Viewed", { promotion_id: "p" });
    await profiler.track("Viewed Promotion", { promotion_id: "p" });
    await profiler.track("Viewed Product", { id: "507f", price: 18.99, category: "Games" });
    const profile = await profiler.getProfile();
    expect(profile.features.counts).toEqual({ "Product Viewed": 1 });
    expect(profile.features.affinities).toEqual([{ category: "Games", share: 1 }]);
    expect(profile.dropped).toEqual({
      total: 3,
      byReason: { unused_event: 3 },
      unusedEvents: { "Coupon Applied": 1, "Promotion Viewed": 2 },
    });
    expect(warnings()).toEqual([]);
  });
});

describe("track(): strict mode", () => {
  it("rejects bad input with an InvalidEventError naming the field, and still calls back", async () => {
    const { profiler } = device({ strict: true });
    const cb = vi.fn();
    await expect(profiler.track("Checkout Begun", {}, cb)).rejects.toBeInstanceOf(InvalidEventError);
    expect(cb).toHaveBeenCalledWith(expect.objectContaining({ kept: false, reason: "unknown_event" }));
    await expect(profiler.track("Product Added", { quantity: -1 })).rejects.toMatchObject({
      code: "invalid_event",
      field: "quantity",
      message:
        'Product Added: quantity: expected a number ≥ 0 or a numeric string such as "1,234.50" or "$19.99", ' +
        "got -1; the field was dropped",
    });
    await expect(profiler.track("Order Cancelled", {})).rejects.toMatchObject({ field: "order_id" });
    // Valid input that the profile does not read, or a refund of an unknown order, is not bad input.
    await expect(profiler.track("Coupon Denied", {})).resolves.toMatchObject({ reason: "unused_event" });
    await expect(profiler.track("Order Refunded", { order_id: "x" })).resolves.toMatchObject({
      reason: "unknown_order",
    });
  });
});

describe("track(): money bookkeeping end to end", () => {
  it("ignores and reports a refund of an unknown order, and a refund tracked twice", async () => {
    const { profiler, warnings } = device();
    expect(await profiler.track("Order Refunded", { order_id: "ghost", total: 80 })).toMatchObject({
      kept: false,
      reason: "unknown_order",
    });
    await profiler.track("Order Completed", { order_id: "o1", total: "100.00" });
    expect((await profiler.track("Order Refunded", { order_id: "o1", total: 30 })).kept).toBe(true);
    expect(await profiler.track("Order Refunded", { order_id: "o1", total: 30 })).toMatchObject({
      kept: false,
      reason: "duplicate_refund",
    });
    expect(warnings().map((w) => w.code)).toEqual(["unknown_order", "duplicate_refund"]);
    expect((await profiler.getProfile()).features).toMatchObject({ revenue: 100, refunds: 30, monetary: 70 });
  });

  it("counts an Order Completed without order_id, with a warning", async () => {
    const { profiler } = device();
    const result = await profiler.track("Order Completed", { revenue: 12 });
    expect(result).toMatchObject({ kept: true, warnings: [{ code: "missing_order_id", field: "order_id" }] });
    expect((await profiler.getProfile()).features).toMatchObject({ frequency: 1, monetary: 12 });
  });

  it("keeps a ¥3,000 order out of a euro shop's money without a rate, and converts it with one", async () => {
    const order = {
      order_id: "jp1",
      revenue: 3000,
      currency: "JPY",
      products: [{ price: 1500, quantity: 2 }],
    };
    const plain = device({ currency: "eur" });
    const result = await plain.profiler.track("Order Completed", order);
    expect(result).toMatchObject({
      kept: true,
      warnings: [{ code: "currency_unconverted", field: "currency" }],
    });
    const unconverted = await plain.profiler.getProfile();
    expect(unconverted.features).toMatchObject({ frequency: 1, monetary: 0, priceBand: null });
    expect(unconverted.tags).not.toContain("high_value");
    expect(unconverted.tags).not.toContain("premium_buyer");

    const rated = device({ currency: "EUR", rates: { jpy: 0.0061 } });
    expect((await rated.profiler.track("Order Completed", order)).warnings).toEqual([]);
    const converted = await rated.profiler.getProfile();
    expect(converted.features.monetary).toBeCloseTo(18.3, 9);
    expect(converted.features.priceBand).toBe("budget");
  });

  it("reports unusable currency options and rates once listeners are attached", async () => {
    const { warnings } = device({ currency: "euro", rates: { GBP: -1, USD: 1.1 } });
    await Promise.resolve();
    expect(warnings().map((w) => [w.code, w.message.split(":")[0]])).toEqual([
      ["invalid_option", "currency"],
      ["invalid_option", "rates.GBP"],
    ]);
  });
});

describe("track(): the open-cart signal", () => {
  it("tags cart_abandoner only after the cart sits for an hour, and Product Removed clears it", async () => {
    const { profiler } = device();
    await profiler.track("Product Added", { product_id: "a", price: 5 });
    expect((await profiler.getProfile()).tags).not.toContain("cart_abandoner");
    clock = T0 + 2 * HOUR;
    expect((await profiler.getProfile()).tags).toContain("cart_abandoner");
    await profiler.track("Product Removed", { product_id: "a" });
    clock = T0 + 4 * HOUR;
    expect((await profiler.getProfile()).features.openCartDays).toBeNull();
    await profiler.track("Wishlist Product Added to Cart", { sku: "S-9" });
    await profiler.track("Order Completed", { order_id: "o", products: [{ sku: "S-9", price: 5 }] });
    clock = T0 + 8 * HOUR;
    expect((await profiler.getProfile()).tags).not.toContain("cart_abandoner");
  });

  it("matches a product by sku when it has no product_id (view-to-purchase)", async () => {
    const { profiler } = device();
    await profiler.track("Product Viewed", { sku: "G-32" });
    await profiler.track("Order Completed", { order_id: "o", products: [{ sku: "G-32", price: 19 }] });
    expect((await profiler.getProfile()).features.viewToPurchase).toBe(1);
  });
});

describe("data minimisation on the device", () => {
  it("never writes review bodies, search queries or unread fields to IndexedDB", async () => {
    const dbName = `track-min-${dbCounter++}-${Date.now().toString(36)}`;
    const { profiler } = device({ storage: "indexeddb", dbName });
    await profiler.ready;
    await profiler.track("Product Reviewed", { product_id: "p", review_body: "SECRET-REVIEW", rating: "5" });
    await profiler.track("Products Searched", { query: "SECRET-QUERY" });
    await profiler.track("Product Viewed", { product_id: "p", name: "SECRET-NAME", url: "https://x/SECRET" });
    await profiler.flush();
    const store = await openIndexedDbStore({ name: dbName });
    const stored = JSON.stringify(await store.events());
    store.close();
    expect(stored).toContain('"Product Reviewed"');
    expect(stored).not.toContain("SECRET");
  });
});
