/**
 * The ε = 8 divergence of the FCF server step, and the device's soft failure. Before the trust
 * region, 500 sampled Online Retail customers at rank 8 with the eval's DP clips (4 / 40 / 40 / 3)
 * threw `choleskySolve: matrix is not positive definite` on a device in round 9: the noisy MM step
 * was unbounded where the noisy G barely spans, the factors blew up, and the published YᵀY lost
 * definiteness in float64. Now the noisy Gram is projected to PSD, the step is damped by the noise
 * and bounded per row, rows stay in the factor ball, and a device that still cannot solve drops
 * out of the round with `model_unusable` instead of failing `sync()`.
 */
import { join } from "node:path";
import {
  applyFcf,
  initialFcfState,
  projectPsd,
  publishFcf,
  seededUniform,
} from "@fedprofile/coordinator/models";
import { FcfSpec } from "@fedprofile/coordinator/wire";
import { choleskySolve } from "@fedprofile/protocol/linalg";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCustomers } from "../../examples/eval/population";
import { leaveLastOut } from "../../examples/eval/recs-data";
import { trainFederatedRecs } from "../../examples/eval/recs-harness";
import { choleskySolveJitter, decodeFcfModel, FcfModelError, recommendItems } from "../../sdk/src/models/fcf";
import { failureOutcome } from "../../sdk/src/sync/plain-round";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const rowNorms = (f: ArrayLike<number>, items: number, r: number) =>
  Array.from({ length: items }, (_, j) => {
    let s = 0;
    for (let a = 0; a < r; a++) s += (f[j * r + a] as number) ** 2;
    return Math.sqrt(s);
  });

describe("fcf at ε = 8: the server step stays bounded", () => {
  it("trains the CI sample at ε = 8 with finite, bounded factors and a usable YᵀY on every device", async () => {
    const customers = await loadCustomers(
      join(import.meta.dirname, "../../examples/data/online_retail.csv.gz"),
    );
    const random = seededUniform(1);
    const picked = [...customers].map((c) => ({ c, k: random() })).sort((a, b) => a.k - b.k);
    const data = leaveLastOut(picked.slice(0, 500).map((p) => p.c));
    const r = 8;
    const steps: number[] = [];
    const run = await trainFederatedRecs(
      data,
      {
        spec: { rank: r, alpha: 10, lambda: 1, clipGram: 4, clipItems: 40, clipCurvature: 40, clipCounts: 3 },
        epsilon: 8,
        rounds: 12,
        seed: 1,
      },
      (_, info) => steps.push(info.metrics.maxRowStep ?? Number.NaN),
    );
    expect(run.epsilonSpent).toBeGreaterThan(0);
    expect(run.epsilonSpent).toBeLessThanOrEqual(8);
    expect(run.items.every(Number.isFinite)).toBe(true);
    // Factor ball 10 and trust radius 4 per round (the spec's defaults).
    expect(Math.max(...rowNorms(run.items, data.items.length, r))).toBeLessThanOrEqual(10 * 1.01);
    expect(steps).toHaveLength(12);
    for (const s of steps) expect(s).toBeLessThanOrEqual(4 + 1e-9);
    // Every device's user system against the final factors is positive definite without jitter.
    const spec = FcfSpec.parse({ rank: r, lambda: 1 });
    const state = { ...initialFcfState(spec, data.items.length), factors: run.items };
    const published = publishFcf(spec, { items: data.items }, state);
    const gram = Float64Array.from(published.params.gram);
    for (let k = 0; k < r; k++) gram[k * r + k] = (gram[k * r + k] as number) + 1;
    expect(() => choleskySolve(gram, new Float64Array(r).fill(1), r)).not.toThrow();
    expect(run.users.every((x) => x.every(Number.isFinite))).toBe(true);
  }, 120_000);

  it("projects a noisy Gram to PSD and never moves a row past the trust radius", () => {
    const spec = FcfSpec.parse({ rank: 4, blockSize: 10, trustRadius: 0.5, maxFactorNorm: 2 });
    const items = Array.from({ length: 10 }, (_, i) => `P${i}`);
    const state = initialFcfState(spec, items.length);
    const random = seededUniform(3);
    // An aggregate that is all noise (σ = 1000): an indefinite "Gram" and huge item parts.
    const noise = Array.from({ length: 16 + 10 * 6 }, () => 1000 * (random() - 0.5));
    const update = applyFcf(spec, { items }, state, { index: 0, start: 0, size: 10 }, noise, {
      contributors: 20,
      noiseStddev: 1000,
    });
    expect(update.metrics.negativeGramEigenvalues).toBeGreaterThan(0);
    const before = rowNorms(state.factors, 10, 4);
    const after = rowNorms(update.state.factors, 10, 4);
    for (let j = 0; j < 10; j++) {
      let d = 0;
      for (let a = 0; a < 4; a++)
        d += ((update.state.factors[j * 4 + a] as number) - (state.factors[j * 4 + a] as number)) ** 2;
      expect(Math.sqrt(d)).toBeLessThanOrEqual(0.5 + 1e-6);
      expect(after[j]).toBeLessThanOrEqual(2 + 1e-6);
      expect(before[j]).toBeGreaterThan(0);
    }
    const m = Float64Array.from([2, 3, 3, 2]); // eigenvalues 5 and −1
    expect(projectPsd(m, 2)).toBe(1);
    expect(Array.from(m).map((v) => Number(v.toFixed(6)))).toEqual([2.5, 2.5, 2.5, 2.5]);
  });
});

describe("fcf on the device: fails soft", () => {
  it("jitters a barely indefinite system, and names an unusable model instead of throwing a RangeError", () => {
    // Positive semi-definite and singular (rounding makes such a YᵀY + λI indefinite at large norms).
    const singular = Float64Array.from([1, 1, 1, 1 - 1e-17]);
    expect(() => choleskySolve(singular, Float64Array.from([1, 1]), 2)).toThrow(/not positive definite/);
    expect(choleskySolveJitter(singular, Float64Array.from([1, 1]), 2, "m").every(Number.isFinite)).toBe(
      true,
    );
    const indefinite = Float64Array.from([1, 0, 0, -1]);
    expect(() => choleskySolveJitter(indefinite, Float64Array.from([1, 1]), 2, "fcf model recs v9")).toThrow(
      FcfModelError,
    );
    try {
      choleskySolveJitter(indefinite, Float64Array.from([1, 1]), 2, "fcf model recs v9");
    } catch (error) {
      expect((error as FcfModelError).code).toBe("model_unusable");
      expect((error as FcfModelError).message).toMatch(/fcf model recs v9: .*not positive definite/);
      // In a round, the device drops out with the reason; sync() does not throw.
      expect(failureOutcome(error, "r_1")).toEqual({
        status: "dropped",
        roundId: "r_1",
        reason: expect.stringMatching(/^model_unusable: fcf model recs v9/),
      });
    }
  });

  it("recommend() on a model whose user solve fails ranks by DP popularity", () => {
    const items = ["a", "b", "c"];
    const model = decodeFcfModel({
      modelId: "recs",
      version: 2,
      weights: new Uint8Array(3 * (4 + 2)),
      params: { rank: 2, items, gram: [-5, 0, 0, -5], popularity: [1, 9, 4] },
    });
    const recs = recommendItems({ lambda: 0.1 }, model, [{ row: 0, confidence: 2, purchases: 1 }], 2);
    expect(recs.map((r) => [r.productId, r.reason.kind])).toEqual([
      ["b", "popular"],
      ["c", "popular"],
    ]);
  });
});
