import { describe, expect, it } from "vitest";
import { relErr, dpVectors as v } from "../../../test/vectors/dp-accounting.ts";
import { composedGaussianEpsilon } from "./gaussian-exact.ts";
import { pldPoissonGaussianEpsilon } from "./pld.ts";

describe("PLD accountant (connect-the-dots, pessimistic) vs dp_accounting PLDAccountant", () => {
  // The cheaper rows (grid sizes grow as sigma shrinks; q = 1 is exact mu-GDP).
  const rows = v.pld_poisson_gaussian.rows.filter(
    (r) => (r.noise_multiplier >= 1 && r.steps <= 100) || r.sampling_rate === 1,
  );

  it(`matches epsilon_pld_pessimistic on ${rows.length} rows, inside Opacus' PRV bracket and below RDP`, () => {
    expect(rows.length).toBeGreaterThan(20);
    for (const r of rows) {
      const e = pldPoissonGaussianEpsilon({
        noiseMultiplier: r.noise_multiplier,
        samplingRate: r.sampling_rate,
        steps: r.steps,
        delta: r.delta,
      });
      expect(relErr(e, r.epsilon_pld_pessimistic)).toBeLessThan(1e-6);
      expect(e).toBeGreaterThanOrEqual(r.epsilon_prv_opacus_lower);
      expect(e).toBeLessThanOrEqual(r.epsilon_prv_opacus_upper);
      expect(e).toBeLessThanOrEqual(r.epsilon_rdp_dp_accounting);
    }
  }, 60_000);

  it("without sampling it is the exact composed Gaussian", () => {
    expect(pldPoissonGaussianEpsilon({ noiseMultiplier: 2, samplingRate: 1, steps: 10, delta: 1e-6 })).toBe(
      composedGaussianEpsilon(2, 10, 1e-6),
    );
  });

  it("validates its inputs", () => {
    expect(() =>
      pldPoissonGaussianEpsilon({ noiseMultiplier: 0, samplingRate: 0.1, steps: 1, delta: 1e-5 }),
    ).toThrow(RangeError);
    expect(() =>
      pldPoissonGaussianEpsilon({ noiseMultiplier: 1, samplingRate: 0.1, steps: 0, delta: 1e-5 }),
    ).toThrow(RangeError);
  });
});
