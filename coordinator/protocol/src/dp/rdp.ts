/**
 * Rényi differential privacy (Mironov 2017) of the mechanisms fedprofile uses.
 *
 * The centrepiece is the Poisson-subsampled Gaussian of Mironov, Talwar & Zhang (2019),
 * "Rényi Differential Privacy of the Sampled Gaussian Mechanism": for add/remove-one adjacency
 * its RDP at order `alpha` is `log(A_alpha) / (alpha - 1)` with
 * `A_alpha = E_{z ~ N(0, sigma^2)} [(1 - q + q * exp((2z - 1) / (2 sigma^2)))^alpha]`.
 * - Integer orders use the binomial expansion (MTZ19 Section 3.3, Eq. 7), whose terms are all
 *   positive.
 * - Fractional orders use the two-sided series of MTZ19 Section 3.3, split at
 *   `z0 = sigma^2 log(1/q - 1) + 1/2`, with the *signed* binomial coefficients, as TF Privacy
 *   and Opacus do. Google's dp_accounting (since 2024-05) adds every term in absolute value,
 *   which is a valid but looser upper bound; the signed series is exact.
 */

import {
  assertFinite,
  assertInRange,
  log1pExp,
  logAbsBinomials,
  logAdd,
  logErfc,
  logExpm1,
} from "./numeric.ts";

/**
 * dp_accounting's default RDP orders (`RdpAccountant` DEFAULT_RDP_ORDERS):
 * 1.1, 1.2, ..., 10.9, then 11..63, then 128, 256, 512, 1024.
 */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => Math.round((1.1 + i * 0.1) * 10) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128,
  256,
  512,
  1024,
]);

/** The integer orders 2..128 and 256 used by google-research/federated's distributed-DP accounting. */
export const FEDERATED_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 127 }, (_, i) => 2 + i),
  256,
]);

/** Checks an order list: finite, every order > 1. */
export function assertOrders(orders: readonly number[]): void {
  if (!Array.isArray(orders) || orders.length === 0) {
    throw new TypeError("orders must be a non-empty array of numbers");
  }
  for (const a of orders) {
    assertFinite("order", a);
    if (a <= 1) throw new RangeError(`every RDP order must be > 1, got ${a}`);
  }
}

/**
 * RDP of the Gaussian mechanism with noise multiplier `sigma` (noise std / L2 sensitivity):
 * `alpha / (2 sigma^2)` (Mironov 2017, Proposition 7).
 */
export function gaussianRdp(noiseMultiplier: number, order: number): number {
  assertInRange("noiseMultiplier", noiseMultiplier, 0, Number.POSITIVE_INFINITY);
  if (noiseMultiplier === 0) return Number.POSITIVE_INFINITY;
  return order / (2 * noiseMultiplier * noiseMultiplier);
}

/**
 * `log(A_alpha - 1)` for integer `alpha`, from MTZ19 Eq. 7:
 * `A_alpha = sum_i C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2))`.
 * Because the binomial weights sum to one, `A_alpha - 1` is the same sum with `expm1` in place
 * of `exp`; the `i = 0, 1` terms vanish. Working with `A - 1` keeps full relative precision
 * when the RDP is tiny (large sigma, small q), where `log(A)` itself would lose digits.
 */
function logAMinus1Int(q: number, sigma: number, alpha: number): number {
  const { logAbs } = logAbsBinomials(alpha, alpha);
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const inv2s2 = 1 / (2 * sigma * sigma);
  let acc = Number.NEGATIVE_INFINITY;
  for (let i = 2; i <= alpha; i++) {
    const t = logAbs[i]! + i * logQ + (alpha - i) * log1mQ + logExpm1((i * i - i) * inv2s2);
    acc = logAdd(acc, t);
  }
  return acc;
}

/** Safety cap on the fractional series; beyond it the order is excluded (RDP = Infinity). */
const MAX_FRACTIONAL_TERMS = 2_000_000;

/**
 * `log(A_alpha)` for fractional `alpha` by the signed two-sided series of MTZ19 Section 3.3
 * (TF Privacy `_compute_log_a_frac`):
 * `A = sum_i C(alpha,i) [ q^i (1-q)^(alpha-i) e^{(i^2-i)/(2s^2)} erfc((i - z0)/(sqrt2 s))/2
 *                       + q^(alpha-i) (1-q)^i e^{(j^2-j)/(2s^2)} erfc((z0 - j)/(sqrt2 s))/2 ]`,
 * `j = alpha - i`. Positive and negative terms are summed separately in log space and combined
 * once, so cancellation is visible: if it destroys more than ~1e-9 of the result, or the series
 * has not converged within the cap, the order is excluded by returning `Infinity` (an excluded
 * order can only make the reported epsilon larger, never smaller).
 */
