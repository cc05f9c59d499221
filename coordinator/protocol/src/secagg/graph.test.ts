import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildNeighbourGraph } from "./graph";

const seed = (b: number) => new Uint8Array(32).fill(b);

describe("neighbour graph", () => {
  it("is k-regular and symmetric over a random permutation", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 255 }),
        (half, extra, s) => {
          const k = 2 * half;
          const members = Array.from({ length: k + 2 + extra }, (_, i) => i * 3 + 1);
          const g = buildNeighbourGraph(seed(s), members, k);
          expect(g.complete).toBe(false);
          for (const u of members) {
            const nb = g.neighbours(u);
            expect(nb.length).toBe(k);
            expect(nb).not.toContain(u);
            for (const v of nb) {
              expect(g.neighbours(v)).toContain(u);
              expect(g.adjacent(u, v)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it("is deterministic in the seed and members, and differs across seeds", () => {
    const members = Array.from({ length: 100 }, (_, i) => i);
    const a = buildNeighbourGraph(seed(1), members, 8);
    const b = buildNeighbourGraph(seed(1), [...members].reverse(), 8);
    const c = buildNeighbourGraph(seed(2), members, 8);
    expect(members.map((u) => a.neighbours(u))).toEqual(members.map((u) => b.neighbours(u)));
    expect(members.map((u) => a.neighbours(u))).not.toEqual(members.map((u) => c.neighbours(u)));
  });

  it("uses the complete graph when N - 1 ≤ k (plain Bonawitz)", () => {
    const g = buildNeighbourGraph(seed(0), [5, 2, 9, 7], 4);
    expect(g.complete).toBe(true);
    expect(g.neighbours(2)).toEqual([5, 7, 9]);
    expect(g.neighbours(3)).toEqual([]);
  });

  it("rejects odd degrees, repeated members and short seeds", () => {
    expect(() => buildNeighbourGraph(seed(0), [1, 2, 3], 3)).toThrow(RangeError);
    expect(() => buildNeighbourGraph(seed(0), [1, 1, 3], 2)).toThrow(RangeError);
    expect(() => buildNeighbourGraph(new Uint8Array(16), [1, 2, 3], 2)).toThrow(RangeError);
  });
});
