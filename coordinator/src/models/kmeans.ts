/**
 * The server half of federated k-means under user-level DP. Each round's decoded aggregate is the
 * noisy sum of the devices' vectors (layout in `./kmeans-layout.ts`), and everything here is
 * post-processing of that release, so it spends no further budget.
 *
 * - `init`: the aggregate is a DP coreset: per cell of a public grid, a noisy count and a noisy
 *   sum of the clipped vectors. Cells whose count stands above the noise become weighted points
 *   (their means; in the gridded fields a mean is clamped into its cell, which is public), and
 *   weighted k-means++ with Lloyd (best of 10 seeds) over them gives the first `overseed · k`
 *   centroids. The same round's histograms give DP quantiles, which become the SDK's tag
 *   thresholds. (A coreset of noisy cell means is the approach of DP clustering via coresets,
 *   e.g. Feldman et al. 2009; the grid here is public, so choosing it costs nothing.)
 * - `lloyd`: one DP Lloyd step (Blum et al. 2005, "SuLQ" k-means): centroid = noisy sum / noisy
 *   count; a cluster whose count is within the noise keeps its centroid. After the first (over-
 *   seeded) step, weighted k-means++ (best of 10) over the `overseed · k` noisy means, weighted by
 *   their noisy counts, merges them to k: a coreset refined in the full space rather than on the
 *   grid's fields (over-seeding then reducing, cf. k-means|| of Bahmani et al. 2012).
 *   Each step's noisy mean is shrunk towards the centroid it improves on by the positive-part
 *   James–Stein factor of its noise (`spec.shrink`), so a small cluster does not jump by its noise.
 * - Budget: the init round gets `init.budgetShare` of the run's RDP budget; each Lloyd round is
 *   planned on what the run's released rounds left, split over the Lloyd rounds still to run
 *   (`kmeansPlannedRounds`, the planner's `priorRounds`); the ledger accounts every round as it ran.
 */

import {
  BLOCK,
  binCentres,
  DEFAULT_VECTOR_REFERENCE,
  fieldIndex,
  gridCells,
  gridEdges,
  histogramEdge,
  histogramOffset,
  kmeansDimension,
  kmeansSensitivity,
  nearestCentroid,
  PROFILE_DIMENSION,
  realUnits,
  realValue,
  squaredDistance,
  VECTOR_FIELDS,
  type VectorField,
  Z_CLAMP,
} from "@fedprofile/protocol/models";
import type {
  KMeansModelParams,
  KMeansPhase,
  KMeansSpec,
  PublishedTagThresholds,
} from "@fedprofile/protocol/wire";
import { weightedKMeans } from "./lloyd";

/** The trainer's k-means state between rounds (serialisable). */
export interface KMeansState {
  phase: KMeansPhase;
  /** Lloyd iterations applied so far. */
  iteration: number;
  centroids: number[][] | null;
  sizes: number[];
  tagThresholds: PublishedTagThresholds;
}

/** What a round's release says besides the sum. */
export interface AggregateInfo {
  /** Standard deviation of the noise in each coordinate of the sum. */
  noiseStddev: number;
  contributors: number;
  /** Seed of the coreset clustering's k-means++ (reproducible post-processing). */
  seed?: number;
}

export interface KMeansUpdate {
  state: KMeansState;
  params: KMeansModelParams;
  metrics: Record<string, number>;
  converged: boolean;
}

/** Counts below this many noise standard deviations are treated as empty. */
const COUNT_NOISE_FLOOR = 3;

export const initialKMeansState = (): KMeansState => ({
  phase: "init",
  iteration: 0,
  centroids: null,
  sizes: [],
  tagThresholds: {},
});

/** The round's dimension and L2 sensitivity, given the state it improves on. */
export function kmeansTask(spec: KMeansSpec, state: KMeansState) {
  return {
    phase: state.phase,
    dimension: kmeansDimension(spec, state.phase, state.centroids?.length ?? spec.k),
    sensitivity: kmeansSensitivity(spec, state.phase),
  };
}

/**
 * The `rounds` a round of `phase` is calibrated for: a round planned as one of R equal rounds
 * spends 1/R of the run's RDP curve (the Gaussian's RDP is linear in 1/σ², Mironov 2017), so the
 * init round gets R₀ = ⌈1/budgetShare⌉. With fixed shares (`iteration` not given) each of the
 * `maxRounds` Lloyd rounds gets R₁ = ⌈maxRounds / (1 − 1/R₀)⌉: together at most the whole curve.
 * Given the Lloyd `iteration`, the round is planned on what the run's released rounds left (the
 * planner's `priorRounds`): R = the Lloyd rounds still to run, this one included. Survivors beyond
 * a round's noise floor add noise its plan did not count on, and this hands that saving on.
 */
