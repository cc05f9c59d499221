/**
 * The server half of federated collaborative filtering (FCF, Ammad-ud-din et al. 2019) on
 * implicit feedback. Each round's decoded aggregate is the noisy sum of the devices' vectors over
 * one item block (layout in `@fedprofile/protocol/models`, `fcf-layout.ts`): Σ x xᵀ, the sparse
 * gradient parts Σ s_j and the purchase counts. The trainer turns it into the item-factor gradient
 *
 *   g_j = (G y_j + S_j + λ y_j) / n,   G = Σ_u x_u x_uᵀ,
 *
 * and takes one step on the block's rows: by default (`mm`) the gradient preconditioned by
 * M_j = G + (h_j + λ)I, where h_j is the noisy Σ (c_uj − 1)‖x_u‖² ≥ the largest eigenvalue of the
 * item's sparse Hessian part, so M_j majorises the Hessian and y_j − M_j⁻¹ g_j never increases the
 * loss (a majorise-minimise step, Lange 2016; a full ALS step when h_j is tight); or Adam (Kingma &
 * Ba 2015) or Adagrad (Duchi et al. 2011), as FCF does with the summed device gradients. Under DP
 * the step is made safe: the noisy G is projected to PSD, the MM preconditioner is damped by the
 * round's noise, each row moves at most `trustRadius` and stays within `maxFactorNorm`, and a row
 * that comes out non-finite keeps its old value; YᵀY is then computed from the published (int8)
 * factors, the ones devices solve against. Everything here is post-processing of the DP
 * release, so it spends no further budget. The counts give the DP popularity of the cold start.
 */

import { choleskySolve } from "@fedprofile/protocol/linalg";
import {
  dequantiseFactors,
  type FcfBlock,
  fcfBlock,
  fcfBlockCount,
  fcfDimension,
  fcfOffsets,
  fcfSensitivity,
  quantiseFactors,
} from "@fedprofile/protocol/models";
import type { Catalogue, FcfModelParams, FcfSpec } from "@fedprofile/protocol/wire";
import { seededUniform } from "./lloyd";

/** The trainer's FCF state between rounds (serialisable by structured clone). */
export interface FcfState {
  kind: "fcf";
  phase: "train";
  /** Rounds applied so far. */
  iteration: number;
  /** The server's item factors, items × rank, row-major. */
  factors: Float32Array;
  /** Adam's first and second moments (Adagrad keeps its sum of squares in `moment2`). */
  moment1: Float32Array;
  moment2: Float32Array;
  /** Steps taken per block (Adam's bias correction is per row, and a row moves once per pass). */
  steps: number[];
  /** DP purchase counts per item: the mean of the rounds over its block so far. */
  popularity: Float64Array;
}

export interface FcfUpdate {
  state: FcfState;
  /** The published factors: int8 with a float32 scale per row. */
  weights: Uint8Array;
  params: FcfModelParams;
  metrics: Record<string, number>;
}

/** The seeded, public initial item factors: N(0, initScale² / rank) each (Box–Muller). */
export function initialFcfState(spec: FcfSpec, items: number): FcfState {
  const random = seededUniform(spec.seed);
  const sd = spec.initScale / Math.sqrt(spec.rank);
  const factors = new Float32Array(items * spec.rank);
  for (let i = 0; i < factors.length; i++) {
    factors[i] = sd * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  }
  return {
    kind: "fcf",
    phase: "train",
    iteration: 0,
    factors,
    moment1: new Float32Array(factors.length),
    moment2: new Float32Array(factors.length),
    steps: new Array<number>(fcfBlockCount(items, spec.blockSize)).fill(0),
    popularity: new Float64Array(items),
  };
}

/** The next round's block (round-robin over the catalogue: public, data-independent), dimension and sensitivity. */
export function fcfTask(spec: FcfSpec, items: number, state: Pick<FcfState, "iteration">) {
  return {
    phase: "train" as const,
    block: fcfBlock(items, spec.blockSize, state.iteration),
    dimension: fcfDimension(spec),
    sensitivity: fcfSensitivity(spec),
  };
}

