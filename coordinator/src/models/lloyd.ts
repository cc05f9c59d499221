/**
 * Weighted Lloyd's algorithm with k-means++ seeding (Arthur & Vassilvitskii 2007), best of
 * several seeds. The trainer runs it on the DP coreset of the initialisation round (post-processing
 * of a DP release, so it costs no budget); the evaluation harness runs it on raw data as the
 * centralised baseline.
 */
import { PROFILE_DIMENSION, squaredDistance } from "@fedprofile/protocol/models";

/** A seeded uniform [0, 1) generator (mulberry32): reproducible, not cryptographic. */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LloydOptions {
  k: number;
  /** k-means++ restarts; the lowest cost wins (default 10). */
  seeds?: number;
  maxIterations?: number;
  seed?: number;
}

export interface LloydResult {
  centroids: Float64Array[];
  cost: number;
  iterations: number;
}

/** Weighted cost: Σ w_i · min_j ‖p_i − c_j‖². */
export function kmeansCost(
  points: ReadonlyArray<ArrayLike<number>>,
  centroids: ReadonlyArray<ArrayLike<number>>,
  weights?: ArrayLike<number>,
): number {
  let cost = 0;
  points.forEach((p, i) => {
    let best = Number.POSITIVE_INFINITY;
    for (const c of centroids) best = Math.min(best, squaredDistance(p, c));
    cost += (weights ? (weights[i] ?? 0) : 1) * best;
  });
  return cost;
}

function plusPlus(
  points: ReadonlyArray<ArrayLike<number>>,
  weights: ArrayLike<number>,
  k: number,
  random: () => number,
): Float64Array[] {
  const n = points.length;
  const nearest = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
  const centroids: Float64Array[] = [];
  const pick = (mass: (i: number) => number) => {
    let total = 0;
    for (let i = 0; i < n; i++) total += mass(i);
    let target = random() * total;
    for (let i = 0; i < n; i++) {
      target -= mass(i);
      if (target <= 0) return i;
    }
    return n - 1;
  };
  let next = pick((i) => weights[i] as number);
  while (centroids.length < k) {
    const c = Float64Array.from({ length: PROFILE_DIMENSION }, (_, d) => points[next]?.[d] ?? 0);
    centroids.push(c);
    for (let i = 0; i < n; i++)
      nearest[i] = Math.min(nearest[i] as number, squaredDistance(points[i] as ArrayLike<number>, c));
    if (centroids.length === k) break;
    const mass = (i: number) => (weights[i] as number) * (nearest[i] as number);
    let remaining = 0;
    for (let i = 0; i < n; i++) remaining += mass(i);
    // Fewer distinct points than k: repeat the heaviest rather than divide by zero.
    next = remaining > 0 ? pick(mass) : pick((i) => weights[i] as number);
  }
  return centroids;
}

function lloydFrom(
  points: ReadonlyArray<ArrayLike<number>>,
  weights: ArrayLike<number>,
  start: Float64Array[],
  maxIterations: number,
): LloydResult {
  let centroids = start;
  let iterations = 0;
  const k = start.length;
  const assignment = new Int32Array(points.length).fill(-1);
  for (; iterations < maxIterations; iterations++) {
    let moved = false;
    points.forEach((p, i) => {
      let best = Number.POSITIVE_INFINITY;
      let arg = 0;
      for (let j = 0; j < k; j++) {
        const d = squaredDistance(p, centroids[j] as Float64Array);
        if (d < best) {
          best = d;
          arg = j;
        }
      }
      if (assignment[i] !== arg) {
        assignment[i] = arg;
        moved = true;
      }
    });
    if (!moved) break;
    const sums = Array.from({ length: k }, () => new Float64Array(PROFILE_DIMENSION));
    const mass = new Float64Array(k);
    points.forEach((p, i) => {
      const j = assignment[i] as number;
      const w = weights[i] as number;
      mass[j] = (mass[j] as number) + w;
      const s = sums[j] as Float64Array;
      for (let d = 0; d < PROFILE_DIMENSION; d++) s[d] = (s[d] as number) + w * (p[d] ?? 0);
    });
    centroids = centroids.map((c, j) => {
      const m = mass[j] as number;
      return m > 0 ? (sums[j] as Float64Array).map((s) => s / m) : c;
    });
  }
  return { centroids, cost: kmeansCost(points, centroids, weights), iterations };
}

/** k-means++ then Lloyd, `seeds` times; the run with the lowest weighted cost. */
export function weightedKMeans(
  points: ReadonlyArray<ArrayLike<number>>,
  weights: ArrayLike<number> | null,
  options: LloydOptions,
): LloydResult {
  if (points.length === 0) throw new RangeError("k-means needs at least one point");
  const w = weights ?? new Float64Array(points.length).fill(1);
  const random = seededUniform(options.seed ?? 1);
  let best: LloydResult | null = null;
  for (let s = 0; s < (options.seeds ?? 10); s++) {
    const run = lloydFrom(points, w, plusPlus(points, w, options.k, random), options.maxIterations ?? 100);
    if (!best || run.cost < best.cost) best = run;
  }
  return best as LloydResult;
}
