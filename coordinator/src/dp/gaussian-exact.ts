/**
 * Exact (epsilon, delta) of the un-subsampled Gaussian mechanism, a tight second opinion for
 * rounds without sampling amplification (q = 1).
 *
 * `k` compositions of the Gaussian with noise multiplier `sigma` equal one Gaussian with
 * `mu = sqrt(k)/sigma` (mu-GDP, Dong, Roth & Su 2019), whose privacy profile is exactly
 * `delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)` (Balle & Wang, ICML 2018,
 * Theorem 8). RDP conversion is never tighter than this.
 */

import { assertFinite, assertInRange, logNormalCdf, logSub } from "@fedprofile/protocol/dp";

/** The exact delta of a mu-GDP mechanism at `epsilon` (Balle & Wang 2018, Theorem 8). */
export function gaussianDeltaForEpsilon(mu: number, epsilon: number): number {
  assertInRange("mu", mu, 0, Number.POSITIVE_INFINITY);
  assertFinite("epsilon", epsilon);
  if (mu === 0) return 0;
  const a = logNormalCdf(-epsilon / mu + mu / 2);
  const b = epsilon + logNormalCdf(-epsilon / mu - mu / 2);
  const d = logSub(a, b);
  return Number.isNaN(d) ? 0 : Math.exp(d);
}

/** The exact epsilon of a mu-GDP mechanism at `delta`, by bisection on the monotone profile. */
export function gaussianEpsilonForDelta(mu: number, delta: number): number {
  assertInRange("mu", mu, 0, Number.POSITIVE_INFINITY);
  assertInRange("delta", delta, 0, 1, { loOpen: true });
  if (mu === 0) return 0;
  if (gaussianDeltaForEpsilon(mu, 0) <= delta) return 0;
  let lo = 0;
  let hi = 1;
  while (gaussianDeltaForEpsilon(mu, hi) > delta) {
    lo = hi;
    hi *= 2;
    if (hi > 1e9) return Number.POSITIVE_INFINITY;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-14 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (gaussianDeltaForEpsilon(mu, mid) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Exact epsilon of `compositions` Gaussian releases with noise multiplier `noiseMultiplier`. */
export function composedGaussianEpsilon(
  noiseMultiplier: number,
  compositions: number,
  delta: number,
): number {
  assertInRange("noiseMultiplier", noiseMultiplier, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  assertInRange("compositions", compositions, 0, Number.POSITIVE_INFINITY);
  return gaussianEpsilonForDelta(Math.sqrt(compositions) / noiseMultiplier, delta);
}

/**
 * The analytic Gaussian mechanism (Balle & Wang 2018, Algorithm 1): the smallest stddev for
 * which one release with L2 sensitivity `sensitivity` is (epsilon, delta)-DP.
 */
export function analyticGaussianSigma(epsilon: number, delta: number, sensitivity = 1): number {
  assertInRange("epsilon", epsilon, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  assertInRange("delta", delta, 0, 1, { loOpen: true, hiOpen: true });
  assertInRange("sensitivity", sensitivity, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  // delta(eps) for sigma is decreasing in sigma; bisect on sigma / sensitivity.
  const deltaAt = (s: number): number => gaussianDeltaForEpsilon(1 / s, epsilon);
  let lo = 0;
  let hi = 1;
  while (deltaAt(hi) > delta) {
    lo = hi;
    hi *= 2;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (deltaAt(mid) > delta) lo = mid;
    else hi = mid;
  }
  return hi * sensitivity;
}
