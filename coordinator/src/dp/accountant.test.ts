import {
  DEFAULT_RDP_ORDERS,
  poissonSubsampledGaussianRdp,
  poissonSubsampledGaussianRdpCurve,
} from "@fedprofile/protocol/dp";
import { describe, expect, it } from "vitest";
import { relErr, dpVectors as v } from "../../../test/vectors/dp-accounting.ts";
import { defaultDelta, poissonGaussianEpsilon, RdpAccountant } from "./accountant.ts";
import { calibrateNoiseMultiplier } from "./calibration.ts";
import { rdpToDelta, rdpToEpsilon } from "./conversion.ts";

/** Relative slack for "never below exact / never above dp_accounting": double rounding only. */
const ROUNDING = 1e-9;
const O = DEFAULT_RDP_ORDERS;

describe("RDP of the Poisson-subsampled Gaussian (MTZ19) vs reference vectors", () => {
  it("uses dp_accounting's default orders", () => {
    expect([...O]).toEqual(v.meta.rdp_default_orders);
  });

  it("matches the mpmath-exact per-step curve at every order (rdp_curves_per_step)", () => {
    let max = 0;
    for (const row of v.rdp_curves_per_step.rows) {
      const c = poissonSubsampledGaussianRdpCurve(row.sampling_rate, row.noise_multiplier, O);
      for (let k = 0; k < O.length; k++) {
        const exact = row.rdp_mpmath_exact[k]!;
        const got = c[k]!;
        max = Math.max(max, relErr(got, exact));
        // Never below exact beyond double rounding of A ~ 1 (absolute 1e-15 on tiny values).
        expect(got).toBeGreaterThanOrEqual(exact * (1 - ROUNDING) - 1e-15);
        expect(got).toBeLessThanOrEqual(row.rdp_dp_accounting[k]! * (1 + ROUNDING));
        // Integer orders: dp_accounting and TF Privacy are exact there too.
        if (Number.isInteger(O[k])) expect(relErr(got, row.rdp_tfp_a749ce4[k]!)).toBeLessThan(1e-8);
      }
    }
    expect(max).toBeLessThan(1e-7);
  });

  it("epsilon matches the exact column and stays within dp_accounting's (rdp_poisson_gaussian)", () => {
    let max = 0;
    for (const row of v.rdp_poisson_gaussian.rows) {
      const r = poissonGaussianEpsilon({
        noiseMultiplier: row.noise_multiplier,
        samplingRate: row.sampling_rate,
        steps: row.steps,
        delta: row.delta,
      });
      max = Math.max(max, relErr(r.epsilon, row.epsilon_mpmath_exact_rdp));
      expect(r.epsilon).toBeGreaterThanOrEqual(row.epsilon_mpmath_exact_rdp * (1 - ROUNDING));
      expect(r.epsilon).toBeLessThanOrEqual(row.epsilon * (1 + ROUNDING));
      expect(r.optimalOrder).toBe(row.optimal_order_mpmath_exact_rdp);
    }
    expect(max).toBeLessThan(1e-3);
  });

  it("delta for a target epsilon (rdp_poisson_gaussian_delta_for_epsilon)", () => {
    let max = 0;
    for (const row of v.rdp_poisson_gaussian_delta_for_epsilon.rows) {
      const acc = new RdpAccountant().compose(
        { kind: "poisson_gaussian", samplingRate: row.sampling_rate, noiseMultiplier: row.noise_multiplier },
        row.steps,
      );
      const d = acc.getDelta(row.epsilon);
      max = Math.max(max, relErr(d.delta, row.delta_mpmath_exact_rdp));
      expect(d.delta).toBeGreaterThanOrEqual(row.delta_mpmath_exact_rdp * (1 - ROUNDING));
      expect(d.delta).toBeLessThanOrEqual(row.delta * (1 + ROUNDING));
    }
    expect(max).toBeLessThan(1e-3);
  });

  it("reproduces the classic DP-SGD cases, e.g. MNIST epsilon 2.5967 at delta 1e-5", () => {
    // TF Privacy's compute_dp_sgd_privacy orders at a749ce4.
    const cliOrders = [
      1.25,
      1.5,
      1.75,
      2,
      2.25,
      2.5,
      3,
      3.5,
      4,
      4.5,
      ...Array.from({ length: 59 }, (_, i) => 5 + i),
    ];
    cliOrders.push(128, 256, 512);
    for (const c of v.dpsgd_classic_cases) {
      const q = {
        noiseMultiplier: c.noise_multiplier,
        samplingRate: c.sampling_rate,
        steps: c.steps,
        delta: c.delta,
      };
      const a = poissonGaussianEpsilon(q);
      expect(relErr(a.epsilon, c.default_orders.epsilon_tfp_a749ce4)).toBeLessThan(1e-9);
      expect(a.optimalOrder).toBe(c.default_orders.optimal_order);
      const b = poissonGaussianEpsilon({ ...q, orders: cliOrders });
      expect(relErr(b.epsilon, c.tfp_cli_orders.epsilon_tfp_a749ce4)).toBeLessThan(1e-9);
      expect(b.optimalOrder).toBe(c.tfp_cli_orders.optimal_order);
    }
    const mnist = v.dpsgd_classic_cases.find((c) => c.name === "mnist_dpsgd_tutorial");
    expect(mnist).toBeDefined();
    const e = poissonGaussianEpsilon({
      noiseMultiplier: 1.1,
      samplingRate: 256 / 60000,
      steps: 14063,
      delta: 1e-5,
    });
    expect(e.epsilon).toBeCloseTo(2.5967, 4);
  });
});

