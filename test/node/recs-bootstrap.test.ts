/**
 * The recs eval's paired bootstrap of an HR@10 difference ("clearly above popularity" is an
 * interval that excludes 0): exact on identical hits, above 0 for a real gain, around 0 for none.
 */
import { seededUniform } from "@fedprofile/coordinator/models";
import { describe, expect, it } from "vitest";
import { pairedBootstrap } from "../../examples/eval/recs-data";

const hits = (n: number, p: number, seed: number) => {
  const random = seededUniform(seed);
  return Uint8Array.from({ length: n }, () => (random() < p ? 1 : 0));
};

describe("recs eval: paired bootstrap of HR@10 differences", () => {
  it("is exactly 0 on identical hits", () => {
    const a = hits(500, 0.4, 1);
    expect(pairedBootstrap(a, a, 2)).toEqual({ difference: 0, low: 0, high: 0, resamples: 1000 });
  });

  it("excludes 0 for a real gain and covers the true difference", () => {
    const b = hits(4000, 0.45, 3);
    // a: b's hits plus 3 more in every 100 users (a gain of about +0.03 where b missed).
    const a = Uint8Array.from(b, (h, i) => (i % 100 < 3 ? 1 : h));
    const d = pairedBootstrap(a, b, 4);
    expect(d.difference).toBeGreaterThan(0.01);
    expect(d.low).toBeGreaterThan(0);
    expect(d.low).toBeLessThanOrEqual(d.difference);
    expect(d.high).toBeGreaterThanOrEqual(d.difference);
    expect(d.high - d.low).toBeLessThan(0.02);
  });

  it("covers 0 when two methods differ only by chance", () => {
    const d = pairedBootstrap(hits(4000, 0.45, 5), hits(4000, 0.45, 6), 7);
    expect(d.low).toBeLessThan(0);
    expect(d.high).toBeGreaterThan(0);
    expect(() => pairedBootstrap(hits(3, 0.5, 1), hits(4, 0.5, 1), 1)).toThrow(/paired/);
  });
});
