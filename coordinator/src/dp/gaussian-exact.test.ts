import { DEFAULT_RDP_ORDERS, laplaceRdp } from "@fedprofile/protocol/dp";
import { describe, expect, it } from "vitest";
import { relErr, dpVectors as v } from "../../../test/vectors/dp-accounting.ts";
import { rdpToDelta, rdpToEpsilon } from "./conversion.ts";
import { analyticGaussianSigma, composedGaussianEpsilon, gaussianDeltaForEpsilon } from "./gaussian-exact.ts";

const O = DEFAULT_RDP_ORDERS;

describe("Gaussian without subsampling (gaussian_no_subsampling)", () => {
  it("RDP epsilon on the default orders, and the exact mu-GDP epsilon (Balle & Wang 2018)", () => {
    for (const r of v.gaussian_no_subsampling.rows) {
      const rdp = O.map((a) => (r.compositions * a) / (2 * r.noise_multiplier ** 2));
      const e = rdpToEpsilon(O, rdp, r.delta);
      expect(relErr(e.epsilon, r.epsilon_rdp_default_orders)).toBeLessThan(1e-12);
      expect(e.optimalOrder).toBe(r.optimal_order);
      const exact = composedGaussianEpsilon(r.noise_multiplier, r.compositions, r.delta);
      expect(relErr(exact, r.epsilon_exact)).toBeLessThan(1e-9);
      expect(exact).toBeLessThanOrEqual(e.epsilon);
    }
  });

  it("delta for epsilon, exact and via RDP", () => {
    for (const r of v.gaussian_no_subsampling.delta_for_epsilon_rows) {
      const d = gaussianDeltaForEpsilon(Math.sqrt(r.compositions) / r.noise_multiplier, r.epsilon);
      expect(relErr(d, r.delta_exact)).toBeLessThan(1e-9);
      const rdp = O.map((a) => (r.compositions * a) / (2 * r.noise_multiplier ** 2));
      const viaRdp = rdpToDelta(O, rdp, r.epsilon);
      expect(relErr(viaRdp.delta, r.delta_rdp_default_orders)).toBeLessThan(1e-9);
      expect(viaRdp.optimalOrder).toBe(r.optimal_order);
    }
  });

  it("analytic Gaussian sigma (dp_accounting get_sigma_gaussian)", () => {
    for (const r of v.gaussian_no_subsampling.analytic_gaussian_sigma_rows) {
      expect(
        relErr(
          analyticGaussianSigma(r.epsilon, r.delta, r.sensitivity),
          r.sigma_dp_accounting_get_sigma_gaussian,
        ),
      ).toBeLessThan(1e-9);
    }
  });
});

describe("zCDP and Laplace sections", () => {
  it("Gaussian rho = sens^2 / (2 sigma^2), and rho -> epsilon / delta with the CKS conversion", () => {
    for (const r of v.zcdp.gaussian_rho)
      expect(relErr(r.sensitivity ** 2 / (2 * r.sigma ** 2), r.rho)).toBeLessThan(1e-15);
    for (const r of v.zcdp.rho_to_epsilon.rows) {
      const e = rdpToEpsilon(
        O,
        O.map((a) => a * r.rho),
        r.delta,
      );
      expect(relErr(e.epsilon, r.epsilon_cks_default_orders)).toBeLessThan(1e-12);
      expect(e.optimalOrder).toBe(r.optimal_order_default);
      expect(e.epsilon).toBeGreaterThanOrEqual(r.epsilon_exact_gaussian_same_rho);
    }
    for (const r of v.zcdp.delta_for_epsilon_rows) {
      const d = rdpToDelta(
        O,
        O.map((a) => a * r.rho),
        r.epsilon,
      );
      expect(relErr(d.delta, r.delta_cks_default_orders)).toBeLessThan(1e-9);
    }
  });

  it("Laplace RDP (Mironov 2017 Prop. 6) and its composition", () => {
    for (const r of v.laplace.rdp_rows)
      expect(relErr(laplaceRdp(1 / r.laplace_scale_b, r.order), r.rdp_mpmath)).toBeLessThan(1e-12);
    for (const r of v.laplace.rows) {
      const e = rdpToEpsilon(
        O,
        O.map((a) => r.compositions * laplaceRdp(1 / r.laplace_scale_b, a)),
        r.delta,
      );
      expect(relErr(e.epsilon, r.epsilon_rdp_default_orders)).toBeLessThan(1e-12);
      expect(e.optimalOrder).toBe(r.optimal_order);
    }
  });
});