/** YᵀY (rank × rank, row-major) of row-major factors. */
export function gramOf(factors: ArrayLike<number>, items: number, rank: number): number[] {
  const g = new Float64Array(rank * rank);
  for (let i = 0; i < items; i++) {
    const o = i * rank;
    for (let a = 0; a < rank; a++) {
      const ya = factors[o + a] as number;
      if (ya === 0) continue;
      for (let b = a; b < rank; b++)
        g[a * rank + b] = (g[a * rank + b] as number) + ya * (factors[o + b] as number);
    }
  }
  for (let a = 0; a < rank; a++) for (let b = 0; b < a; b++) g[a * rank + b] = g[b * rank + a] as number;
  return Array.from(g);
}

/** The published version of `state`: quantised factors, the Gram of what devices will use, DP popularity. */
export function publishFcf(
  spec: FcfSpec,
  catalogue: Catalogue,
  state: FcfState,
): { weights: Uint8Array; params: FcfModelParams } {
  const items = catalogue.items.length;
  const weights = quantiseFactors(state.factors, items, spec.rank);
  const published = dequantiseFactors(weights, items, spec.rank);
  return {
    weights,
    params: {
      kind: "fcf",
      iteration: state.iteration,
      spec,
      rank: spec.rank,
      encoding: "int8-row-scale",
      items: catalogue.items,
      ...(catalogue.categories ? { categories: catalogue.categories } : {}),
      gram: gramOf(published, items, spec.rank),
      popularity: Array.from(state.popularity, (c) => Math.max(0, Math.round(c))),
      blocks: fcfBlockCount(items, spec.blockSize),
    },
  };
}

