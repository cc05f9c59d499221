/**
 * The vector layout of federated k-means, shared by the device half (`sdk/src/models/kmeans.ts`)
 * and the server half (`./kmeans.ts`). Pure and dependency-free, so the SDK can import it.
 *
 * - `lloyd` rounds: one block `[w·1, x_1 … x_d]` per centroid of the base model (k, or
 *   `overseed · k` in the first Lloyd round); a device fills only its nearest centroid's
 *   block, with `w = countWeight` and `x` its vector clipped to `clip` (L2). One device moves the
 *   sum by at most `sqrt(w² + clip²)`: that is the round's L2 sensitivity.
 * - the `init` round: the same blocks over the cells of a public grid (a DP coreset), then one
 *   one-hot histogram of `histogramBins` bins per histogram field, each with value `h`. The
 *   sensitivity is `sqrt(w² + clip² + H·h²)`.
 */
import { VECTOR_FIELDS, type VectorField, Z_CLAMP } from "./profile-vector";

/** The parts of a k-means spec the layout depends on. */
export interface KMeansLayoutSpec {
  k: number;
  clip: number;
  countWeight: number;
  init: {
    gridFields: readonly VectorField[];
    gridBins: number;
    histogramFields: readonly VectorField[];
    histogramBins: number;
    histogramWeight: number;
    /** Centroids per segment in the first Lloyd round (default 1). */
    overseed?: number;
  };
}

export type KMeansLayoutPhase = "init" | "lloyd";

/** Dimension d of the profile vector. */
export const PROFILE_DIMENSION = VECTOR_FIELDS.length;

/** Width of one block: a count slot and d sum slots. */
export const BLOCK = 1 + PROFILE_DIMENSION;

export const fieldIndex = (field: VectorField): number => VECTOR_FIELDS.indexOf(field);

/** Cells of the initialisation grid. */
export const gridCells = (spec: KMeansLayoutSpec): number =>
  spec.init.gridBins ** spec.init.gridFields.length;

/** Length of a round's vector; a Lloyd round has one block per centroid of its base model. */
export function kmeansDimension(
  spec: KMeansLayoutSpec,
  phase: KMeansLayoutPhase,
  centroids: number = spec.k,
): number {
  if (phase === "lloyd") return centroids * BLOCK;
  return gridCells(spec) * BLOCK + spec.init.histogramFields.length * spec.init.histogramBins;
}

/** The L2 sensitivity of one device's vector in `phase` (see the module comment). */
export function kmeansSensitivity(spec: KMeansLayoutSpec, phase: KMeansLayoutPhase): number {
  const base = spec.countWeight ** 2 + spec.clip ** 2;
  if (phase === "lloyd") return Math.sqrt(base);
  return Math.sqrt(base + spec.init.histogramFields.length * spec.init.histogramWeight ** 2);
}

/**
 * Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9),
 * so grid bins are equiprobable for a standardised field.
 */
export function probit(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`probit: p must be in (0, 1), got ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  const poly = (k: number[], x: number) => k.reduce((acc, coef) => acc * x + coef, 0);
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(c, q) / (poly(d, q) * q + 1);
  }
  if (p > 1 - low) return -probit(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (poly(a, r) * q) / (poly(b, r) * r + 1);
}

/** Inner edges of `bins` equiprobable bins of N(0, 1): `probit(i / bins)`, i = 1 … bins − 1. */
export function gridEdges(bins: number): number[] {
  return Array.from({ length: bins - 1 }, (_, i) => probit((i + 1) / bins));
}

/** The bin of `value` among `edges` (bins are left-closed). */
export function binOf(edges: readonly number[], value: number): number {
  let bin = 0;
  while (bin < edges.length && value >= (edges[bin] as number)) bin++;
  return bin;
}

/** The grid cell of standardised vector `z` (row-major over `gridFields`). */
export function gridCell(
  spec: KMeansLayoutSpec,
  z: ArrayLike<number>,
  edges = gridEdges(spec.init.gridBins),
) {
  let cell = 0;
  for (const field of spec.init.gridFields) {
    cell = cell * spec.init.gridBins + binOf(edges, z[fieldIndex(field)] ?? 0);
  }
  return cell;
}

/** The centre of each grid cell in the gridded fields: the median of N(0, 1) within each bin. */
export function binCentres(bins: number): number[] {
  return Array.from({ length: bins }, (_, i) => probit((i + 0.5) / bins));
}

/** The histogram bin of a standardised value: `histogramBins` equal bins over [−Z_CLAMP, Z_CLAMP]. */
export function histogramBin(bins: number, z: number): number {
  const width = (2 * Z_CLAMP) / bins;
  return Math.min(bins - 1, Math.max(0, Math.floor((z + Z_CLAMP) / width)));
}

/** Lower edge (standardised) of histogram bin `bin`. */
export const histogramEdge = (bins: number, bin: number): number => -Z_CLAMP + (bin * 2 * Z_CLAMP) / bins;

/** Offset of the histograms in an init vector. */
export const histogramOffset = (spec: KMeansLayoutSpec): number => gridCells(spec) * BLOCK;

/** Squared Euclidean distance over the first `PROFILE_DIMENSION` coordinates. */
export function squaredDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < PROFILE_DIMENSION; i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    s += diff * diff;
  }
  return s;
}

/** The nearest of `centroids` to `z`, and the distance to it (ties go to the lower index). */
export function nearestCentroid(
  centroids: ReadonlyArray<ArrayLike<number>>,
  z: ArrayLike<number>,
): { index: number; distance: number } {
  let index = 0;
  let best = Number.POSITIVE_INFINITY;
  centroids.forEach((c, i) => {
    const d = squaredDistance(c, z);
    if (d < best) {
      best = d;
      index = i;
    }
  });
  return { index, distance: Math.sqrt(best) };
}

/** `z` clipped to L2 norm `clip` (a copy; finite input only). */
export function clipL2(z: ArrayLike<number>, clip: number): Float64Array {
  const out = Float64Array.from({ length: PROFILE_DIMENSION }, (_, i) => {
    const v = z[i] ?? 0;
    if (!Number.isFinite(v)) throw new RangeError(`vector[${i}] is not finite`);
    return v;
  });
  let norm = 0;
  for (const v of out) norm += v * v;
  norm = Math.sqrt(norm);
  if (norm > clip) for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) * (clip / norm);
  return out;
}