export function kmeansPlannedRounds(
  spec: KMeansSpec,
  maxRounds: number,
  phase: KMeansPhase,
  iteration?: number,
): number {
  const initRounds = Math.max(2, Math.ceil(1 / spec.init.budgetShare - 1e-9));
  if (phase === "init") return initRounds;
  if (iteration !== undefined) return Math.max(1, maxRounds - iteration);
  return Math.ceil(maxRounds / (1 - 1 / initRounds) - 1e-9);
}

const clampZ = (v: number) => Math.min(Z_CLAMP, Math.max(-Z_CLAMP, v));

/** Applies one decoded aggregate: the initial centroids (init) or one Lloyd step. */
export function applyKMeans(
  spec: KMeansSpec,
  state: KMeansState,
  aggregate: ArrayLike<number>,
  info: AggregateInfo,
): KMeansUpdate {
  const expected = kmeansDimension(spec, state.phase, state.centroids?.length ?? spec.k);
  if (aggregate.length !== expected) {
    throw new RangeError(
      `k-means ${state.phase}: aggregate has ${aggregate.length} values, expected ${expected}`,
    );
  }
  for (let i = 0; i < aggregate.length; i++) {
    if (!Number.isFinite(aggregate[i])) throw new RangeError(`k-means: aggregate[${i}] is not finite`);
  }
  const countFloor = Math.max(1, (COUNT_NOISE_FLOOR * info.noiseStddev) / spec.countWeight);
  return state.phase === "init"
    ? applyInit(spec, aggregate, info, countFloor)
    : applyLloyd(spec, state, aggregate, countFloor, info.noiseStddev, info.seed ?? 1);
}

function blockAt(aggregate: ArrayLike<number>, block: number, countWeight: number) {
  const base = block * BLOCK;
  const count = (aggregate[base] as number) / countWeight;
  const sum = Array.from({ length: PROFILE_DIMENSION }, (_, d) => aggregate[base + 1 + d] as number);
  return { count, sum };
}

function applyInit(
  spec: KMeansSpec,
  aggregate: ArrayLike<number>,
  info: AggregateInfo,
  countFloor: number,
): KMeansUpdate {
  const cells = gridCells(spec);
  const edges = gridEdges(spec.init.gridBins);
  const points: number[][] = [];
  const weights: number[] = [];
  const fallback: Array<{ count: number; cell: number }> = [];
  for (let cell = 0; cell < cells; cell++) {
    const { count, sum } = blockAt(aggregate, cell, spec.countWeight);
    fallback.push({ count, cell });
    if (count < countFloor) continue;
    const mean = sum.map((s) => clampZ(s / count));
    // The cell's bounds in its gridded fields are public: the true mean lies inside them.
    let rest = cell;
    for (let g = spec.init.gridFields.length - 1; g >= 0; g--) {
      const bin = rest % spec.init.gridBins;
      rest = Math.floor(rest / spec.init.gridBins);
      const lo = bin === 0 ? -Z_CLAMP : (edges[bin - 1] as number);
      const hi = bin === spec.init.gridBins - 1 ? Z_CLAMP : (edges[bin] as number);
      const d = fieldIndex(spec.init.gridFields[g] as VectorField);
      mean[d] = Math.min(hi, Math.max(lo, mean[d] as number));
    }
    points.push(mean);
    weights.push(count);
  }
  // Over-seed only as far as the coreset has points above the noise (a small or noisy cohort
  // gets plain k); too few even for k (a tiny cohort): the heaviest cells at their public centres.
  const k = Math.max(spec.k, Math.min(spec.k * spec.init.overseed, points.length));
  if (points.length < k) {
    const centres = binCentres(spec.init.gridBins);
    fallback.sort((a, b) => b.count - a.count);
    for (const { cell } of fallback.slice(0, k - points.length)) {
      const z = new Array<number>(PROFILE_DIMENSION).fill(0);
      let rest = cell;
      for (let g = spec.init.gridFields.length - 1; g >= 0; g--) {
        const field = spec.init.gridFields[g] as VectorField;
        z[fieldIndex(field)] = centres[rest % spec.init.gridBins] as number;
        rest = Math.floor(rest / spec.init.gridBins);
      }
      points.push(z);
      weights.push(1);
    }
  }
  const clustered = weightedKMeans(points, weights, { k, seeds: 10, seed: info.seed ?? 1 });
  const centroids = clustered.centroids.map((c) => Array.from(c, clampZ));
  const sizes = centroids.map(() => 0);
  points.forEach((p, i) => {
    const { index } = nearestCentroid(centroids, p);
    sizes[index] = (sizes[index] as number) + (weights[i] as number);
  });
  const tagThresholds = thresholdsFromHistograms(spec, aggregate);
  const state: KMeansState = { phase: "lloyd", iteration: 0, centroids, sizes, tagThresholds };
  return {
    state,
    params: publishedParams(state, null, false, "init"),
    metrics: {
      coresetPoints: points.length,
      coresetMass: weights.reduce((a, b) => a + b, 0),
      coresetCost: clustered.cost,
      noiseStddev: info.noiseStddev,
    },
    converged: false,
  };
}

