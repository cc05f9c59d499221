/**
 * The FCF kind's halves: the round vector's shape never depends on the device's items, each part
 * stays within its clip (so the whole within the stated sensitivity), items outside the round's
 * block leave no trace, the tfjs and plain solves agree, the int8 download round-trips within half
 * a quantisation step, and the server's majorise-minimise step decreases the loss.
 */
import {
  applyFcf,
  clipRange,
  dequantiseFactors,
  fcfDimension,
  fcfOffsets,
  fcfSensitivity,
  initialFcfState,
  publishFcf,
  quantiseFactors,
} from "@fedprofile/coordinator/models";
import { FcfSpec } from "@fedprofile/coordinator/wire";
import * as tf from "@tensorflow/tfjs";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  blendPopularity,
  contributeFcf,
  contributeFcfSparse,
  decodeFcfModel,
  popularityZ,
  recommendItems,
  solveUserFactor,
  TF_MIN_ROWS,
  type Touched,
} from "../../sdk/src/models/fcf";

const spec = FcfSpec.parse({
  rank: 8,
  blockSize: 50,
  clipGram: 2,
  clipItems: 5,
  clipCurvature: 3,
  clipCounts: 2,
});
const items = Array.from({ length: 400 }, (_, i) => `P${i}`);
const state = initialFcfState(spec, items.length);
const model = decodeFcfModel({ modelId: "recs", version: 1, ...publishFcf(spec, { items }, state) });
const block = { index: 1, start: 50, size: 50 };
const norm = (v: Float64Array, a: number, b: number) => Math.hypot(...v.subarray(a, b));
const touchedArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 399 }), { maxLength: 300 })
  .chain((rows) =>
    fc.tuple(
      fc.constant(rows.sort((a, b) => a - b)),
      fc.array(fc.integer({ min: 0, max: 20 }), { minLength: rows.length, maxLength: rows.length }),
    ),
  )
  .map(([rows, w]): Touched[] =>
    rows.map((row, i) => ({ row, purchases: w[i] ?? 0, confidence: 1 + 10 * (w[i] ?? 0) + 0.5 })),
  );

beforeAll(async () => {
  await tf.setBackend("cpu");
});

