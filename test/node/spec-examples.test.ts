/**
 * Every example payload of Segment's published V2 e-commerce spec (and the V1 spec), fed
 * verbatim to `track()` as a storefront would, plus payloads in the shapes common shop
 * platforms send (`test/vectors/shop-platform-payloads.json`). None may be rejected; each is
 * kept or dropped, with the money it carries counted right.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { isUsedEvent, resolveEventName, SPEC_EVENT_NAMES } from "../../sdk/src/events/catalogue";
import { orderValue } from "../../sdk/src/features/money";
import { emptyFeatureState } from "../../sdk/src/features/state";
import { createProfiler, type ProfilerOptions } from "../../sdk/src/profiler";
import { intake } from "../../sdk/src/track";

const VECTORS = join(import.meta.dirname, "../vectors");
const Payload = z.object({ event: z.string(), properties: z.record(z.string(), z.unknown()) });
const SpecFile = z.object({ source: z.string(), v2: z.array(Payload), v1: z.array(Payload) });
const ShopFile = z.object({
  source: z.string(),
  cases: z.array(
    z.object({
      label: z.string(),
      event: z.string(),
      decimal: z.enum([".", ","]).optional(),
      currency: z.string().optional(),
      properties: z.record(z.string(), z.unknown()),
      expect: z.object({
        kept: z.boolean(),
        reason: z.string().optional(),
        name: z.string().optional(),
        stored: z.record(z.string(), z.unknown()).optional(),
        orderValue: z.number().optional(),
        lines: z.number().optional(),
        warnings: z.array(z.string()).optional(),
      }),
    }),
  ),
});
const spec = SpecFile.parse(JSON.parse(readFileSync(join(VECTORS, "segment-ecommerce-v2.json"), "utf8")));
const shops = ShopFile.parse(JSON.parse(readFileSync(join(VECTORS, "shop-platform-payloads.json"), "utf8")));

/** Expands the size placeholders of the shop file (see its `notes`). */
function expand(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(expand);
  if (typeof value !== "object" || value === null) return value;
  const repeat = z
    .object({ $repeat: z.string(), times: z.number(), prefix: z.string().optional() })
    .safeParse(value);
  if (repeat.success) return (repeat.data.prefix ?? "") + repeat.data.$repeat.repeat(repeat.data.times);
  const lines = z.object({ $lines: z.number(), line: z.record(z.string(), z.unknown()) }).safeParse(value);
  if (lines.success) {
    return Array.from({ length: lines.data.$lines }, (_, i) => ({ product_id: `L${i}`, ...lines.data.line }));
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expand(v)]));
}

const device = (options: ProfilerOptions = {}) =>
  createProfiler({ storage: "memory", now: () => Date.UTC(2026, 0, 1), ...options });

describe("Segment's V2 e-commerce spec examples, verbatim", () => {
  it("covers all 28 events of the spec", () => {
    expect(spec.source).toContain("segment.com/docs/connections/spec/ecommerce/v2");
    expect(spec.v2.map((p) => p.event).sort()).toEqual([...SPEC_EVENT_NAMES].sort());
  });

  it("keeps or drops every example, rejects none, and warns about none", async () => {
    const profiler = device({ strict: true });
    const outcomes: Record<string, string> = {};
    for (const { event, properties } of spec.v2) {
      const result = await profiler.track(event, properties);
      outcomes[event] = result.kept ? "kept" : result.reason;
      expect(result.warnings, event).toEqual([]);
    }
    const expected = Object.fromEntries(
      spec.v2.map(({ event }) => {
        const name = resolveEventName(event);
        return [event, name && isUsedEvent(name) ? "kept" : "unused_event"];
      }),
    );
    expect(outcomes).toEqual(expected);
    const profile = await profiler.getProfile();
    expect(profile.eventCount).toBe(13);
    expect(profile.dropped.total).toBe(15);
    // The examples' one order: revenue 25 of a total 27.50, refunded (30 of the total, capped at
    // the order's 25), then cancelled: counted once, never negative.
    expect(profile.features).toMatchObject({ frequency: 0, revenue: 0, refunds: 0, monetary: 0 });
    await profiler.close();
  });

  it("the Order Completed example is worth its revenue, 25, and its refund nets it to 0", async () => {
    const profiler = device();
    const pick = (name: string) => spec.v2.find((p) => p.event === name)?.properties;
    await profiler.track("Order Completed", pick("Order Completed"));
    expect((await profiler.getProfile()).features).toMatchObject({ revenue: 25, monetary: 25, frequency: 1 });
    await profiler.track("Order Refunded", pick("Order Refunded"));
    expect((await profiler.getProfile()).features).toMatchObject({ revenue: 25, refunds: 25, monetary: 0 });
    await profiler.close();
  });

  it("keeps the V1 spec's examples under their V2 names, with V1 property spellings", async () => {
    const profiler = device({ strict: true });
    for (const { event, properties } of spec.v1) {
      expect(await profiler.track(event, properties), event).toEqual({ kept: true, warnings: [] });
    }
    const { features } = await profiler.getProfile();
    expect(features.counts).toEqual({
      "Product List Viewed": 1,
      "Product Viewed": 1,
      "Product Added": 1,
      "Product Removed": 1,
      "Order Completed": 1,
    });
    expect(features).toMatchObject({ frequency: 1, monetary: 25, viewToPurchase: 1 });
    await profiler.close();
  });
});

describe("payloads as shop platforms send them", () => {
  for (const c of shops.cases) {
    it(c.label, async () => {
      const properties = z.record(z.string(), z.unknown()).parse(expand(c.properties));
      const context = {
        currency: c.currency ?? "USD",
        rates: undefined,
        decimal: c.decimal ?? ".",
        now: () => 0,
        nextId: () => "t.0",
        view: emptyFeatureState,
      };
      const { stored, result } = intake(c.event, properties, undefined, context);
      expect(result.kept).toBe(c.expect.kept);
      if (!result.kept) expect(result.reason).toBe(c.expect.reason);
      if (c.expect.name) expect(stored?.name).toBe(c.expect.name);
      if (c.expect.stored) expect(stored?.p).toMatchObject(c.expect.stored);
      if (c.expect.orderValue !== undefined && stored) {
        expect(orderValue(stored.p)?.value).toBeCloseTo(c.expect.orderValue, 9);
      }
      if (c.expect.lines !== undefined) expect(stored?.p.products).toHaveLength(c.expect.lines);
      if (c.expect.warnings) expect(result.warnings.map((w) => w.field)).toEqual(c.expect.warnings);
      // Whatever came, the profiler itself resolves: it never rejects for input.
      const profiler = device(c.decimal ? { decimal: c.decimal } : {});
      await expect(profiler.track(c.event, properties)).resolves.toMatchObject({ kept: c.expect.kept });
      await profiler.close();
    });
  }
});
