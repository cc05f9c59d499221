/**
 * Scores of a clustering, and the centralised baseline it is compared with: Lloyd's algorithm
 * with k-means++ seeding, best of 10 seeds (Arthur & Vassilvitskii 2007), on the same
 * standardised vectors, with no privacy at all.
 */
import {
  kmeansCost,
  nearestCentroid,
  seededUniform,
  squaredDistance,
  weightedKMeans,
} from "@fedprofile/coordinator/models";

/** The centralised baseline: k-means++ then Lloyd, best of `seeds`. */
export function centralisedKMeans(vectors: readonly number[][], k: number, seeds = 10, seed = 1) {
  const t0 = performance.now();
  const run = weightedKMeans(vectors, null, { k, seeds, seed, maxIterations: 300 });
  return { centroids: run.centroids.map((c) => Array.from(c)), cost: run.cost, ms: performance.now() - t0 };
}

export const costOf = (vectors: readonly number[][], centroids: readonly number[][]) =>
  kmeansCost(vectors, centroids);

/** Devices per segment under `centroids`. */
export function segmentSizes(vectors: readonly number[][], centroids: readonly number[][]): number[] {
  const sizes = centroids.map(() => 0);
  for (const v of vectors) {
    const { index } = nearestCentroid(centroids, v);
    sizes[index] = (sizes[index] ?? 0) + 1;
  }
  return sizes;
}

/**
 * Mean silhouette (Rousseeuw 1987) over a uniform sample of at most `sample` points, each scored
 * against every point (O(sample · N)); a point alone in its cluster scores 0.
 */
export function silhouette(
  vectors: readonly number[][],
  centroids: readonly number[][],
  sample = 1000,
  seed = 7,
): number {
  const labels = vectors.map((v) => nearestCentroid(centroids, v).index);
  const random = seededUniform(seed);
  const picks =
    vectors.length <= sample
      ? vectors.map((_, i) => i)
      : Array.from({ length: sample }, () => Math.floor(random() * vectors.length));
  let total = 0;
  for (const i of picks) {
    const own = labels[i] as number;
    const sums = new Float64Array(centroids.length);
    const counts = new Float64Array(centroids.length);
    vectors.forEach((w, j) => {
      if (j === i) return;
      const l = labels[j] as number;
      sums[l] = (sums[l] as number) + Math.sqrt(squaredDistance(vectors[i] as number[], w));
      counts[l] = (counts[l] as number) + 1;
    });
    if ((counts[own] as number) === 0) continue;
    const a = (sums[own] as number) / (counts[own] as number);
    let b = Number.POSITIVE_INFINITY;
    for (let l = 0; l < centroids.length; l++)
      if (l !== own && (counts[l] as number) > 0)
        b = Math.min(b, (sums[l] as number) / (counts[l] as number));
    if (Number.isFinite(b)) total += (b - a) / Math.max(a, b);
  }
  return total / picks.length;
}
