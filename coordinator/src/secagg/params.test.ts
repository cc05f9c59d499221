import { describe, expect, it } from "vitest";
import {
  chooseParameters,
  collusionBound,
  failureBound,
  hypergeometricPmf,
  hypergeometricTail,
  simulateSurvival,
} from "./params";

describe("hypergeometric tails", () => {
  it("matches reference values (scipy.stats.hypergeom 1.17)", () => {
    expect(hypergeometricPmf(20, 7, 12, 3)).toBeCloseTo(0.19865841073271417, 12);
    expect(hypergeometricTail(20, 7, 12, 5)).toBeCloseTo(0.39164086687306504, 12);
  });

  it("sums to one", () => {
    let total = 0;
    for (let j = 0; j <= 54; j++) total += hypergeometricPmf(999, 300, 54, j);
    expect(total).toBeCloseTo(1, 10);
  });
});

describe("choosing k and t", () => {
  it("defaults to k = 54, t = 21 at n = 1,000 (30% dropout, ≥ 99.9% survival, γ = 5%, σ = 40)", () => {
    const p = chooseParameters({ n: 1000 });
    expect(p).toMatchObject({ k: 54, t: 21, complete: false });
    // Reference: scipy union bounds 2.557411954688e-4 and 8.6325769207e-13.
    expect(p.failureBound).toBeCloseTo(2.557411954688285e-4, 10);
    expect(p.collusionBound / 8.632576920724689e-13).toBeCloseTo(1, 6);
    expect(p.collusionBound).toBeLessThan(2 ** -40);
  });

  it("grows k like log n", () => {
    const ks = [1000, 10000].map((n) => chooseParameters({ n }).k);
    expect(ks[1]! - ks[0]!).toBeLessThan(20);
  });

  it("the simulation agrees: every one of 5,000 simulated rounds survives 30% dropout", () => {
    const { k, t } = chooseParameters({ n: 1000 });
    expect(simulateSurvival({ n: 1000, k, t, dropout: 0.3, rounds: 5000, seed: 7 })).toBeGreaterThanOrEqual(
      0.999,
    );
  });

  it("Flower's k = 6, t = 4 fails its threshold check in most rounds at 10% dropout", () => {
    // Flower keeps one of its num_shares shares itself (countSelf) and checks every node.
    const survival = simulateSurvival({
      n: 1000,
      k: 6,
      t: 4,
      dropout: 0.1,
      rounds: 2000,
      countSelf: true,
      seed: 3,
    });
    expect(survival).toBeLessThan(0.5);
    expect(failureBound({ n: 1000, k: 6, t: 4, dropout: 0.1, countSelf: true })).toBe(1);
  });

  it("a threshold at or below the colluders' reach is rejected by the collusion bound", () => {
    expect(collusionBound(1000, 54, 5, 0.05)).toBeGreaterThan(0.5);
  });
});
