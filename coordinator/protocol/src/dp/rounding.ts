/**
 * Clipping and randomised rounding to the integer grid.
 *
 * Randomised rounding sends `x` to `floor(x) + Bernoulli(x - floor(x))`, which is unbiased.
 * Its L2 norm can grow by up to `sqrt(d)`; *conditional* randomised rounding (Kairouz, Liu &
 * Steinke 2021, Section 4.1 and Proposition 22) re-draws until the norm is within
 * `roundedL2NormBound(c, beta, d)`, a bound that holds with probability at least `1 - beta` for
 * one unconditional draw, so the expected number of draws is at most `1 / (1 - beta)`. The
 * accountant uses that bound as the sensitivity.
 */

import { roundedL2NormBound } from "./distributed-accounting.ts";
import type { RandomSource } from "./random.ts";

/** The L2 norm. */
export function l2Norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}

/**
 * Scales `x` in place so its L2 norm is at most `clipNorm` (McMahan et al. 2018, DP-FedAvg),
 * and returns the norm before clipping. Clipping bounds each user's contribution; it does not
 * increase sensitivity.
 */
export function clipL2InPlace(x: Float64Array, clipNorm: number): number {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm))
    throw new RangeError(`clipNorm must be positive, got ${clipNorm}`);
  const norm = l2Norm(x);
  if (!Number.isFinite(norm)) throw new RangeError("cannot clip a vector with non-finite entries");
  if (norm > clipNorm) {
    const f = clipNorm / norm;
    for (let i = 0; i < x.length; i++) x[i] = x[i]! * f;
  }
  return norm;
}

const INV_TWO32 = 1 / 4294967296;

/**
 * One unconditional randomised rounding of `x` into `out`: unbiased up to the 2^-33 resolution
 * of the uniform (one 32-bit word per coordinate; rounding is not the privacy mechanism, the
 * norm bound that the accountant uses holds for every outcome).
 */
export function randomizedRound(rng: RandomSource, x: ArrayLike<number>, out: Float64Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    const f = Math.floor(v);
    out[i] = f + ((rng.nextUint32() + 0.5) * INV_TWO32 < v - f ? 1 : 0);
  }
}

/** Result of {@link conditionalRandomizedRound}. */
export interface RoundingResult {
  /** The rounded integer vector. */
  readonly rounded: Float64Array;
  /** Number of draws it took (1 for unconditional rounding). */
  readonly attempts: number;
}

/**
 * Conditional randomised rounding (KLS21 Prop. 22): round `x` (already scaled, with L2 norm at
 * most `scaledNorm`) until the result's norm is within `roundedL2NormBound(scaledNorm, beta, d)`.
 * `beta = 0` is plain randomised rounding. Throws after `maxAttempts` draws, which for a correct
 * input happens with probability at most `beta^maxAttempts`.
 */
export function conditionalRandomizedRound(
  rng: RandomSource,
  x: ArrayLike<number>,
  scaledNorm: number,
  beta: number,
  maxAttempts = 1000,
): RoundingResult {
  const out = new Float64Array(x.length);
  if (beta === 0) {
    randomizedRound(rng, x, out);
    return { rounded: out, attempts: 1 };
  }
  const bound = roundedL2NormBound(Math.max(scaledNorm, Number.MIN_VALUE), beta, Math.max(1, x.length));
  const bound2 = bound * bound;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    randomizedRound(rng, x, out);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * out[i]!;
    if (s <= bound2) return { rounded: out, attempts: attempt };
  }
  throw new RangeError(
    `conditional rounding did not meet its norm bound in ${maxAttempts} attempts; is the input clipped?`,
  );
}
