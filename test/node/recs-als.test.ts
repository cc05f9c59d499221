/**
 * The eval's fast implicit ALS (CSR, lower-triangle normal equations, in-place Cholesky) against
 * the earlier straightforward version kept here as the reference: the same factors on a small
 * fixture, and a fit that ranks the planted structure.
 */
import { seededUniform } from "@fedprofile/coordinator/models";
import { choleskySolve } from "@fedprofile/protocol/linalg";
import { describe, expect, it } from "vitest";
import { type AlsConfig, trainAls } from "../../examples/eval/recs-als";
import type { RecsData } from "../../examples/eval/recs-data";

/** The per-row `choleskySolve` ALS this eval used before (full r × r products, tuples). */
function referenceAls(data: RecsData, config: AlsConfig): { items: Float64Array; users: Float64Array[] } {
  const r = config.rank;
  const n = data.items.length;
  const random = seededUniform(config.seed);
  const y = Float64Array.from({ length: n * r }, () => (random() - 0.5) * (0.6 / Math.sqrt(r)));
  const byItem: Array<Array<[number, number]>> = Array.from({ length: n }, () => []);
  data.users.forEach((u, ui) => {
    for (const [row, w] of u.items) byItem[row]?.push([ui, w]);
  });
  const gram = (m: ArrayLike<number>, count: number) => {
    const g = new Float64Array(r * r);
    for (let i = 0; i < count; i++)
      for (let a = 0; a < r; a++)
        for (let b = 0; b < r; b++)
          g[a * r + b] = (g[a * r + b] as number) + (m[i * r + a] as number) * (m[i * r + b] as number);
    return g;
  };
  const solve = (g: Float64Array, rows: Array<[number, number]>, other: ArrayLike<number>) => {
    const a = Float64Array.from(g);
    const b = new Float64Array(r);
    for (let k = 0; k < r; k++) a[k * r + k] = (a[k * r + k] as number) + config.lambda;
    for (const [j, w] of rows) {
      const c = 1 + config.alpha * w;
      for (let p = 0; p < r; p++) {
        const vp = other[j * r + p] as number;
        b[p] = (b[p] as number) + c * vp;
        for (let q = 0; q < r; q++)
          a[p * r + q] = (a[p * r + q] as number) + (c - 1) * vp * (other[j * r + q] as number);
      }
    }
    return choleskySolve(a, b, r);
  };
  const xFlat = new Float64Array(data.users.length * r);
  for (let it = 0; it < config.iterations; it++) {
    const gy = gram(y, n);
    data.users.forEach((u, ui) => {
      xFlat.set(solve(gy, [...u.items], y), ui * r);
    });
    const gx = gram(xFlat, data.users.length);
    for (let j = 0; j < n; j++) y.set(solve(gx, byItem[j] ?? [], xFlat), j * r);
  }
  const gy = gram(y, n);
  return { items: y, users: data.users.map((u) => solve(gy, [...u.items], y)) };
}

/** 300 users in 3 taste groups over 60 items (20 each), plus a few cross purchases; item 59 unbought. */
function fixture(): RecsData {
  const random = seededUniform(5);
  const users = Array.from({ length: 300 }, (_, u) => {
    const group = u % 3;
    const items = new Map<number, number>();
    for (let k = 0; k < 8; k++)
      items.set(group * 20 + Math.floor(random() * 19), 1 + Math.floor(random() * 3));
    if (random() < 0.3) items.set(Math.floor(random() * 59), 1);
    return { items, heldOut: group * 20 + Math.floor(random() * 19) };
  });
  return { items: Array.from({ length: 60 }, (_, i) => `p${i}`), categories: Array(60).fill(null), users };
}

describe("recs eval: implicit ALS", () => {
  it("gives the reference implementation's factors (within float error)", () => {
    const data = fixture();
    const config = { rank: 6, alpha: 10, lambda: 1, iterations: 4, seed: 3 };
    const fast = trainAls(data, config);
    const ref = referenceAls(data, config);
    expect(fast.items).toHaveLength(ref.items.length);
    let worst = 0;
    for (let i = 0; i < ref.items.length; i++)
      worst = Math.max(worst, Math.abs((fast.items[i] as number) - (ref.items[i] as number)));
    ref.users.forEach((x, u) => {
      for (let a = 0; a < 6; a++)
        worst = Math.max(worst, Math.abs((fast.users[u]?.[a] as number) - (x[a] as number)));
    });
    expect(worst).toBeLessThan(1e-9);
    // The unbought item's row solves to zero in both.
    for (let a = 0; a < 6; a++) expect(fast.items[59 * 6 + a]).toBe(0);
  });

  it("ranks each user's own group first", () => {
    const data = fixture();
    const { items, users } = trainAls(data, { rank: 6, alpha: 10, lambda: 1, iterations: 6, seed: 1 });
    let inGroup = 0;
    users.forEach((x, u) => {
      const scores = Array.from({ length: 60 }, (_, j) => {
        let s = 0;
        for (let a = 0; a < 6; a++) s += (items[j * 6 + a] as number) * (x[a] as number);
        return { j, s };
      }).sort((p, q) => q.s - p.s);
      const top = scores.slice(0, 10);
      inGroup += top.filter(({ j }) => Math.floor(j / 20) === u % 3).length;
    });
    expect(inGroup / (300 * 10)).toBeGreaterThan(0.9);
  });
});
