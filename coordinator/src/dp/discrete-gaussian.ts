/**
 * Exact sampling of the discrete Gaussian `N_Z(0, sigma^2)`, `P[x] ∝ exp(-x^2 / (2 sigma^2))` on
 * the integers, by Canonne, Kamath & Steinke (NeurIPS 2020, arXiv:2004.00010), Algorithms 1-3.
 *
 * The algorithm only ever draws uniform integers and compares them with rationals, so with
 * integer arithmetic its output has exactly the target distribution (no floating point touches
 * a probability). We keep every rational in the safe-integer range by taking `sigma` as a
 * dyadic rational `u / 2^k` and using the Laplace proposal with the same rational scale
 * `t/s = u / 2^k` (Algorithm 2 allows any rational scale). The acceptance exponent is then
 * `gamma = (|Y| - sigma^2/(t/s))^2 / (2 sigma^2) = (|Y| 2^k - u)^2 / (2 u^2)`, whose denominator
 * `2u^2` is below 2^47 for `u < 2^23`. The rare numerators beyond 2^53 go through BigInt.
 */

import { type RandomSource, uniformBelow, uniformBelowBig } from "./random.ts";

/** `sigma = num / 2^exp2`, both non-negative safe integers, `num < 2^23`. */
export interface DyadicSigma {
  /** The numerator `u`. */
  readonly num: number;
  /** The binary exponent `k`: `sigma = num / 2^k`. */
  readonly exp2: number;
}

const MAX_NUM = 2 ** 23;
const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * The smallest dyadic `u/2^k >= sigma` with `u < 2^23` (about 7 significant digits), so the
 * noise actually added is never below the noise the accountant was told about. `k` may be
 * negative for very large `sigma`.
 */
export function dyadicSigmaAtLeast(sigma: number): DyadicSigma {
  if (!(sigma > 0) || !Number.isFinite(sigma))
    throw new RangeError(`sigma must be positive and finite, got ${sigma}`);
  let k = 22 - Math.floor(Math.log2(sigma));
  let u = Math.ceil(sigma * 2 ** k);
  while (u >= MAX_NUM) {
    k -= 1;
    u = Math.ceil(sigma * 2 ** k);
  }
  if (k < 0) throw new RangeError(`sigma ${sigma} is too large for the exact sampler (max 2^23)`);
  return { num: u, exp2: k };
}

/** The value of a dyadic sigma. */
export function dyadicValue(s: DyadicSigma): number {
  return s.num / 2 ** s.exp2;
}

/** Bernoulli(num/den) for safe integers `0 <= num <= den`. */
function bernoulliRational(rng: RandomSource, num: number, den: number): boolean {
  return uniformBelow(rng, den) < num;
}

/**
 * Bernoulli(exp(-num/den)) for `0 <= num <= den` (CKS20 Algorithm 1, gamma in [0, 1]):
 * draw `A_k ~ Bernoulli(gamma / k)` for k = 1, 2, ... until one is 0; answer whether that k is
 * odd. `P[K > n] = gamma^n / n!`, so the sum over odd stops is `exp(-gamma)`.
 */
function bernoulliExpNegUnit(rng: RandomSource, num: number, den: number): boolean {
  let k = 1;
  for (;;) {
    const d = den * k;
    const a =
      d <= SAFE
        ? bernoulliRational(rng, num, d)
        : uniformBelowBig(rng, BigInt(den) * BigInt(k)) < BigInt(num);
    if (!a) return (k & 1) === 1;
    k++;
  }
}

/**
 * Bernoulli(exp(-num/den)) for any non-negative rational (CKS20 Algorithm 1): split
 * `gamma = floor(gamma) + frac`, pass `floor(gamma)` independent Bernoulli(exp(-1)) draws, then
 * one Bernoulli(exp(-frac)).
 */
export function bernoulliExpNeg(rng: RandomSource, num: number | bigint, den: number): boolean {
  let whole: number;
  let rem: number;
  if (typeof num === "bigint" || num > SAFE) {
    const n = BigInt(num);
    const d = BigInt(den);
    const q = n / d;
    if (q > 10_000n) return false; // exp(-10000) is below every float; also below 2^-14000.
    whole = Number(q);
    rem = Number(n - q * d);
  } else {
    whole = Math.floor(num / den);
    rem = num - whole * den;
  }
  for (let i = 0; i < whole; i++) {
    if (!bernoulliExpNegUnit(rng, 1, 1)) return false;
  }
  return bernoulliExpNegUnit(rng, rem, den);
}

/**
 * The discrete Laplace `P[y] ∝ exp(-|y| s / t)` (CKS20 Algorithm 2) for positive integers
 * `t < 2^32` and `s = 2^k`.
 */
export function sampleDiscreteLaplace(rng: RandomSource, t: number, exp2 = 0): number {
  const s = 2 ** exp2;
  for (;;) {
    const u = uniformBelow(rng, t);
    if (!bernoulliExpNeg(rng, u, t)) continue;
    let v = 0;
    while (bernoulliExpNegUnit(rng, 1, 1)) v++;
    const x = u + t * v;
    const y = Math.floor(x / s);
    const b = (rng.nextUint32() & 1) === 1;
    if (b && y === 0) continue;
    return b ? -y : y;
  }
}

/**
 * One exact draw from `N_Z(0, sigma^2)` with `sigma = u / 2^k` (CKS20 Algorithm 3 with the
 * Laplace scale set to sigma): propose `Y ~ DLap(sigma)`, accept with probability
 * `exp(-(|Y| - sigma)^2 / (2 sigma^2))`.
 */
export function sampleDiscreteGaussian(rng: RandomSource, sigma: DyadicSigma): number {
  const u = sigma.num;
  const k = sigma.exp2;
  if (!Number.isSafeInteger(u) || u <= 0 || u >= MAX_NUM || !Number.isSafeInteger(k) || k < 0) {
    throw new RangeError(`sigma must be u/2^k with 0 < u < 2^23 and k >= 0, got ${u}/2^${k}`);
  }
  const den = 2 * u * u;
  const scale = 2 ** k;
  for (;;) {
    const y = sampleDiscreteLaplace(rng, u, k);
    const a = Math.abs(y) * scale - u;
    const sq = a * a;
    const accept =
      sq <= SAFE ? bernoulliExpNeg(rng, sq, den) : bernoulliExpNeg(rng, BigInt(a) * BigInt(a), den);
    if (accept) return y;
  }
}

/** Fills `out` with independent exact draws from `N_Z(0, sigma^2)`. */
export function fillDiscreteGaussian(
  rng: RandomSource,
  sigma: DyadicSigma,
  out: Float64Array | Int32Array,
): void {
  for (let i = 0; i < out.length; i++) out[i] = sampleDiscreteGaussian(rng, sigma);
}

/**
 * The exact pmf of `N_Z(0, sigma^2)` on `[-range, range]` (normalised over a window of
 * 40 sigma, beyond which the mass is below 1e-300), and its exact variance; used by tests and
 * by the server to state the noise it expects.
 */
export function discreteGaussianPmf(sigma: number, range: number): { pmf: Float64Array; variance: number } {
  const wide = Math.max(range, Math.ceil(40 * sigma) + 1);
  let z = 0;
  let v = 0;
  for (let x = -wide; x <= wide; x++) {
    const w = Math.exp(-(x * x) / (2 * sigma * sigma));
    z += w;
    v += x * x * w;
  }
  const pmf = new Float64Array(2 * range + 1);
  for (let x = -range; x <= range; x++) pmf[x + range] = Math.exp(-(x * x) / (2 * sigma * sigma)) / z;
  return { pmf, variance: v / z };
}