describe("fractional orders", () => {
  it("the signed series agrees with the integer expansion as the order approaches an integer", () => {
    for (const [q, s] of [
      [0.01, 1],
      [0.1, 2],
      [0.001, 0.8],
    ] as const) {
      for (const a of [2, 3, 5, 8]) {
        const near = poissonSubsampledGaussianRdp(q, s, a + 1e-7);
        const at = poissonSubsampledGaussianRdp(q, s, a);
        expect(relErr(near, at)).toBeLessThan(1e-5);
      }
    }
  });

  it("RDP is non-decreasing in the order (Rényi divergence monotonicity)", () => {
    const c = poissonSubsampledGaussianRdpCurve(0.05, 0.9, O);
    for (let k = 1; k < c.length; k++) expect(c[k]!).toBeGreaterThanOrEqual(c[k - 1]! * (1 - 1e-12));
  });
});

describe("RDP -> (epsilon, delta) conversion (dp_accounting rule set)", () => {
  it("returns 0 via the KL shortcut when delta^2 + expm1(-rdp) > 0", () => {
    expect(rdpToEpsilon([2, 3], [1e-12, 2e-12], 1e-5)).toEqual({ epsilon: 0, optimalOrder: 2 });
  });
  it("delta = 0 gives infinity unless all RDP is 0", () => {
    expect(rdpToEpsilon([2], [0.1], 0).epsilon).toBe(Number.POSITIVE_INFINITY);
    expect(rdpToEpsilon([2], [0], 0).epsilon).toBe(0);
  });
  it("orders at or below 1.01 never produce a finite epsilon", () => {
    expect(rdpToEpsilon([1.005], [0.5], 1e-5).epsilon).toBe(Number.POSITIVE_INFINITY);
  });
  it("validates its inputs with labelled errors", () => {
    expect(() => rdpToEpsilon([2, 3], [1], 1e-5)).toThrow(RangeError);
    expect(() => rdpToEpsilon([2], [1], 2)).toThrow(/delta/);
    expect(() => rdpToDelta([0.5], [1], 1)).toThrow(/order/);
  });
});

describe("RdpAccountant", () => {
  it("composition is linear: T rounds one at a time equal one compose(event, T)", () => {
    const ev = { kind: "poisson_gaussian", samplingRate: 0.01, noiseMultiplier: 1.1 } as const;
    const a = new RdpAccountant();
    for (let i = 0; i < 1000; i++) a.compose(ev);
    const b = new RdpAccountant().compose(ev, 1000);
    expect(relErr(a.getEpsilon(1e-6).epsilon, b.getEpsilon(1e-6).epsilon)).toBeLessThan(1e-12);
    expect(a.events()).toEqual([{ event: ev, count: 1000 }]);
  });

  it("rebuilds from its event log and clones independently", () => {
    const a = new RdpAccountant()
      .compose({ kind: "poisson_gaussian", samplingRate: 0.02, noiseMultiplier: 1 }, 10)
      .compose({ kind: "gaussian", noiseMultiplier: 20 }, 3);
    const b = RdpAccountant.fromEvents(a.events());
    expect([...b.rdp()]).toEqual([...a.rdp()]);
    const c = a.clone().compose({ kind: "gaussian", noiseMultiplier: 1 });
    expect(c.getEpsilon(1e-6).epsilon).toBeGreaterThan(a.getEpsilon(1e-6).epsilon);
  });

  it("defaultDelta is 1/n^1.1", () => {
    expect(defaultDelta(1_000_000)).toBeCloseTo(1e-6 ** 1.1, 20);
    expect(() => defaultDelta(0)).toThrow(RangeError);
  });
});

describe("calibration (bisection on the noise multiplier)", () => {
  it("matches dp_accounting within 0.1% and the exact-RDP calibration within 1e-7", () => {
    for (const row of v.calibration.rows) {
      const c = calibrateNoiseMultiplier({
        targetEpsilon: row.target_epsilon,
        delta: row.delta,
        samplingRate: row.sampling_rate,
        steps: row.steps,
      });
      expect(c.epsilon).toBeLessThanOrEqual(row.target_epsilon);
      expect(relErr(c.noise, row.noise_multiplier_rdp)).toBeLessThan(1e-3);
      expect(relErr(c.noise, row.noise_multiplier_rdp_federated_tfp_a749ce4)).toBeLessThan(1e-7);
      // dp_accounting's looser fractional series can only demand more noise, never less.
      expect(c.noise).toBeLessThanOrEqual(row.noise_multiplier_rdp * (1 + 1e-9));
    }
  });
});
