import {
  discreteGaussianRdp,
  FEDERATED_RDP_ORDERS,
  gaussianRdp,
  poissonSubsampledGaussianRdp,
  roundedL2NormBound,
  skellamRdp,
  skellamRdpSingle,
  subsampledRdpUpperBound,
} from "@fedprofile/protocol/dp";
import { describe, expect, it } from "vitest";
import { relErr, dpVectors as v } from "../../../test/vectors/dp-accounting.ts";
import { calibrateDistributedDiscreteGaussian, distributedDiscreteGaussianEpsilon } from "./calibration.ts";
import { rdpToEpsilon } from "./conversion.ts";

const F = FEDERATED_RDP_ORDERS;

describe("distributed discrete Gaussian accounting (KLS21) vs google-research/federated", () => {
  it("ddgauss_epsilon rows, with and without the rounding inflation", () => {
    for (const r of v.distributed_dp.ddgauss_epsilon_rows) {
      const base = {
        gamma: r.gamma,
        localStddev: r.local_stddev,
        noiseShares: r.num_clients,
        l2Sensitivity: r.l2_sens,
        beta: r.beta,
        dim: r.dim,
        samplingRate: r.q,
        steps: r.steps,
        delta: r.delta,
      };
      const a = distributedDiscreteGaussianEpsilon(base);
      expect(relErr(a.epsilon, r.epsilon)).toBeLessThan(1e-9);
      expect(a.optimalOrder).toBe(r.optimal_order);
      const b = distributedDiscreteGaussianEpsilon({ ...base, rounding: false });
      expect(relErr(b.epsilon, r.epsilon_no_rounding_inflation)).toBeLessThan(1e-9);
      expect(b.optimalOrder).toBe(r.optimal_order_no_rounding);
    }
  });

  it("compute_rdp_dgaussian rows (Prop. 14 with the Zhu-Wang subsampling bound)", () => {
    for (const r of v.distributed_dp.compute_rdp_dgaussian_rows) {
      const p = { samplingRate: r.q, l1Scale: r.l1_scale, l2Scale: r.l2_scale, tau: r.tau, dim: r.dim };
      r.orders.forEach((a, i) => {
        expect(relErr(r.steps * discreteGaussianRdp(p, a), r.rdp[i]!)).toBeLessThan(1e-9);
      });
    }
  });

  it("skellam_epsilon and skellam_rdp_single rows (AKL21 Theorem 3.5)", () => {
    for (const r of v.distributed_dp.skellam_epsilon_rows) {
      const base = {
        scale: r.scale,
        centralStddev: r.central_stddev,
        l2Sensitivity: r.l2_sens,
        beta: r.beta,
        dim: r.dim,
        samplingRate: r.q,
      };
      const a = rdpToEpsilon(
        F,
        F.map((o) => r.steps * skellamRdp(base, o)),
        r.delta,
      );
      expect(relErr(a.epsilon, r.epsilon)).toBeLessThan(1e-9);
      expect(a.optimalOrder).toBe(r.optimal_order);
      const b = rdpToEpsilon(
        F,
        F.map((o) => r.steps * skellamRdp({ ...base, rounding: false }, o)),
        r.delta,
      );
      expect(relErr(b.epsilon, r.epsilon_no_rounding_inflation)).toBeLessThan(1e-9);
    }
    for (const r of v.distributed_dp.skellam_rdp_single_rows) {
      for (const [k, val] of Object.entries(r.rdp_by_order)) {
        expect(
          relErr(skellamRdpSingle(r.l1_sens, r.l2_sens, r.central_var, r.scale, Number(k)), val),
        ).toBeLessThan(1e-12);
      }
    }
  });

  it("single discrete Gaussian = rho-zCDP (zcdp.discrete_gaussian rows)", () => {
    for (const r of v.zcdp.discrete_gaussian.rows) {
      const p = {
        samplingRate: 1,
        l1Scale: r.sensitivity / r.sigma,
        l2Scale: r.sensitivity / r.sigma,
        tau: 0,
        dim: 1,
      };
      const e = rdpToEpsilon(
        F,
        F.map((a) => r.compositions * discreteGaussianRdp(p, a)),
        r.delta,
      );
      expect(relErr(e.epsilon, r.epsilon_rdp_orders_2_to_128_256)).toBeLessThan(1e-9);
    }
  });
});

describe("bounds used by the distributed mechanisms", () => {
  it("conditional rounding bound (KLS21 Thm 1) is below the unconditional one and above the clip", () => {
    for (const beta of [0, Math.exp(-0.5), 0.1]) {
      const b = roundedL2NormBound(100, beta, 1024);
      expect(b).toBeGreaterThan(100);
      expect(b).toBeLessThanOrEqual(100 + 32);
    }
  });

  it("Zhu-Wang subsampling bound is at least the exact subsampled Gaussian and at most the unamplified", () => {
    for (const s of [0.8, 1, 2]) {
      for (const q of [0.01, 0.1]) {
        for (const a of [2, 5, 16, 64]) {
          const zw = subsampledRdpUpperBound(a, q, (l) => gaussianRdp(s, l));
          expect(zw).toBeGreaterThanOrEqual(poissonSubsampledGaussianRdp(q, s, a) * (1 - 1e-12));
        }
      }
    }
  });

  it("calibrates the local stddev so the guarantee holds with only the threshold surviving", () => {
    const target = {
      targetEpsilon: 3,
      delta: 1e-6,
      gamma: 1e-3,
      l2Sensitivity: 1,
      beta: Math.exp(-0.5),
      dim: 1024,
      samplingRate: 1,
      steps: 50,
      noiseShares: 80,
    };
    const c = calibrateDistributedDiscreteGaussian(target);
    expect(c.epsilon).toBeLessThanOrEqual(3);
    // More survivors than the threshold carry more noise: epsilon can only fall.
    const more = distributedDiscreteGaussianEpsilon({ ...target, localStddev: c.noise, noiseShares: 100 });
    expect(more.epsilon).toBeLessThan(c.epsilon);
    // Fewer noise shares than calibrated for would exceed the target.
    const fewer = distributedDiscreteGaussianEpsilon({ ...target, localStddev: c.noise, noiseShares: 60 });
    expect(fewer.epsilon).toBeGreaterThan(3);
  });
});