function applyLloyd(
  spec: KMeansSpec,
  state: KMeansState,
  aggregate: ArrayLike<number>,
  countFloor: number,
  noiseStddev: number,
  seed: number,
): KMeansUpdate {
  const previous = state.centroids;
  if (!previous || previous.length < spec.k)
    throw new RangeError("k-means lloyd: no centroids to improve on");
  let shift = 0;
  let kept = 0;
  const sizes: number[] = [];
  const centroids = previous.map((old, j) => {
    const { count, sum } = blockAt(aggregate, j, spec.countWeight);
    sizes.push(Math.max(0, Math.round(count)));
    if (count < countFloor) {
      kept++;
      return old;
    }
    const mean = sum.map((s) => clampZ(s / count));
    const next = spec.shrink ? shrinkTowards(old, mean, noiseStddev / count) : mean;
    shift = Math.max(shift, Math.sqrt(squaredDistance(next, old)));
    return next;
  });
  let next: KMeansState = { ...state, iteration: state.iteration + 1, centroids, sizes };
  const overseeded = centroids.length > spec.k;
  if (overseeded) next = mergeCentroids(spec, next, countFloor, seed);
  // Merging moves centroids by construction: never converged on the merging step.
  const converged = !overseeded && shift < spec.tolerance;
  return {
    state: next,
    params: publishedParams(next, shift, converged, "lloyd"),
    metrics: { shift, clustersKept: kept, countFloor, merged: overseeded ? centroids.length : 0 },
    converged,
  };
}

/**
 * Positive-part James–Stein (James & Stein 1961; Baranchik 1964) towards `old`: the noisy `mean`
 * has independent noise of standard deviation `noise` per coordinate (the sum's noise over the
 * count), so `old + (1 − (d − 2)·noise² / ‖mean − old‖²)₊ (mean − old)` has a lower expected
 * squared error than `mean` for d ≥ 3, whatever the true mean. A large cluster (noise ≪ its move)
 * keeps its mean; one whose move is within its noise stays put.
 */
function shrinkTowards(old: readonly number[], mean: number[], noise: number): number[] {
  const move = squaredDistance(mean, old);
  if (!(move > 0)) return mean;
  const factor = Math.max(0, 1 - ((PROFILE_DIMENSION - 2) * noise ** 2) / move);
  return mean.map((m, d) => (old[d] as number) + factor * (m - (old[d] as number)));
}

/**
 * Merges the over-seeded centroids to k: weighted k-means++ with Lloyd (best of 10 seeds) over the
 * noisy means, weighted by their noisy counts. For a fixed partition the data's cost is the
 * clusters' own spread plus Σ nⱼ‖cⱼ − C‖², so this minimises what merging adds.
 */
function mergeCentroids(spec: KMeansSpec, state: KMeansState, floor: number, seed: number): KMeansState {
  const points = state.centroids as number[][];
  // A centroid whose count was within the noise carries no information: weight 0, unless fewer
  // than k carry any.
  const informative = state.sizes.filter((s) => s >= floor).length;
  const weights = state.sizes.map((s) => (informative >= spec.k ? (s >= floor ? s : 0) : Math.max(1, s)));
  const merged = weightedKMeans(points, weights, { k: spec.k, seeds: 10, seed });
  const centroids = merged.centroids.map((c) => Array.from(c, clampZ));
  const sizes = centroids.map(() => 0);
  points.forEach((p, i) => {
    const { index } = nearestCentroid(centroids, p);
    sizes[index] = (sizes[index] as number) + (weights[i] as number);
  });
  return { ...state, centroids, sizes };
}

/** The `q`-quantile of histogram `h` of `spec.init.histogramFields`, in standardised units. */
function histogramQuantile(
  spec: KMeansSpec,
  aggregate: ArrayLike<number>,
  h: number,
  q: number,
): number | null {
  const bins = spec.init.histogramBins;
  const offset = histogramOffset(spec) + h * bins;
  const counts = Array.from({ length: bins }, (_, b) =>
    Math.max(0, (aggregate[offset + b] as number) / spec.init.histogramWeight),
  );
  const total = counts.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return null;
  let target = q * total;
  for (let b = 0; b < bins; b++) {
    const c = counts[b] as number;
    if (target <= c && c > 0) {
      const width = (2 * Z_CLAMP) / bins;
      return histogramEdge(bins, b) + (target / c) * width;
    }
    target -= c;
  }
  return Z_CLAMP;
}