describe("fcf device half", () => {
  it("has one shape whatever the device holds, each part within its clip, the whole within the sensitivity", () => {
    const off = fcfOffsets(spec);
    fc.assert(
      fc.property(touchedArb, (touched) => {
        const v = contributeFcf(spec, block, model, touched);
        expect(v.length).toBe(fcfDimension(spec));
        expect(norm(v, off.gram, off.items)).toBeLessThanOrEqual(spec.clipGram + 1e-9);
        expect(norm(v, off.items, off.curvature)).toBeLessThanOrEqual(spec.clipItems + 1e-9);
        expect(norm(v, off.curvature, off.counts)).toBeLessThanOrEqual(spec.clipCurvature + 1e-9);
        expect(norm(v, off.counts, off.end)).toBeLessThanOrEqual(spec.clipCounts + 1e-9);
        expect(norm(v, 0, v.length)).toBeLessThanOrEqual(fcfSensitivity(spec) + 1e-9);
      }),
      { numRuns: 40 },
    );
  });

  it("builds the dense vector from its sparse parts exactly as the dense computation does", () => {
    const off = fcfOffsets(spec);
    const r = spec.rank;
    fc.assert(
      fc.property(touchedArb, (touched) => {
        const x = solveUserFactor(spec, model, touched);
        // The dense computation (the pre-sparse contributeFcf), kept here as the reference.
        const ref = new Float64Array(off.end);
        let norm2 = 0;
        for (let a = 0; a < r; a++) {
          norm2 += (x[a] as number) ** 2;
          for (let b = 0; b < r; b++) ref[a * r + b] = (x[a] as number) * (x[b] as number);
        }
        for (const t of touched) {
          const k = t.row - block.start;
          if (k < 0 || k >= block.size) continue;
          let dot = 0;
          for (let a = 0; a < r; a++) dot += (x[a] as number) * (model.factors[t.row * r + a] as number);
          const coef = (t.confidence - 1) * dot - t.confidence;
          for (let a = 0; a < r; a++) ref[off.items + k * r + a] = coef * (x[a] as number);
          ref[off.curvature + k] = (t.confidence - 1) * norm2;
          if (t.purchases > 0) ref[off.counts + k] = 1;
        }
        clipRange(ref, off.gram, off.items, spec.clipGram);
        clipRange(ref, off.items, off.curvature, spec.clipItems);
        clipRange(ref, off.curvature, off.counts, spec.clipCurvature);
        clipRange(ref, off.counts, off.end, spec.clipCounts);
        const v = contributeFcf(spec, block, model, touched, x);
        const sparse = contributeFcfSparse(spec, block, model, touched, x);
        expect(sparse.slots.length).toBe(touched.filter((t) => t.row >= 50 && t.row < 100).length);
        for (let i = 0; i < ref.length; i++) expect(v[i]).toBeCloseTo(ref[i] as number, 12);
      }),
      { numRuns: 40 },
    );
  });

  it("leaves no trace of items outside the round's block (beyond the user factor's own outer product)", () => {
    const off = fcfOffsets(spec);
    const inBlock: Touched[] = [{ row: 60, purchases: 2, confidence: 21 }];
    const outside: Touched[] = [
      { row: 3, purchases: 1, confidence: 11 },
      { row: 300, purchases: 4, confidence: 41 },
    ];
    const both = [...outside.slice(0, 1), ...inBlock, ...outside.slice(1)];
    const x = solveUserFactor(spec, model, both);
    const a = contributeFcf(spec, block, model, both, x);
    const b = contributeFcf(spec, block, model, inBlock, x);
    expect(Array.from(a.subarray(off.items))).toEqual(Array.from(b.subarray(off.items)));
    // Exactly the bought block item's count slot is set.
    const counts = Array.from(a.subarray(off.counts, off.end));
    expect(counts.filter((c) => c !== 0)).toHaveLength(1);
    expect(counts[60 - block.start]).toBeGreaterThan(0);
  });

  it("with curvature from counts sends no curvature, takes none of the sensitivity, and scales the count slots", () => {
    const dp = FcfSpec.parse({ ...spec, curvature: "counts", countScale: 10, clipCounts: 30 });
    const off = fcfOffsets(dp);
    expect(fcfSensitivity(dp)).toBeCloseTo(Math.hypot(dp.clipGram, dp.clipItems, dp.clipCounts), 12);
    fc.assert(
      fc.property(touchedArb, (touched) => {
        const v = contributeFcf(dp, block, model, touched);
        expect(v.subarray(off.curvature, off.counts).every((h) => h === 0)).toBe(true);
        const bought = touched.filter(
          (t) => t.purchases > 0 && t.row >= block.start && t.row < block.start + block.size,
        );
        const slots = v.subarray(off.counts, off.end);
        // Each bought block item's slot holds countScale, scaled down only by the part's clip.
        const expected = Math.min(10, 30 / Math.sqrt(Math.max(1, bought.length)));
        for (const t of bought) expect(slots[t.row - block.start]).toBeCloseTo(expected, 9);
        expect(norm(v, 0, v.length)).toBeLessThanOrEqual(fcfSensitivity(dp) + 1e-9);
      }),
      { numRuns: 30 },
    );
  });

  it("solves the user factor the same on tfjs (from TF_MIN_ROWS rows) and in plain loops", () => {
    const touched = Array.from({ length: TF_MIN_ROWS }, (_, i) => ({
      row: i,
      purchases: 1,
      confidence: 3 + (i % 5),
    }));
    const viaTf = solveUserFactor(spec, model, touched);
    const viaLoops = solveUserFactor(spec, model, touched.slice(0, TF_MIN_ROWS - 1));
    // Both paths satisfy the float64 normal equations of their inputs.
    const r = spec.rank;
    const a = Float64Array.from(model.gram);
    const b = new Float64Array(r);
    for (let k = 0; k < r; k++) a[k * r + k] = (a[k * r + k] as number) + spec.lambda;
    for (const t of touched) {
      for (let p = 0; p < r; p++) {
        const vp = model.factors[t.row * r + p] as number;
        b[p] = (b[p] as number) + t.confidence * vp;
        for (let q = 0; q < r; q++)
          a[p * r + q] =
            (a[p * r + q] as number) + (t.confidence - 1) * vp * (model.factors[t.row * r + q] as number);
      }
    }
    const check = (x: Float64Array, a: Float64Array, b: Float64Array) => {
      for (let p = 0; p < r; p++) {
        let s = 0;
        for (let q = 0; q < r; q++) s += (a[p * r + q] as number) * (x[q] as number);
        expect(s).toBeCloseTo(b[p] as number, 3);
      }
    };
    check(viaTf, a, b);
    // Removing the last row's terms gives the system the loop path solved.
    const last = touched[TF_MIN_ROWS - 1] as Touched;
    for (let p = 0; p < r; p++) {
      const vp = model.factors[last.row * r + p] as number;
      b[p] = (b[p] as number) - last.confidence * vp;
      for (let q = 0; q < r; q++)
        a[p * r + q] =
          (a[p * r + q] as number) - (last.confidence - 1) * vp * (model.factors[last.row * r + q] as number);
    }
    check(viaLoops, a, b);
  });

  it("recommends without what was bought, within categories, and falls back to DP popularity", () => {
    const categories = items.map((_, i) => (i % 2 === 0 ? "even" : "odd"));
    const withCats = {
      ...model,
      categories,
      popularity: items.map((_, i) => (i === 7 ? 50 : i === 9 ? 40 : 0)),
    };
    const touched: Touched[] = [
      { row: 10, purchases: 1, confidence: 11 },
      { row: 11, purchases: 0, confidence: 2 },
    ];
    const recs = recommendItems(spec, withCats, touched, 20, { categories: ["odd"] });
    expect(recs).toHaveLength(20);
    expect(recs.every((r) => r.category === "odd" && r.productId !== "P10")).toBe(true);
    expect(recs.every((r) => r.reason.kind === "similar" && r.reason.productId === "P10")).toBe(true);
    const cold = recommendItems(spec, withCats, [], 2);
    expect(cold.map((r) => [r.productId, r.reason.kind])).toEqual([
      ["P7", "popular"],
      ["P9", "popular"],
    ]);
  });
});