function logAFrac(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const inv2s2 = 1 / (2 * sigma * sigma);
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const sqrt2s = Math.SQRT2 * sigma;
  const logHalf = Math.log(0.5);
  let pos = Number.NEGATIVE_INFINITY;
  let neg = Number.NEGATIVE_INFINITY;
  let logAbsCoef = 0;
  let sign = 1;
  let lastS = Number.POSITIVE_INFINITY;
  for (let i = 0; i < MAX_FRACTIONAL_TERMS; i++) {
    if (i > 0) {
      const f = alpha - i + 1;
      logAbsCoef += Math.log(Math.abs(f)) - Math.log(i);
      if (f < 0) sign = -sign;
    }
    const j = alpha - i;
    const logS0 =
      logAbsCoef + i * logQ + j * log1mQ + (i * i - i) * inv2s2 + logHalf + logErfc((i - z0) / sqrt2s);
    const logS1 =
      logAbsCoef + j * logQ + i * log1mQ + (j * j - j) * inv2s2 + logHalf + logErfc((z0 - j) / sqrt2s);
    const logS = logAdd(logS0, logS1);
    if (sign > 0) pos = logAdd(pos, logS);
    else neg = logAdd(neg, logS);
    // Past i > alpha + 1 the coefficients alternate in sign and, once the terms also shrink,
    // the partial sums bracket the limit (Leibniz): a partial sum whose next term is negative
    // is an upper bound. Stop at such a point once the terms are below e^-30 (TF Privacy's
    // absolute rule) and below e^-20 of the current estimate of A - 1, which is what the RDP
    // is made of; the truncation then only ever overstates the RDP, by under 2e-9 relative.
    if (i > alpha + 1 && logS < lastS && logS < -30 && sign > 0) {
      const aMinus1 = pos < 700 ? Math.exp(pos) - Math.exp(neg) - 1 : Number.POSITIVE_INFINITY;
      if (logS < Math.log(Math.max(aMinus1, 1e-300)) - 20) break;
    }
    lastS = logS;
    if (i === MAX_FRACTIONAL_TERMS - 1) return Number.POSITIVE_INFINITY;
  }
  if (!(pos > neg)) return Number.POSITIVE_INFINITY;
  const ratio = Math.exp(neg - pos);
  // Relative size of the cancellation error: (|pos| + |neg|) / (pos - neg) ulps.
  if ((1 + ratio) / (1 - ratio) > 1e6) return Number.POSITIVE_INFINITY;
  return pos + Math.log1p(-ratio);
}

/**
 * Per-step RDP of the Poisson-subsampled Gaussian mechanism at one order (MTZ19), for
 * add/remove-one adjacency and L2 sensitivity 1. `q = 1` is the plain Gaussian, `q = 0`
 * releases nothing.
 */
export function poissonSubsampledGaussianRdp(
  samplingRate: number,
  noiseMultiplier: number,
  order: number,
): number {
  assertInRange("samplingRate", samplingRate, 0, 1);
  assertInRange("noiseMultiplier", noiseMultiplier, 0, Number.POSITIVE_INFINITY);
  assertFinite("order", order);
  if (order <= 1) throw new RangeError(`order must be > 1, got ${order}`);
  if (samplingRate === 0) return 0;
  if (noiseMultiplier === 0) return Number.POSITIVE_INFINITY;
  if (samplingRate === 1) return gaussianRdp(noiseMultiplier, order);
  if (Number.isInteger(order)) {
    const lam1 = logAMinus1Int(samplingRate, noiseMultiplier, order);
    return log1pExp(lam1) / (order - 1);
  }
  return logAFrac(samplingRate, noiseMultiplier, order) / (order - 1);
}

/** Per-step RDP of the Poisson-subsampled Gaussian at every order. */
export function poissonSubsampledGaussianRdpCurve(
  samplingRate: number,
  noiseMultiplier: number,
  orders: readonly number[] = DEFAULT_RDP_ORDERS,
): Float64Array {
  assertOrders(orders);
  const out = new Float64Array(orders.length);
  for (let k = 0; k < orders.length; k++) {
    out[k] = poissonSubsampledGaussianRdp(samplingRate, noiseMultiplier, orders[k]!);
  }
  return out;
}

/**
 * RDP of the Laplace mechanism with pure-DP parameter `eps0 = sensitivity / scale`
 * (Mironov 2017, Proposition 6):
 * `eps0 + log(1 + (a-1)(exp((1-2a) eps0) - 1) / (2a - 1)) / (a - 1)`.
 */
export function laplaceRdp(eps0: number, order: number): number {
  assertInRange("eps0", eps0, 0, Number.POSITIVE_INFINITY);
  const a = order;
  if (a < 1.1) {
    // log(1 + c x)/x as a Taylor series near a = 1, as dp_accounting does, for stability.
    const c = Math.expm1(eps0 * (1 - 2 * a)) / (2 * a - 1);
    const v = -c * (a - 1);
    let s = 0;
    let p = 1;
    for (let k = 1; k < 100; k++) {
      s += p / k;
      p *= v;
    }
    return eps0 + c * s;
  }
  return eps0 + Math.log1p(((a - 1) * Math.expm1(eps0 * (1 - 2 * a))) / (2 * a - 1)) / (a - 1);
}

/**
 * RDP of a `rho`-zCDP mechanism: `rho * alpha` (Bun & Steinke 2016, Definition 1.1). The
 * discrete Gaussian with scale `sigma` and integer sensitivity `Delta` is `Delta^2/(2 sigma^2)`-zCDP
 * (Canonne, Kamath & Steinke 2020, Theorem 4).
 */
export function zcdpRdp(rho: number, order: number): number {
  assertInRange("rho", rho, 0, Number.POSITIVE_INFINITY);
  return rho * order;
}
