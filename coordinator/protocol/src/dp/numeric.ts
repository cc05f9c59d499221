/**
 * Log-space arithmetic and special functions for the privacy accountant.
 *
 * Privacy accounting works with quantities such as `exp(i^2 / (2 sigma^2))` that overflow a
 * double long before the answer does, so every sum is carried as a logarithm. The error
 * function is implemented here (JavaScript has none) to full double precision: a positive
 * power series for small arguments and a continued fraction for the tail, so `logErfc` stays
 * accurate far beyond the point where `erfc` itself underflows.
 */

const SQRT_PI = Math.sqrt(Math.PI);
const TWO_OVER_SQRT_PI = 2 / SQRT_PI;

/** Checks that `value` is a finite number and names the field when it is not. */
export function assertFinite(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`${name} must be a finite number, got ${String(value)}`);
  }
}

/** Checks `lo <= value <= hi` (or strict bounds when asked) and names the field. */
export function assertInRange(
  name: string,
  value: number,
  lo: number,
  hi: number,
  opts: { loOpen?: boolean; hiOpen?: boolean } = {},
): void {
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`${name} must be a number, got ${String(value)}`);
  }
  const belowLo = opts.loOpen ? value <= lo : value < lo;
  const aboveHi = opts.hiOpen ? value >= hi : value > hi;
  if (belowLo || aboveHi) {
    const l = opts.loOpen ? "(" : "[";
    const h = opts.hiOpen ? ")" : "]";
    throw new RangeError(`${name} must be in ${l}${lo}, ${hi}${h}, got ${value}`);
  }
}

/** Checks that `value` is an integer `>= min` and names the field. */
export function assertInteger(name: string, value: number, min = 0): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new TypeError(`${name} must be a safe integer, got ${String(value)}`);
  }
  if (value < min) throw new RangeError(`${name} must be >= ${min}, got ${value}`);
}

/** `log(exp(a) + exp(b))` without overflow. */
export function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  if (lo === Number.NEGATIVE_INFINITY) return hi;
  if (hi === Number.POSITIVE_INFINITY) return hi;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/**
 * `log(exp(a) - exp(b))` for `a >= b`. Returns `-Infinity` when the two are equal and `NaN`
 * when `b > a` (a negative result has no logarithm; callers treat that as a numerical failure).
 */
export function logSub(a: number, b: number): number {
  if (b === Number.NEGATIVE_INFINITY) return a;
  if (a === b) return Number.NEGATIVE_INFINITY;
  if (b > a) return Number.NaN;
  return a + log1mExp(b - a);
}

/** `log(1 - exp(x))` for `x <= 0`, accurate at both ends (Maechler 2012, "Accurately computing log(1 - exp(-|a|))"). */
export function log1mExp(x: number): number {
  if (x > 0) return Number.NaN;
  return x > -Math.LN2 ? Math.log(-Math.expm1(x)) : Math.log1p(-Math.exp(x));
}

/** `log(exp(x) - 1)` for `x > 0`. */
export function logExpm1(x: number): number {
  if (x <= 0) return x === 0 ? Number.NEGATIVE_INFINITY : Number.NaN;
  return x > 30 ? x + Math.log1p(-Math.exp(-x)) : Math.log(Math.expm1(x));
}

/** `log(1 + exp(x))` (softplus) without overflow. */
export function log1pExp(x: number): number {
  if (x > 35) return x + Math.exp(-x);
  if (x < -37) return Math.exp(x);
  return Math.log1p(Math.exp(x));
}

/** `log(sum(exp(xs)))`. */
export function logSumExp(xs: ArrayLike<number>): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i]!;
    if (v > max) max = v;
  }
  if (max === Number.NEGATIVE_INFINITY || max === Number.POSITIVE_INFINITY) return max;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += Math.exp(xs[i]! - max);
  return max + Math.log(s);
}

/**
 * `erf(x)` for `|x| <= 2.5` by the everywhere-positive series
 * `erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n (2x^2)^n x / (1*3*...*(2n+1))` (Abramowitz & Stegun
 * 7.1.6). No term cancels, so the relative error stays at a few ulps.
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 0; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 3);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/**
 * Scaled complementary error function `erfcx(x) = exp(x^2) erfc(x)` for `x >= 2`, by the
 * Laplace continued fraction `erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))`
 * (A&S 7.1.14), evaluated with the modified Lentz algorithm.
 */
function erfcxContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 5000; k++) {
    const a = k / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    c = x + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return 1 / (SQRT_PI * f);
}

/** The error function. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  if (Math.abs(x) <= 2.5) return erfSeries(x);
  return x > 0 ? 1 - erfc(x) : erfc(-x) - 1;
}

/** The complementary error function `1 - erf(x)`, accurate in the far tail. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return x;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) return 1 - erfSeries(x);
  if (x > 27.3) return 0;
  return Math.exp(-x * x) * erfcxContinuedFraction(x);
}

/** `log(erfc(x))`, finite for every finite `x` (TF Privacy `_log_erfc`). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return x;
  if (x < 2) return Math.log(erfc(x));
  if (x === Number.POSITIVE_INFINITY) return Number.NEGATIVE_INFINITY;
  return -x * x + Math.log(erfcxContinuedFraction(x));
}

/** The standard normal CDF `Phi(x)`. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** `log(Phi(x))`, accurate in the lower tail (scipy `log_ndtr`). */
export function logNormalCdf(x: number): number {
  return Math.log(0.5) + logErfc(-x / Math.SQRT2);
}

/**
 * `log|C(alpha, i)|` and the sign of `C(alpha, i)` for every `i` in `0..n`, for real `alpha`,
 * by the product recurrence `C(alpha, i) = C(alpha, i-1) (alpha - i + 1) / i`. The recurrence
 * accumulates one rounding per step, far below the 1e-6 relative agreement the reference
 * accountants report between themselves.
 */
export function logAbsBinomials(alpha: number, n: number): { logAbs: Float64Array; sign: Int8Array } {
  const logAbs = new Float64Array(n + 1);
  const sign = new Int8Array(n + 1);
  sign[0] = 1;
  let l = 0;
  let s = 1;
  for (let i = 1; i <= n; i++) {
    const f = alpha - i + 1;
    if (f === 0) {
      for (let k = i; k <= n; k++) {
        logAbs[k] = Number.NEGATIVE_INFINITY;
        sign[k] = 0;
      }
      break;
    }
    l += Math.log(Math.abs(f)) - Math.log(i);
    if (f < 0) s = -s;
    logAbs[i] = l;
    sign[i] = s;
  }
  return { logAbs, sign };
}