/** Applies one round's decoded aggregate over `block`: one optimiser step on the block's rows. */
export function applyFcf(
  spec: FcfSpec,
  catalogue: Catalogue,
  state: FcfState,
  block: FcfBlock,
  aggregate: ArrayLike<number>,
  info: { contributors: number; noiseStddev: number },
): FcfUpdate {
  const expected = fcfDimension(spec);
  if (aggregate.length !== expected) {
    throw new RangeError(`fcf: aggregate has ${aggregate.length} values, expected ${expected}`);
  }
  for (let i = 0; i < aggregate.length; i++) {
    if (!Number.isFinite(aggregate[i])) throw new RangeError(`fcf: aggregate[${i}] is not finite`);
  }
  const r = spec.rank;
  const off = fcfOffsets(spec);
  const n = Math.max(1, info.contributors);
  // G is symmetric; averaging the two halves halves the noise of each entry.
  const gram = new Float64Array(r * r);
  for (let a = 0; a < r; a++) {
    for (let b = 0; b < r; b++) {
      gram[a * r + b] = ((aggregate[a * r + b] as number) + (aggregate[b * r + a] as number)) / 2;
    }
  }
  // The true G = Σ x xᵀ is positive semi-definite; its noisy release need not be. The nearest
  // PSD matrix in Frobenius norm (Higham 1988) is post-processing, so it spends no budget, and
  // with λ > 0 it keeps the MM preconditioner positive definite.
  const negative = projectPsd(gram, r);
  // tr(G)/n, the mean ‖x‖²: with `curvature: "counts"`, h_j ≈ count_j·α·w_purchase·tr(G)/n (one
  // order per buyer, the mode on retail), from the DP counts instead of a released h_j.
  let meanNorm = 0;
  for (let a = 0; a < r; a++) meanNorm += gram[a * r + a] as number;
  meanNorm = Math.max(0, meanNorm) / n;
  // Noise-aware damping (Levenberg–Marquardt): the DP noise of a row's gradient has norm about
  // σ√r/n; with μ = 2σ√r/trustRadius added to the preconditioner's diagonal, noise alone moves a
  // row by at most half the trust radius, so noisy rows shrink rather than random-walk. 0 without DP.
  const damping = (2 * info.noiseStddev * Math.sqrt(r)) / spec.trustRadius;
  const factors = Float32Array.from(state.factors);
  const moment1 = Float32Array.from(state.moment1);
  const moment2 = Float32Array.from(state.moment2);
  const steps = [...state.steps];
  const t = (steps[block.index] ?? 0) + 1;
  steps[block.index] = t;
  const popularity = Float64Array.from(state.popularity);
  const beta1 = 0.9;
  const beta2 = 0.999;
  const eps = 1e-8;
  const lr = spec.learningRate;
  let gradSq = 0;
  let countMass = 0;
  let stepSq = 0;
  let maxStep = 0;
  let clippedRows = 0;
  let rejectedRows = 0;
  const grad = new Float64Array(r);
  const before = new Float64Array(r);
  const precond = new Float64Array(r * r);
  for (let k = 0; k < block.size; k++) {
    const row = block.start + k;
    const o = row * r;
    for (let a = 0; a < r; a++) before[a] = factors[o + a] as number;
    for (let a = 0; a < r; a++) {
      let gy = 0;
      for (let b = 0; b < r; b++) gy += (gram[a * r + b] as number) * (factors[o + b] as number);
      const s = aggregate[off.items + k * r + a] as number;
      grad[a] = (gy + s + spec.lambda * (factors[o + a] as number)) / n;
      gradSq += (grad[a] as number) ** 2;
    }
    if (spec.optimizer === "mm") {
      // M_j / n with noise: a negative h_j (noise) is taken as 0, and M_j keeps λ on its diagonal.
      const released =
        spec.curvature === "counts"
          ? ((aggregate[off.counts + k] as number) / spec.countScale) *
            spec.alpha *
            spec.purchaseWeight *
            meanNorm
          : (aggregate[off.curvature + k] as number);
      const h = Math.max(0, released) / spec.curvatureSpread;
      for (let a = 0; a < r * r; a++) precond[a] = (gram[a] as number) / n;
      for (let a = 0; a < r; a++)
        precond[a * r + a] = (precond[a * r + a] as number) + (h + spec.lambda + damping) / n;
      const step = solveSpd(precond, grad, r);
      for (let a = 0; a < r; a++) factors[o + a] = (factors[o + a] as number) - lr * (step[a] as number);
    }
    for (let a = 0; a < r && spec.optimizer !== "mm"; a++) {
      const g = grad[a] as number;
      const i = o + a;
      if (spec.optimizer === "adam") {
        moment1[i] = beta1 * (moment1[i] as number) + (1 - beta1) * g;
        moment2[i] = beta2 * (moment2[i] as number) + (1 - beta2) * g * g;
        const mHat = (moment1[i] as number) / (1 - beta1 ** t);
        const vHat = (moment2[i] as number) / (1 - beta2 ** t);
        factors[i] = (factors[i] as number) - (lr * mHat) / (Math.sqrt(vHat) + eps);
      } else {
        moment2[i] = (moment2[i] as number) + g * g;
        factors[i] = (factors[i] as number) - (lr * g) / (Math.sqrt(moment2[i] as number) + eps);
      }
    }
    const moved = boundRow(factors, o, r, before, spec);
    if (moved.rejected) rejectedRows++;
    if (moved.clipped) clippedRows++;
    stepSq += moved.step ** 2;
    maxStep = Math.max(maxStep, moved.step);
    const count = (aggregate[off.counts + k] as number) / spec.countScale;
    // The mean of this row's releases so far (its t-th): the training counts do not change
    // between passes, so averaging the t noisy releases cuts their noise by √t (post-processing).
    popularity[row] = (popularity[row] as number) + (count - (popularity[row] as number)) / t;
    countMass += count;
  }
  const next: FcfState = {
    ...state,
    iteration: state.iteration + 1,
    factors,
    moment1,
    moment2,
    steps,
    popularity,
  };
  const { weights, params } = publishFcf(spec, catalogue, next);
  return {
    state: next,
    weights,
    params,
    metrics: {
      block: block.index,
      gradNorm: Math.sqrt(gradSq),
      stepNorm: Math.sqrt(stepSq),
      maxRowStep: maxStep,
      clippedRows,
      rejectedRows,
      negativeGramEigenvalues: negative,
      damping,
      countMass,
      noiseStddev: info.noiseStddev,
    },
  };
}

