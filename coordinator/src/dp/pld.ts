/**
 * A privacy-loss-distribution (PLD) accountant for the Poisson-subsampled Gaussian: a tighter
 * second opinion next to RDP (Koskela, Jälkö & Honkela 2020; Meiser & Mohammadi 2018 "privacy
 * buckets"; as in Google's dp_accounting `PLDAccountant`).
 *
 * For one release, the privacy loss `L = log(mu_upper(x) / mu_lower(x))` with `x ~ mu_upper` is
 * discretised on a grid of width `h` *pessimistically* by connect-the-dots (see `singlePmf`),
 * and the mass beyond the grid's top goes to `L = +infinity`, so the discrete PLD's
 * delta(epsilon) upper-bounds the true one. Composition is convolution (FFT, by repeated
 * squaring), with each step's extreme tails below `exp(truncation)` folded pessimistically
 * (lower tail onto the lowest kept point, upper tail to infinity). Then
 * `delta(eps) = P[L = inf] + sum_i p_i (1 - exp(eps - l_i))_+` (the hockey stick), and epsilon
 * for a target delta is found by bisection. Add/remove adjacency takes the worse of the
 * "remove" pair `((1-q) N(0,s^2) + q N(1,s^2), N(0,s^2))` and the "add" pair with the roles swapped.
 */

import { assertInRange, assertInteger, normalCdf } from "@fedprofile/protocol/dp";
import { composedGaussianEpsilon } from "./gaussian-exact.ts";

/** Options of the PLD accountant. */
export interface PldOptions {
  /** Grid width of privacy-loss values (dp_accounting's value_discretization_interval; default 1e-4). */
  readonly valueDiscretizationInterval?: number;
  /**
   * Natural log of the tail mass folded (pessimistically) per composition. Default -35: FFT
   * round-off leaves a floor of ~1e-17 per entry, so dp_accounting's -50 would stop tails from
   * ever being trimmed and the arrays would double with every squaring; the extra infinity mass
   * (< 1e-14 over a whole composition) moves epsilon by well under 1e-7 relative.
   */
  readonly logMassTruncationBound?: number;
}

/** A discretised PLD: `probs[i]` is the mass at loss `(offset + i) * h`. */
interface Pmf {
  readonly h: number;
  readonly offset: number;
  readonly probs: Float64Array;
  readonly infinityMass: number;
}

/** `P[x <= t]` for the mixture `(1-q) N(0, s^2) + q N(1, s^2)` and its complement, both accurate in the tails. */
function mixtureCdf(q: number, s: number, t: number): { cdf: number; sf: number } {
  return {
    cdf: (1 - q) * normalCdf(t / s) + q * normalCdf((t - 1) / s),
    sf: (1 - q) * normalCdf(-t / s) + q * normalCdf((1 - t) / s),
  };
}

/**
 * The single-release PLD of the Poisson-subsampled Gaussian, discretised by "connect the dots"
 * (Doroshenko, Ghazi, Kamath, Kumar & Manurangsi, PETS 2022), dp_accounting's pessimistic
 * default. The hockey-stick curve `delta(eps)` is evaluated exactly at every grid point
 * `eps_i = i h`; masses at the grid points are then chosen so the discrete PLD's curve passes
 * through those values and is linear in `e^eps` between them. `delta` is convex in `e^eps`, so
 * the chords lie above it: the discretisation is pessimistic for every epsilon, and unlike
 * rounding losses up, its bias does not grow with the number of compositions.
 *
 * remove: upper `(1-q) N(0,s^2) + q N(1,s^2)`, lower `N(0,s^2)`, `L(x) = log(1-q+q e^{(2x-1)/(2s^2)})`;
 * add: upper `N(0,s^2)`, lower the mixture, `L = -log(...)`. With `x(l)` solving `L(x) = l` for
 * the remove direction, `L > eps` is `x > x(eps)` (remove) or `x < x(-eps)` (add), and
 * `delta(eps) = P_upper[L > eps] - e^eps P_lower[L > eps]`.
 */