describe("fcf popularity blend", () => {
  // DP counts falling with the row (0 from row 200): the top of the catalogue is rows 0, 1, 2, ...
  const counts = items.map((_, i) => Math.max(0, 400 - 2 * i));
  const touched: Touched[] = [
    { row: 101, purchases: 1, confidence: 11 },
    { row: 203, purchases: 2, confidence: 21 },
    { row: 307, purchases: 1, confidence: 11 },
  ];
  const noisy = { ...model, modelId: "pop-blend", popularity: counts };
  const factorTop = (n: number) => {
    const x = solveUserFactor(spec, noisy, touched);
    return items
      .map((_, i) => {
        let dot = 0;
        for (let a = 0; a < spec.rank; a++)
          dot += (noisy.factors[i * spec.rank + a] as number) * (x[a] as number);
        return [i, dot] as const;
      })
      .filter(([i]) => !touched.some((t) => t.row === i))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([i]) => items[i]);
  };

  it("with uninformative (initial) factors and a popularity weight, ranks by the DP popularity", () => {
    const recs = recommendItems({ ...spec, popularityWeight: 4 }, noisy, touched, 10);
    const top = new Set(items.slice(0, 100));
    expect(recs.filter((r) => top.has(r.productId)).length).toBeGreaterThanOrEqual(9);
    expect(recs.every((r) => r.reason.kind === "similar")).toBe(true);
    // The factor score alone ranks these factors' noise.
    expect(factorTop(10).filter((id) => top.has(id as string)).length).toBeLessThan(5);
  });

  it("with weight 0 is the factor score's ranking; blendPopularity standardises before it adds", () => {
    expect(recommendItems(spec, noisy, touched, 10).map((r) => r.productId)).toEqual(factorTop(10));
    const z = popularityZ(counts);
    expect(Math.abs(z.reduce((a, b) => a + b, 0))).toBeLessThan(1e-3);
    const scores = Float64Array.from([2, 4, 6, 8]);
    blendPopularity(scores, Float32Array.from([1, 0, 0, -1]), 0.5);
    const sd = Math.sqrt(5);
    expect(Array.from(scores)).toEqual(
      [-3 / sd + 0.5, -1 / sd, 1 / sd, 3 / sd - 0.5].map((v) => expect.closeTo(v, 9)),
    );
  });
});

