import { kmeansDimension, kmeansSensitivity } from "@fedprofile/protocol/models";
import { KMeansSpec } from "@fedprofile/protocol/wire";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { contributeKMeans } from "./kmeans";
import { assignSegment } from "./segment";

const spec = KMeansSpec.parse({ k: 3 });
const centroids = {
  modelId: "segments",
  version: 4,
  segments: [
    { id: 0, label: "a", centroid: [0, 0, 0, 0, 0, 0, 0, 0, 0] },
    { id: 1, label: "b", centroid: [2, 0, 0, 0, 0, 0, 0, 0, 0] },
    { id: 2, label: "c", centroid: [0, 2, 0, 0, 0, 0, 0, 0, 0] },
  ],
};
const zVector = fc.array(fc.double({ min: -4, max: 4, noNaN: true }), { minLength: 9, maxLength: 9 });
const norm = (v: Float64Array) => Math.hypot(...v);

describe("k-means device half", () => {
  it("never exceeds the phase's stated L2 sensitivity, and its shape never depends on the data", () => {
    fc.assert(
      fc.property(zVector, fc.constantFrom("init" as const, "lloyd" as const), (z, phase) => {
        const out = contributeKMeans(spec, phase, centroids, z);
        expect(out.length).toBe(kmeansDimension(spec, phase));
        expect(norm(out)).toBeLessThanOrEqual(kmeansSensitivity(spec, phase) + 1e-9);
        // Exactly one count slot is set, to the count weight.
        const counts = Array.from(out).filter((_, i) => i % 10 === 0 && (phase === "lloyd" || i < 216 * 10));
        expect(counts.filter((c) => c !== 0)).toEqual([spec.countWeight]);
      }),
    );
  });

  it("puts the clipped vector in the nearest centroid's block", () => {
    const z = [1.8, 0.1, 0, 0, 0, 0, 0, 0, 0];
    const out = contributeKMeans(spec, "lloyd", centroids, z);
    expect(Array.from(out.subarray(10, 20))).toEqual([2, ...z]);
    expect(out.subarray(0, 10).every((v) => v === 0)).toBe(true);
    const far = contributeKMeans(spec, "lloyd", centroids, [12, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(far[11]).toBeCloseTo(spec.clip, 12);
  });

  it("fills one block per centroid of an over-seeded base model, within the same sensitivity", () => {
    const six = {
      ...centroids,
      segments: Array.from({ length: 6 }, (_, id) => ({
        id,
        label: `s${id}`,
        centroid: Array.from({ length: 9 }, (_, d) => (d === id ? 2 : 0)),
      })),
    };
    const z = [0, 0, 0, 0, 0, 1.9, 0, 0, 0];
    const out = contributeKMeans(spec, "lloyd", six, z);
    expect(out.length).toBe(6 * 10);
    expect(Array.from(out.subarray(50, 60))).toEqual([2, ...z]);
    expect(norm(out)).toBeLessThanOrEqual(kmeansSensitivity(spec, "lloyd") + 1e-9);
  });

  it("refuses a lloyd round without the base model's centroids, and a non-finite profile", () => {
    expect(() => contributeKMeans(spec, "lloyd", null, new Array(9).fill(0))).toThrow(/base model/);
    // More centroids than k · overseed (3 · 2) is not a base this spec can have produced.
    const seven = {
      ...centroids,
      segments: Array.from({ length: 7 }, (_, id) => ({ id, label: "x", centroid: new Array(9).fill(0) })),
    };
    expect(() => contributeKMeans(spec, "lloyd", seven, new Array(9).fill(0))).toThrow(/3 to 6 centroids/);
    expect(() => contributeKMeans(spec, "init", null, [Number.NaN, 0, 0, 0, 0, 0, 0, 0, 0])).toThrow(
      /not finite/,
    );
  });

  it("assigns the nearest segment with its distance", () => {
    const assigned = assignSegment(centroids, [0.2, 1.9, 0, 0, 0, 0, 0, 0, 0]);
    expect(assigned).toMatchObject({ modelId: "segments", version: 4, id: 2, label: "c" });
    expect(assigned.distance).toBeCloseTo(Math.hypot(0.2, 0.1), 12);
  });
});