/** Tag thresholds from the init round's DP histograms (real units). */
function thresholdsFromHistograms(spec: KMeansSpec, aggregate: ArrayLike<number>): PublishedTagThresholds {
  const quantile = (field: VectorField, q: number): number | null => {
    const h = spec.init.histogramFields.indexOf(field);
    if (h < 0) return null;
    const z = histogramQuantile(spec, aggregate, h, q);
    return z === null ? null : realValue(field, z, DEFAULT_VECTOR_REFERENCE);
  };
  const out: PublishedTagThresholds = {};
  const tenure = quantile("tenure", 0.1);
  if (tenure !== null) out.newMaxTenureDays = Math.max(0, Math.round(tenure));
  const monetary = quantile("monetary", 0.9);
  if (monetary !== null) out.highValueMinMonetary = Math.round(monetary);
  const frequency = quantile("frequency", 0.8);
  if (frequency !== null) out.loyalMinFrequency = Math.max(2, Math.round(frequency));
  const lapsed = quantile("recency", 0.75);
  const atRisk = quantile("recency", 0.5);
  if (lapsed !== null) out.lapsedMinRecencyDays = Math.max(1, Math.round(lapsed));
  if (atRisk !== null) out.atRiskMinRecencyDays = Math.max(1, Math.round(atRisk));
  return out;
}

/**
 * Names a marketer reads, from each centroid's position against the population (z = 0 is the
 * reference customer): recency, frequency, monetary, tenure and price level, in that order of say.
 */
export function labelSegments(centroids: ReadonlyArray<readonly number[]>): string[] {
  const z = (c: readonly number[], f: VectorField) => c[fieldIndex(f)] ?? 0;
  const base = centroids.map((c) => {
    const r = z(c, "recency");
    const f = z(c, "frequency");
    const m = z(c, "monetary");
    const t = z(c, "tenure");
    if (t < -0.8 && f < 0.3) return "new";
    if (r > 0.7) return f > 0.3 ? "lapsing regulars" : "lapsed one-timers";
    if (f > 0.7 && m > 0.7) return "loyal high spenders";
    if (m > 0.7) return "high spenders";
    if (f > 0.7) return "frequent buyers";
    if (z(c, "refund_share") > 1) return "frequent refunders";
    if (z(c, "avg_unit_price") < -0.8) return "bargain hunters";
    if (z(c, "avg_unit_price") > 0.8) return "premium buyers";
    if (r < -0.3) return "active occasional buyers";
    if (r > 0.3) return "lapsing";
    return "occasional buyers";
  });
  // Two segments with one name: qualify by what sets each apart most.
  const qualifiers: Array<[VectorField, string, string]> = [
    ["monetary", "big spenders", "small spenders"],
    ["recency", "less recent", "recent"],
    ["frequency", "frequent", "infrequent"],
    ["avg_unit_price", "premium", "budget"],
    ["tenure", "long-standing", "newer"],
  ];
  return base.map((label, i) => {
    const same = base.map((l, j) => (l === label ? j : -1)).filter((j) => j >= 0);
    if (same.length === 1) return label;
    const c = centroids[i] as readonly number[];
    let bestField = qualifiers[0] as [VectorField, string, string];
    let bestGap = -1;
    for (const q of qualifiers) {
      const mean = same.reduce((s, j) => s + z(centroids[j] as readonly number[], q[0]), 0) / same.length;
      const gap = Math.abs(z(c, q[0]) - mean);
      if (gap > bestGap) {
        bestGap = gap;
        bestField = q;
      }
    }
    const mean =
      same.reduce((s, j) => s + z(centroids[j] as readonly number[], bestField[0]), 0) / same.length;
    return `${label} (${z(c, bestField[0]) >= mean ? bestField[1] : bestField[2]})`;
  });
}

/** The published parameters of the model after a round. */
export function publishedParams(
  state: KMeansState,
  shift: number | null,
  converged: boolean,
  phase: KMeansPhase,
): KMeansModelParams {
  const centroids = state.centroids ?? [];
  const labels = labelSegments(centroids);
  return {
    kind: "kmeans",
    phase,
    iteration: state.iteration,
    fields: [...VECTOR_FIELDS],
    reference: DEFAULT_VECTOR_REFERENCE,
    segments: centroids.map((centroid, id) => ({
      id,
      label: labels[id] as string,
      centroid,
      real: realUnits(centroid),
      size: Math.max(0, Math.round(state.sizes[id] ?? 0)),
    })),
    tagThresholds: state.tagThresholds,
    shift,
    converged,
  };
}