describe("fcf download and server half", () => {
  it("round-trips the int8 factors within half a step per row", () => {
    const q = quantiseFactors(state.factors, items.length, spec.rank);
    expect(q.length).toBe(items.length * (4 + spec.rank));
    const back = dequantiseFactors(q, items.length, spec.rank);
    for (let i = 0; i < items.length; i++) {
      const row = state.factors.subarray(i * spec.rank, (i + 1) * spec.rank);
      const step = Math.max(...Array.from(row, Math.abs)) / 127;
      for (let k = 0; k < spec.rank; k++) {
        expect(Math.abs((back[i * spec.rank + k] as number) - (row[k] as number))).toBeLessThanOrEqual(
          step / 2 + 1e-7,
        );
      }
    }
  });

  it("takes a majorise-minimise step that lowers the block's loss (exact sums)", () => {
    const users: Touched[][] = Array.from({ length: 60 }, (_, u) =>
      [...new Set([u % 50, (u * 7) % 50, 50 + (u % 17)])]
        .sort((a, b) => a - b)
        .map((row) => ({ row, purchases: 1, confidence: 11 })),
    );
    const full = { index: 0, start: 0, size: 50 };
    // The loss in Y for the users' factors fixed (what one server step minimises).
    const xs = users.map((t) => solveUserFactor(spec, model, t));
    const loss = (f: Float32Array) => {
      let l = 0;
      for (const [u, t] of users.entries()) {
        const x = xs[u] as Float64Array;
        for (let j = 0; j < 50; j++) {
          let dot = 0;
          for (let a = 0; a < spec.rank; a++) dot += (x[a] as number) * (f[j * spec.rank + a] as number);
          const hit = t.find((h) => h.row === j);
          l += (hit ? hit.confidence : 1) * ((hit ? 1 : 0) - dot) ** 2;
        }
      }
      return l;
    };
    const sum = new Float64Array(fcfDimension(spec));
    for (const t of users) {
      const v = contributeFcf(
        { ...spec, clipGram: 1000, clipItems: 1000, clipCurvature: 1000, clipCounts: 1000 },
        full,
        model,
        t,
      );
      for (let k = 0; k < v.length; k++) sum[k] = (sum[k] as number) + (v[k] as number);
    }
    const update = applyFcf(spec, { items }, state, full, sum, {
      contributors: users.length,
      noiseStddev: 0,
    });
    expect(loss(update.state.factors)).toBeLessThan(loss(state.factors));
    const bought = users.reduce((n, t) => n + t.filter((h) => h.row < 50).length, 0);
    expect(update.params.popularity.slice(0, 50).reduce((a, b) => a + b, 0)).toBe(bought);
    expect(() =>
      applyFcf(spec, { items }, state, full, sum.subarray(1), { contributors: 1, noiseStddev: 0 }),
    ).toThrow(/expected/);
  });

  it("with curvature from counts divides countScale out, averages a row's count releases, and steps the block's rows", () => {
    const dp = FcfSpec.parse({ ...spec, curvature: "counts", countScale: 10, clipCounts: 1e3 });
    const users: Touched[][] = Array.from({ length: 60 }, (_, u) =>
      [...new Set([u % 50, (u * 7) % 50])]
        .sort((a, b) => a - b)
        .map((row) => ({ row, purchases: 1, confidence: 11 })),
    );
    const full = { index: 0, start: 0, size: 50 };
    const sum = new Float64Array(fcfDimension(dp));
    for (const t of users) {
      const v = contributeFcf({ ...dp, clipGram: 1000, clipItems: 1000 }, full, model, t);
      for (let k = 0; k < v.length; k++) sum[k] = (sum[k] as number) + (v[k] as number);
    }
    const off = fcfOffsets(dp);
    const first = applyFcf(dp, { items }, state, full, sum, { contributors: 60, noiseStddev: 0 });
    const bought = users.reduce((n, t) => n + t.length, 0);
    expect(first.params.popularity.slice(0, 50).reduce((a, b) => a + b, 0)).toBe(bought);
    expect(first.state.factors).not.toEqual(state.factors);
    // A second release of the same block with every count off by +6 (noise): the mean of the two.
    const noisy = Float64Array.from(sum);
    for (let k = 0; k < 50; k++) noisy[off.counts + k] = (noisy[off.counts + k] as number) + 60;
    const second = applyFcf(dp, { items }, first.state, full, noisy, { contributors: 60, noiseStddev: 0 });
    for (let k = 0; k < 50; k++)
      expect(second.state.popularity[k]).toBeCloseTo((first.state.popularity[k] as number) + 3, 9);
  });
});
