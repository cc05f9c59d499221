/**
 * The randomised Hadamard rotation of the distributed discrete Gaussian (Kairouz, Liu & Steinke
 * 2021, Section 4.2 "flattening"): `x -> H D x / sqrt(n)` with `H` the n x n Walsh-Hadamard
 * matrix (n a power of two) and `D` a diagonal of independent random signs.
 *
 * Flattening spreads a vector's mass evenly over the coordinates, so after rounding and noise
 * every coordinate stays small and wraps modulo 2^m only with tiny probability (KLS21 Lemma 29).
 * `H / sqrt(n)` is orthonormal and symmetric, so the inverse is `D H x / sqrt(n)`; L2 norms
 * (hence sensitivity) are preserved exactly in exact arithmetic.
 *
 * The signs come from the round's *public* seed, so the server can undo the rotation; they add
 * no privacy and need none.
 */

import { type RandomSource, seededRandom } from "./random.ts";

/** The smallest power of two `>= n` (and `>= 1`). */
export function nextPowerOfTwo(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`n must be a non-negative safe integer, got ${n}`);
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * In-place fast Walsh-Hadamard transform (unnormalised, Sylvester ordering), O(n log n).
 * `x.length` must be a power of two.
 */
export function fwht(x: Float64Array): void {
  const n = x.length;
  if (n === 0 || (n & (n - 1)) !== 0) throw new RangeError(`fwht length must be a power of two, got ${n}`);
  for (let h = 1; h < n; h *= 2) {
    for (let i = 0; i < n; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = x[j]!;
        const b = x[j + h]!;
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
}

/**
 * The Rademacher diagonal for a round: `n` signs (+1/-1) from the ChaCha20 stream keyed by the
 * public `seed` under the domain "fedprofile/dp/rotation/v1", one bit per sign, least
 * significant bit first.
 */
export function rademacherSigns(seed: Uint8Array | string, n: number): Int8Array {
  const rng: RandomSource = seededRandom(seed, "fedprofile/dp/rotation/v1");
  const signs = new Int8Array(n);
  let word = 0;
  for (let i = 0; i < n; i++) {
    if ((i & 31) === 0) word = rng.nextUint32();
    signs[i] = (word >>> (i & 31)) & 1 ? -1 : 1;
  }
  return signs;
}

/**
 * Pads `x` with zeros to `n = signs.length` (a power of two) and returns `H D x / sqrt(n)`.
 */
export function rotateForward(x: ArrayLike<number>, signs: Int8Array): Float64Array {
  const n = signs.length;
  if (x.length > n) throw new RangeError(`vector of length ${x.length} does not fit a rotation of size ${n}`);
  const y = new Float64Array(n);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! * signs[i]!;
  fwht(y);
  const s = 1 / Math.sqrt(n);
  for (let i = 0; i < n; i++) y[i] = y[i]! * s;
  return y;
}

/**
 * Inverts {@link rotateForward} in place on `y` and returns the first `dim` coordinates:
 * `D H y / sqrt(n)`, truncated (the padding coordinates carry only noise).
 */
export function rotateInverse(y: Float64Array, signs: Int8Array, dim: number): Float64Array {
  const n = signs.length;
  if (y.length !== n) throw new RangeError(`expected a vector of length ${n}, got ${y.length}`);
  if (dim > n) throw new RangeError(`dim ${dim} exceeds the rotation size ${n}`);
  fwht(y);
  const s = 1 / Math.sqrt(n);
  const out = new Float64Array(dim);
  for (let i = 0; i < dim; i++) out[i] = y[i]! * s * signs[i]!;
  return out;
}
