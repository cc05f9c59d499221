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
 * `2u^2` is below 2^53 for `u < 2^26`. The rare numerators beyond 2^53 go through BigInt.
 */

import { type RandomSource, uniformBelow, uniformBelowBig } from "./random.ts";

/** `sigma = num / 2^exp2`, both non-negative safe integers, `num < 2^26`. */
export interface DyadicSigma {
  /** The numerator `u`. */
  readonly num: number;
  /** The binary exponent `k`: `sigma = num / 2^k`. */
  readonly exp2: number;
}

/** Largest numerator: keeps the acceptance denominator `2u^2` below 2^53. */
const MAX_NUM = 2 ** 26;
const SAFE = Number.MAX_SAFE_INTEGER;
const TWO32 = 4294967296;

/**
 * The smallest dyadic `u/2^k >= sigma` with `bits` significant bits (default 15), so the noise
 * actually added is never below the noise the accountant was told about. With 15 bits the
 * acceptance test's denominator `2u^2` stays below 2^31 and every uniform draw takes a single
 * 32-bit word; sigma is overstated by at most 2^-14 relative. A sigma of 2^bits or more is
 * rounded up to an integer (`k = 0`), exact up to 2^26.
 */
export function dyadicSigmaAtLeast(sigma: number, bits = 15): DyadicSigma {
  if (!(sigma > 0) || !Number.isFinite(sigma))
    throw new RangeError(`sigma must be positive and finite, got ${sigma}`);
  if (!Number.isInteger(bits) || bits < 2 || bits > 26)
    throw new RangeError(`bits must be an integer in [2, 26], got ${bits}`);
  let k = bits - 1 - Math.floor(Math.log2(sigma));
  if (k < 0) k = 0;
  let u = Math.ceil(sigma * 2 ** k);
  while (u >= 2 ** bits && k > 0) {
    k -= 1;
    u = Math.ceil(sigma * 2 ** k);
  }
  if (u >= MAX_NUM) throw new RangeError(`sigma ${sigma} is too large for the exact sampler (max 2^26)`);
  return { num: u, exp2: k };
}

/** The value of a dyadic sigma. */
export function dyadicValue(s: DyadicSigma): number {
  return s.num / 2 ** s.exp2;
}

/**
 * Bernoulli(num/den) for safe integers `0 <= num <= den <= 2^53`. For `den <= 2^32` one 32-bit
 * word `x` decides: with `L = floor(2^32 / den)`, words at or above `den L` are rejected and the
 * answer is `x < num L`, which has probability exactly `num L / (den L) = num / den`.
 */
function bernoulliRational(rng: RandomSource, num: number, den: number): boolean {
  if (num >= den) return true;
  if (num <= 0) return false;
  if (den <= TWO32) {
    const l = Math.floor(TWO32 / den);
    const limit = den * l;
    const cut = num * l;
    for (;;) {
      const x = rng.nextUint32();
      if (x < limit) return x < cut;
    }
  }
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
 * {@link bernoulliExpNegUnit} specialised to a fixed denominator: the per-`k` rejection limits of
 * {@link bernoulliRational} are precomputed, which is what the samplers below spend most of their
 * time on. Same distribution, bit for bit the same decisions.
 */
function expNegUnitFor(rng: RandomSource, den: number): (num: number) => boolean {
  const K = 32;
  const mul = new Float64Array(K + 1);
  const lim = new Float64Array(K + 1);
  for (let k = 1; k <= K; k++) {
    const d = den * k;
    if (d <= TWO32) {
      mul[k] = Math.floor(TWO32 / d);
      lim[k] = d * mul[k]!;
    }
  }
  return (num: number): boolean => {
    for (let k = 1; ; k++) {
      let a: boolean;
      const l = k <= K ? mul[k]! : 0;
      if (num >= den * k) a = true;
      else if (num <= 0) a = false;
      else if (l > 0) {
        const limit = lim[k]!;
        let x = rng.nextUint32();
        while (x >= limit) x = rng.nextUint32();
        a = x < num * l;
      } else {
        const d = den * k;
        a =
          d <= SAFE
            ? bernoulliRational(rng, num, d)
            : uniformBelowBig(rng, BigInt(den) * BigInt(k)) < BigInt(num);
      }
      if (!a) return (k & 1) === 1;
    }
  };
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
    // P[Bernoulli(exp(-1)) ten thousand times in a row] = e^-10000: below every double.
    if (q > 10_000n) return false;
    whole = Number(q);
    rem = Number(n - q * d);
  } else {
    // fmod is exact; a floored double quotient can be off by one when den is large.
    rem = num % den;
    whole = (num - rem) / den;
  }
  for (let i = 0; i < whole; i++) {
    if (!bernoulliExpNegUnit(rng, 1, 1)) return false;
  }
  return bernoulliExpNegUnit(rng, rem, den);
}

