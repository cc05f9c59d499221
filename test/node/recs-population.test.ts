/**
 * The recommendation eval's populations: seeded samples of the real customers, and synthetic
 * customers resampled from them with new baskets (kept invoices, co-purchase swaps, jittered
 * times), so a scale-up does not hand each held-out item to its twins.
 */
import { describe, expect, it } from "vitest";
import { leaveLastOut, type RetailInvoice } from "../../examples/eval/recs-data";
import { recsCustomers, syntheticCustomers } from "../../examples/eval/recs-population";

const DAY = 86_400_000;
/** 40 real customers, each 6 invoices of 4 lines over a catalogue of 60 products. */
const real: RetailInvoice[][] = Array.from({ length: 40 }, (_, c) =>
  Array.from({ length: 6 }, (_, i) => ({
    refund: false,
    t: Date.UTC(2011, 0, 1) + (c + i * 7) * DAY,
    products: Array.from({ length: 4 }, (_, k) => ({ product_id: `p${(c * 3 + i * 5 + k) % 60}` })),
  })),
);
const basket = (c: readonly RetailInvoice[]) =>
  c.flatMap((i) => i.products.map((p) => p.product_id ?? "")).join(",");

describe("recs eval populations", () => {
  it("samples real customers with the seed, and retail is all of them", () => {
    expect(recsCustomers(real, "retail", 1)).toHaveLength(40);
    const a = recsCustomers(real, "sample-10", 1);
    expect(a).toHaveLength(10);
    expect(recsCustomers(real, "sample-10", 1)).toEqual(a);
    for (const c of a) expect(real).toContain(c);
    expect(() => recsCustomers(real, "twins-3", 1)).toThrow(/twins-3/);
  });

  it("makes N synthetic customers over the real catalogue, with baskets that are not copies", () => {
    const synthetic = syntheticCustomers(real, 400, 7);
    expect(synthetic).toHaveLength(400);
    expect(syntheticCustomers(real, 400, 7)).toEqual(synthetic);
    const catalogue = new Set(real.flatMap((c) => c.flatMap((i) => i.products.map((p) => p.product_id))));
    for (const c of synthetic) {
      expect(c.length).toBeGreaterThan(0);
      for (const i of c) for (const p of i.products) expect(catalogue).toContain(p.product_id);
    }
    // Ten twins a real customer, yet almost every synthetic basket is new.
    const realBaskets = new Set(real.map(basket));
    const copies = synthetic.filter((c) => realBaskets.has(basket(c))).length;
    expect(copies).toBeLessThan(0.05 * synthetic.length);
    expect(new Set(synthetic.map(basket)).size).toBeGreaterThan(0.95 * synthetic.length);
    // The leave-last-out split takes them like real customers.
    const split = leaveLastOut(synthetic);
    expect(split.users.length).toBeGreaterThan(390);
    expect(split.items.length).toBeLessThanOrEqual(60);
  });
});