function singlePmf(kind: "remove" | "add", q: number, s: number, h: number, tail: number): Pmf {
  const xOf = (l: number): number => {
    const inner = Math.expm1(l) + q; // e^l - (1 - q)
    if (inner <= 0) return Number.NEGATIVE_INFINITY;
    return s * s * Math.log(inner / q) + 0.5;
  };
  const gaussSf = (x: number): number => normalCdf(-x / s);
  const gaussCdf = (x: number): number => normalCdf(x / s);
  /** P_upper[L > l], P_lower[L > l]. */
  const tails = (l: number): { up: number; low: number } => {
    if (kind === "remove") {
      const x = xOf(l);
      if (x === Number.NEGATIVE_INFINITY) return { up: 1, low: 1 };
      return { up: mixtureCdf(q, s, x).sf, low: gaussSf(x) };
    }
    const x = xOf(-l);
    if (x === Number.NEGATIVE_INFINITY) return { up: 0, low: 0 };
    return { up: gaussCdf(x), low: mixtureCdf(q, s, x).cdf };
  };
  const hockey = (l: number): number => {
    const t = tails(l);
    const d = t.up - Math.exp(l) * t.low;
    return d > 0 ? d : 0;
  };
  // Smallest grid point: below it the upper measure has mass < tail. Largest: delta < tail.
  let lo = -1;
  while (1 - tails(lo * h).up > tail && lo > -1e9) lo *= 2;
  let a = lo;
  let b = 0;
  while (b - a > 1) {
    const m = Math.floor((a + b) / 2);
    if (1 - tails(m * h).up > tail) b = m;
    else a = m;
  }
  lo = a;
  let hi = 1;
  while (hockey(hi * h) > tail && hi < 1e9) hi *= 2;
  a = Math.max(lo, 0);
  b = hi;
  while (b - a > 1) {
    const m = Math.floor((a + b) / 2);
    if (hockey(m * h) > tail) a = m;
    else b = m;
  }
  hi = b;
  const n = hi - lo + 1;
  const deltas = new Float64Array(n);
  for (let i = 0; i < n; i++) deltas[i] = hockey((lo + i) * h);
  // B_i = (delta_i - delta_{i+1}) / (e^{eps_{i+1}} - e^{eps_i}) = sum_{j > i} p_j e^{-eps_j};
  // p_{j} = (B_{j-1} - B_j) e^{eps_j}; everything above the grid is the infinity mass delta_n.
  const probs = new Float64Array(n);
  const bs = new Float64Array(n);
  for (let i = n - 2; i >= 0; i--) {
    const e0 = (lo + i) * h;
    // e^{eps_{i+1}} - e^{eps_i} = e^{eps_i} expm1(h), and divide through by e^{eps_i}.
    bs[i] = ((deltas[i]! - deltas[i + 1]!) / Math.expm1(h)) * Math.exp(-e0);
  }
  for (let j = 1; j < n; j++) {
    const bPrev = bs[j - 1]!;
    const bCur = j < n - 1 ? bs[j]! : 0;
    const m = (bPrev - bCur) * Math.exp((lo + j) * h);
    probs[j] = m > 0 ? m : 0;
  }
  const inf = deltas[n - 1]!;
  let rest = 1 - inf;
  for (let j = 1; j < n; j++) rest -= probs[j]!;
  probs[0] = rest > 0 ? rest : 0;
  return { h, offset: lo, probs, infinityMass: inf };
}

const twiddles = new Map<number, { cos: Float64Array; sin: Float64Array }>();

/** cos/sin of `-2 pi j / n` for `j < n/2`, memoised per size. */
function twiddleTable(n: number): { cos: Float64Array; sin: Float64Array } {
  let t = twiddles.get(n);
  if (!t) {
    const cos = new Float64Array(n / 2);
    const sin = new Float64Array(n / 2);
    for (let j = 0; j < n / 2; j++) {
      cos[j] = Math.cos((-2 * Math.PI * j) / n);
      sin[j] = Math.sin((-2 * Math.PI * j) / n);
    }
    if (twiddles.size > 8) twiddles.clear();
    t = { cos, sin };
    twiddles.set(n, t);
  }
  return t;
}

/** In-place iterative radix-2 complex FFT (Cooley-Tukey) with table twiddles; `inverse` scales by 1/n. */
function fft(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const tr = re[i]!;
      re[i] = re[j]!;
      re[j] = tr;
      const ti = im[i]!;
      im[i] = im[j]!;
      im[j] = ti;
    }
  }
  const { cos, sin } = twiddleTable(n);
  const sign = inverse ? -1 : 1;
  for (let len = 2; len <= n; len <<= 1) {
    const half = len >> 1;
    const stride = n / len;
    for (let i = 0; i < n; i += len) {
      for (let j = 0; j < half; j++) {
        const cr = cos[j * stride]!;
        const ci = sign * sin[j * stride]!;
        const a = i + j;
        const b = a + half;
        const xr = re[b]! * cr - im[b]! * ci;
        const xi = re[b]! * ci + im[b]! * cr;
        re[b] = re[a]! - xr;
        im[b] = im[a]! - xi;
        re[a] = re[a]! + xr;
        im[a] = im[a]! + xi;
      }
    }
  }
  if (inverse) {
    for (let i = 0; i < n; i++) {
      re[i] = re[i]! / n;
      im[i] = im[i]! / n;
    }
  }
}

/**
 * Linear convolution of two non-negative vectors, clamped at 0 (FFT round-off can leave tiny
 * negatives). Two FFTs: a squaring transforms once; two distinct real inputs share one complex
 * transform (`a + i b`, separated by conjugate symmetry).
 */