/**
 * A sampler of the discrete Laplace `P[y] ∝ exp(-|y| s / t)` (CKS20 Algorithm 2) for a positive
 * integer `t < 2^32` and `s = 2^exp2`. Sign bits are taken one at a time from cached words.
 */
export function discreteLaplaceSampler(rng: RandomSource, t: number, exp2 = 0): () => number {
  if (!Number.isSafeInteger(t) || t < 1 || t >= TWO32) {
    throw new RangeError(`t must be an integer in [1, 2^32), got ${t}`);
  }
  const s = 2 ** exp2;
  // U uniform on [0, t): accept x < t L and take floor(x / L), L = floor(2^32 / t); every U
  // has exactly L preimages, and the double quotient of integers below 2^32 floors exactly.
  const l = Math.floor(TWO32 / t);
  const limit = t * l;
  const expNegT = expNegUnitFor(rng, t);
  const expNeg1 = expNegUnitFor(rng, 1);
  let bits = 0;
  let nbits = 0;
  return () => {
    for (;;) {
      let w = rng.nextUint32();
      while (w >= limit) w = rng.nextUint32();
      const u = Math.floor(w / l);
      if (!expNegT(u)) continue;
      let v = 0;
      while (expNeg1(1)) v++;
      const x = u + t * v;
      const y = Math.floor(x / s);
      if (nbits === 0) {
        bits = rng.nextUint32();
        nbits = 32;
      }
      const b = (bits & 1) === 1;
      bits >>>= 1;
      nbits--;
      if (b && y === 0) continue;
      return b ? -y : y;
    }
  };
}

/** One draw from the discrete Laplace; see {@link discreteLaplaceSampler}. */
export function sampleDiscreteLaplace(rng: RandomSource, t: number, exp2 = 0): number {
  return discreteLaplaceSampler(rng, t, exp2)();
}

/**
 * A sampler of `N_Z(0, sigma^2)` with `sigma = u / 2^k` (CKS20 Algorithm 3 with the Laplace
 * scale set to sigma): propose `Y ~ DLap(sigma)`, accept with probability
 * `exp(-(|Y| - sigma)^2 / (2 sigma^2)) = exp(-(|Y| 2^k - u)^2 / (2 u^2))`.
 */
export function discreteGaussianSampler(rng: RandomSource, sigma: DyadicSigma): () => number {
  const u = sigma.num;
  const k = sigma.exp2;
  if (!Number.isSafeInteger(u) || u <= 0 || u >= MAX_NUM || !Number.isSafeInteger(k) || k < 0 || k > 60) {
    throw new RangeError(`sigma must be u/2^k with 0 < u < 2^26 and 0 <= k <= 60, got ${u}/2^${k}`);
  }
  const den = 2 * u * u;
  const scale = 2 ** k;
  const lap = discreteLaplaceSampler(rng, u, k);
  const expNegDen = expNegUnitFor(rng, den);
  const expNeg1 = expNegUnitFor(rng, 1);
  return () => {
    for (;;) {
      const y = lap();
      const a = Math.abs(y) * scale - u;
      const sq = a * a;
      let accept: boolean;
      if (sq <= SAFE) {
        // exp(-sq/den) = exp(-1)^floor(sq/den) * exp(-(sq mod den)/den); fmod is exact.
        const rem = sq % den;
        let whole = (sq - rem) / den;
        accept = true;
        while (whole-- > 0 && accept) accept = expNeg1(1);
        if (accept) accept = expNegDen(rem);
      } else {
        accept = bernoulliExpNeg(rng, BigInt(a) * BigInt(a), den);
      }
      if (accept) return y;
    }
  };
}

/** One exact draw from `N_Z(0, sigma^2)`; prefer {@link discreteGaussianSampler} in loops. */
export function sampleDiscreteGaussian(rng: RandomSource, sigma: DyadicSigma): number {
  return discreteGaussianSampler(rng, sigma)();
}

/** Fills `out` with independent exact draws from `N_Z(0, sigma^2)`. */
export function fillDiscreteGaussian(
  rng: RandomSource,
  sigma: DyadicSigma,
  out: Float64Array | Int32Array,
): void {
  const draw = discreteGaussianSampler(rng, sigma);
  for (let i = 0; i < out.length; i++) out[i] = draw();
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