/**
 * The trust region of one row after its step (`spec.trustRadius`, `spec.maxFactorNorm`): a step
 * longer than the radius is shortened to it, the row is projected into the factor ball, and a
 * row that came out non-finite keeps its previous value (rejected).
 */
function boundRow(
  factors: Float32Array,
  o: number,
  r: number,
  before: Float64Array,
  spec: Pick<FcfSpec, "trustRadius" | "maxFactorNorm">,
): { step: number; clipped: boolean; rejected: boolean } {
  let stepSq = 0;
  for (let a = 0; a < r; a++) stepSq += ((factors[o + a] as number) - (before[a] as number)) ** 2;
  if (!Number.isFinite(stepSq)) {
    for (let a = 0; a < r; a++) factors[o + a] = before[a] as number;
    return { step: 0, clipped: false, rejected: true };
  }
  let step = Math.sqrt(stepSq);
  let clipped = false;
  if (step > spec.trustRadius) {
    const t = spec.trustRadius / step;
    for (let a = 0; a < r; a++) {
      const b = before[a] as number;
      factors[o + a] = b + t * ((factors[o + a] as number) - b);
    }
    step = spec.trustRadius;
    clipped = true;
  }
  let normSq = 0;
  for (let a = 0; a < r; a++) normSq += (factors[o + a] as number) ** 2;
  if (normSq > spec.maxFactorNorm ** 2) {
    const t = spec.maxFactorNorm / Math.sqrt(normSq);
    for (let a = 0; a < r; a++) factors[o + a] = (factors[o + a] as number) * t;
    clipped = true;
  }
  return { step, clipped, rejected: false };
}

/**
 * Replaces symmetric `m` (n × n, row-major) in place by its nearest positive semi-definite matrix
 * in Frobenius norm, V max(Λ, 0) Vᵀ (Higham 1988), by cyclic Jacobi (Golub & Van Loan §8.5).
 * Returns how many eigenvalues were negative.
 */
export function projectPsd(m: Float64Array, n: number): number {
  const a = Float64Array.from(m);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < n * n; i++) total += (a[i] as number) ** 2;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += (a[p * n + q] as number) ** 2;
    if (off <= 1e-24 * total) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q] as number;
        if (apq === 0) continue;
        const theta = ((a[q * n + q] as number) - (a[p * n + p] as number)) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p] as number;
          const akq = a[k * n + q] as number;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k] as number;
          const aqk = a[q * n + k] as number;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p] as number;
          const vkq = v[k * n + q] as number;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  let negative = 0;
  const lambda = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const l = a[i * n + i] as number;
    if (l < 0) negative++;
    lambda[i] = Math.max(0, l);
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let k = 0; k < n; k++)
        sum += (v[i * n + k] as number) * (lambda[k] as number) * (v[j * n + k] as number);
      m[i * n + j] = sum;
    }
  }
  return negative;
}

/**
 * Solves M s = g for symmetric M (rank × rank, row-major) by Cholesky; a noisy M that is not
 * positive definite gets its diagonal raised until it is (Tikhonov), so a DP release never stops
 * the run.
 */
export function solveSpd(m: Float64Array, g: Float64Array, n: number): Float64Array {
  let scale = 0;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(m[i * n + i] as number));
  for (let attempt = 0, shift = 0; attempt < 30; attempt++) {
    try {
      return choleskySolve(m, g, n, shift);
    } catch {
      shift = shift === 0 ? Math.max(1e-9, scale * 1e-6) : shift * 4;
    }
  }
  throw new RangeError("solveSpd: no positive-definite shift found");
}