function convolve(a: Float64Array, b: Float64Array): Float64Array {
  const m = a.length + b.length - 1;
  if (a.length * b.length <= 4096) {
    const out = new Float64Array(m);
    for (let i = 0; i < a.length; i++)
      for (let j = 0; j < b.length; j++) out[i + j] = out[i + j]! + a[i]! * b[j]!;
    return out;
  }
  let n = 1;
  while (n < m) n <<= 1;
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  re.set(a);
  if (a === b) {
    fft(re, im, false);
    for (let k = 0; k < n; k++) {
      const r = re[k]! * re[k]! - im[k]! * im[k]!;
      im[k] = 2 * re[k]! * im[k]!;
      re[k] = r;
    }
  } else {
    im.set(b);
    fft(re, im, false);
    const pr = new Float64Array(n);
    const pi = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const nk = (n - k) & (n - 1);
      // A_k = (Z_k + conj Z_{n-k}) / 2, B_k = (Z_k - conj Z_{n-k}) / (2i).
      const ar = (re[k]! + re[nk]!) / 2;
      const ai = (im[k]! - im[nk]!) / 2;
      const br = (im[k]! + im[nk]!) / 2;
      const bi = -(re[k]! - re[nk]!) / 2;
      pr[k] = ar * br - ai * bi;
      pi[k] = ar * bi + ai * br;
    }
    re.set(pr);
    im.set(pi);
  }
  fft(re, im, true);
  const out = new Float64Array(m);
  for (let i = 0; i < m; i++) out[i] = re[i]! > 0 ? re[i]! : 0;
  return out;
}

/** Folds tails of mass at most `tail` each: lower onto the lowest kept point, upper to infinity. */
function truncate(p: Pmf, tail: number): Pmf {
  const probs = p.probs;
  let lo = 0;
  let acc = 0;
  while (lo < probs.length - 1 && acc + probs[lo]! <= tail) acc += probs[lo++]!;
  const lowMass = acc;
  let hi = probs.length - 1;
  acc = 0;
  while (hi > lo && acc + probs[hi]! <= tail) acc += probs[hi--]!;
  const out = probs.slice(lo, hi + 1);
  out[0] = out[0]! + lowMass;
  return { h: p.h, offset: p.offset + lo, probs: out, infinityMass: Math.min(1, p.infinityMass + acc) };
}

function compose(a: Pmf, b: Pmf, tail: number): Pmf {
  return truncate(
    {
      h: a.h,
      offset: a.offset + b.offset,
      probs: convolve(a.probs, b.probs),
      infinityMass: 1 - (1 - a.infinityMass) * (1 - b.infinityMass),
    },
    tail,
  );
}

function selfCompose(p: Pmf, k: number, tail: number): Pmf {
  let result: Pmf | null = null;
  let base = p;
  let n = k;
  while (n > 0) {
    if (n & 1) result = result ? compose(result, base, tail) : base;
    n >>= 1;
    if (n > 0) base = compose(base, base, tail);
  }
  return result!;
}

/** The hockey-stick divergence: `delta(eps) = P[inf] + sum_i p_i (1 - e^{eps - l_i})_+`. */
function deltaFor(p: Pmf, eps: number): number {
  let d = p.infinityMass;
  for (let i = p.probs.length - 1; i >= 0; i--) {
    const l = (p.offset + i) * p.h;
    if (l <= eps) break;
    d += p.probs[i]! * -Math.expm1(eps - l);
  }
  return d;
}

function epsilonFor(p: Pmf, delta: number): number {
  if (p.infinityMass > delta) return Number.POSITIVE_INFINITY;
  if (deltaFor(p, 0) <= delta) return 0;
  let lo = 0;
  let hi = Math.max(p.h, (p.offset + p.probs.length) * p.h);
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (deltaFor(p, mid) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Inputs of {@link pldPoissonGaussianEpsilon}. */
export interface PldQuery extends PldOptions {
  readonly noiseMultiplier: number;
  readonly samplingRate: number;
  readonly steps: number;
  readonly delta: number;
}

/**
 * Epsilon of `steps` Poisson-subsampled Gaussian releases by the PLD method (pessimistic: an
 * upper bound up to the tail folding, which is itself pessimistic). Cost grows with
 * `loss range / valueDiscretizationInterval` and `log2(steps)` FFTs; use it for second opinions,
 * not inside a round.
 */
export function pldPoissonGaussianEpsilon(query: PldQuery): number {
  assertInRange("noiseMultiplier", query.noiseMultiplier, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  assertInRange("samplingRate", query.samplingRate, 0, 1, { loOpen: true });
  assertInteger("steps", query.steps, 1);
  assertInRange("delta", query.delta, 0, 1, { loOpen: true, hiOpen: true });
  const h = query.valueDiscretizationInterval ?? 1e-4;
  assertInRange("valueDiscretizationInterval", h, 0, 1, { loOpen: true });
  const tail = Math.exp(query.logMassTruncationBound ?? -35);
  // Without sampling the composition is exactly one Gaussian (mu-GDP, Balle & Wang 2018): use it.
  if (query.samplingRate === 1)
    return composedGaussianEpsilon(query.noiseMultiplier, query.steps, query.delta);
  let worst = 0;
  for (const kind of ["remove", "add"] as const) {
    const single = singlePmf(kind, query.samplingRate, query.noiseMultiplier, h, tail);
    const composed = selfCompose(single, query.steps, tail);
    worst = Math.max(worst, epsilonFor(composed, query.delta));
  }
  return worst;
}
