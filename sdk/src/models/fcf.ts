/**
 * The device half of federated collaborative filtering (FCF, Ammad-ud-din et al. 2019) on
 * implicit feedback (Hu, Koren & Volinsky 2008), with `@tensorflow/tfjs` for the matrix work.
 *
 * - The device's items come from its own event log (orders, cart adds, views), weighted into HKV
 *   confidences. They never leave the device.
 * - `solveUserFactor`: the closed-form user factor x = (YᵀY + Yᵤᵀ(Cᵤ − I)Yᵤ + λI)⁻¹ Yᵤᵀ Cᵤ 1
 *   against the published factors (YᵀY comes with the version). Never leaves the device.
 * - `contributeFcf`: the round vector over the trainer's item block (layout and sensitivity in
 *   `@fedprofile/protocol/models`, `fcf-layout.ts`), its shape fixed by the spec, clipped per part.
 * - `recommendItems`: scores the whole catalogue on the device, Y x, and explains each pick by the
 *   nearest of the user's own items in factor space.
 *
 * Loaded only by `recommend()` and fcf rounds (`../sync/recs.ts`), never by the tracking core.
 */

import { choleskySolve } from "@fedprofile/protocol/linalg";
import {
  clipRange,
  confidence,
  dequantiseFactors,
  type FcfBlock,
  type FcfSignalWeights,
  fcfOffsets,
  type ItemSignals,
} from "@fedprofile/protocol/models";
import * as tf from "@tensorflow/tfjs";
import { FedprofileError } from "../errors";
import type { EventProperties, StoredEvent } from "../events/schemas";

/**
 * A published fcf version this device cannot use: its YᵀY or factors are not finite, or the user
 * solve's matrix stays indefinite even with a diagonal jitter. Code `model_unusable`: a round
 * computing with it drops this device (nothing of it is revealed) instead of failing `sync()`.
 */
export class FcfModelError extends FedprofileError {
  constructor(message: string) {
    super("model_unusable", message);
    this.name = "FcfModelError";
  }
}

/** The parts of an FCF spec the device needs. */
export interface FcfDeviceSpec {
  rank: number;
  blockSize: number;
  alpha: number;
  purchaseWeight: number;
  cartWeight: number;
  viewWeight: number;
  lambda: number;
  clipGram: number;
  clipItems: number;
  clipCurvature: number;
  clipCounts: number;
  /** The value of a bought item's count slot (default 1). */
  countScale?: number;
  /** `counts`: the curvature slots stay zero (the trainer estimates h_j from the DP counts). */
  curvature?: "released" | "counts";
  /** Weight of the DP popularity in `recommendItems`' score (`popularityZ`; default 0). */
  popularityWeight?: number;
}

/** What the device holds of a published FCF version (decoded once per version). */
export interface FcfModel {
  modelId: string;
  version: number;
  rank: number;
  items: readonly string[];
  categories: ReadonlyArray<string | null> | null;
  /** Row of each item id. */
  rows: ReadonlyMap<string, number>;
  /** Dequantised item factors, items × rank. */
  factors: Float32Array;
  /** YᵀY of `factors`, rank × rank. */
  gram: Float64Array;
  /** DP purchase counts per item. */
  popularity: readonly number[];
}

/** The published version's fields `decodeFcfModel` reads. */
export interface FcfVersion {
  modelId: string;
  version: number;
  weights: Uint8Array;
  params: {
    rank: number;
    items: string[];
    categories?: Array<string | null> | undefined;
    gram: number[];
    popularity: number[];
  };
}

/** Decodes a published version's int8 factors and parameters. */
export function decodeFcfModel(version: FcfVersion): FcfModel {
  const { rank, items } = version.params;
  if (version.params.gram.length !== rank * rank) throw new RangeError("fcf model: gram is not rank × rank");
  const bad = version.params.gram.findIndex((g) => !Number.isFinite(g));
  if (bad >= 0)
    throw new FcfModelError(`fcf model ${version.modelId} v${version.version}: gram[${bad}] is not finite`);
  return {
    modelId: version.modelId,
    version: version.version,
    rank,
    items,
    categories: version.params.categories ?? null,
    rows: new Map(items.map((id, row) => [id, row])),
    factors: dequantiseFactors(version.weights, items.length, rank),
    gram: Float64Array.from(version.params.gram),
    popularity: version.params.popularity,
  };
}

/** An item this device touched, by catalogue row, with its HKV confidence. */
export interface Touched {
  row: number;
  confidence: number;
  /** Distinct orders that contained it (0: only carted or viewed). */
  purchases: number;
}

const productIds = (p: EventProperties): string[] => {
  const ids: string[] = [];
  const one = p.product_id ?? p.sku;
  if (one !== undefined) ids.push(one);
  return ids;
};

/**
 * The device's implicit signals per product, from its own event log: distinct orders containing
 * the product (the recommendation protocol's weight), cart adds and views. Cancelled orders count
 * as the feature fold counts them; refunds are not subtracted.
 */
export function itemSignals(events: readonly StoredEvent[]): Map<string, ItemSignals> {
  const out = new Map<string, ItemSignals>();
  const orders = new Map<string, Set<string>>();
  const get = (id: string) => {
    let s = out.get(id);
    if (!s) {
      s = { purchases: 0, carts: 0, views: 0 };
      out.set(id, s);
    }
    return s;
  };
  for (const event of events) {
    if (event.name === "Order Completed") {
      const order = event.p.order_id ?? event.id;
      for (const line of event.p.products ?? []) {
        const id = line.product_id ?? line.sku;
        if (id === undefined) continue;
        let seen = orders.get(id);
        if (!seen) {
          seen = new Set();
          orders.set(id, seen);
        }
        if (!seen.has(order)) {
          seen.add(order);
          get(id).purchases += 1;
        }
      }
    } else if (event.name === "Product Added" || event.name === "Wishlist Product Added to Cart") {
      for (const id of productIds(event.p)) get(id).carts += 1;
    } else if (event.name === "Product Viewed" || event.name === "Product Clicked") {
      for (const id of productIds(event.p)) get(id).views += 1;
    }
  }
  return out;
}

/** The touched items that are in the model's catalogue, with their confidences. */
export function touchedItems(
  spec: Pick<FcfDeviceSpec, "alpha" | "purchaseWeight" | "cartWeight" | "viewWeight">,
  model: Pick<FcfModel, "rows">,
  signals: ReadonlyMap<string, ItemSignals>,
): Touched[] {
  const weights: FcfSignalWeights = {
    alpha: spec.alpha,
    purchase: spec.purchaseWeight,
    cart: spec.cartWeight,
    view: spec.viewWeight,
  };
  const out: Touched[] = [];
  for (const [id, s] of signals) {
    const row = model.rows.get(id);
    if (row === undefined) continue;
    out.push({ row, confidence: confidence(weights, s), purchases: s.purchases });
  }
  return out.sort((a, b) => a.row - b.row);
}

/**
 * Cholesky with a diagonal jitter (the usual GP/ALS remedy, Rasmussen & Williams 2006 §A.4): a
 * published YᵀY that lost definiteness to rounding (int8 factors) or a diverged model gets
 * `10⁻¹⁰·mean diag`, ×100 per retry, up to 10⁻²·mean diag; past that the model is unusable.
 */
export function choleskySolveJitter(a: Float64Array, b: Float64Array, n: number, what: string): Float64Array {
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a[i * n + i] as number;
  if (!Number.isFinite(trace) || !b.every(Number.isFinite)) {
    throw new FcfModelError(`${what}: the user solve's system is not finite`);
  }
  const scale = Math.max(trace / n, 1e-12);
  for (let jitter = 0; jitter <= 1e-2 * scale; jitter = jitter === 0 ? 1e-10 * scale : jitter * 100) {
    try {
      const x = choleskySolve(a, b, n, jitter);
      if (x.every(Number.isFinite)) return x;
    } catch {
      // not positive definite yet: a larger jitter
    }
  }
  throw new FcfModelError(
    `${what}: the user solve's matrix is not positive definite (even with a jitter of 1e-2·mean diag)`,
  );
}

/** The user's rows of Y (|touched| × rank). */
function touchedRows(model: FcfModel, touched: readonly Touched[]): Float32Array {
  const r = model.rank;
  const out = new Float32Array(touched.length * r);
  touched.forEach((t, i) => {
    out.set(model.factors.subarray(t.row * r, (t.row + 1) * r), i * r);
  });
  return out;
}

/**
 * Touched rows from which tfjs forms Yᵤᵀ(Cᵤ − I)Yᵤ. Below it the products are a few thousand
 * multiply-adds, and tfjs' per-kernel cost dominates: measured in node, 60 rows at rank 32,
 * 1.2 ms (wasm) and 1.6 ms (cpu) per solve against 0.06 ms in plain loops. Both paths are tested
 * to agree. Scoring the catalogue (`recommendItems`) always runs on tfjs.
 */
export const TF_MIN_ROWS = 256;

/**
 * HKV's closed-form user factor (Hu, Koren & Volinsky 2008, eq. 4), with YᵀY precomputed:
 * x = (YᵀY + Yᵤᵀ(Cᵤ − I)Yᵤ + λI)⁻¹ Yᵤᵀ Cᵤ p(u). tfjs forms Yᵤᵀ(Cᵤ − I)Yᵤ and Yᵤᵀ Cᵤ 1 from
 * `TF_MIN_ROWS` rows up; tfjs has no linear solver, so the rank × rank system is solved by
 * Cholesky here.
 */
export function solveUserFactor(
  spec: Pick<FcfDeviceSpec, "lambda">,
  model: FcfModel,
  touched: readonly Touched[],
): Float64Array {
  const r = model.rank;
  const a = Float64Array.from(model.gram);
  for (let k = 0; k < r; k++) a[k * r + k] = (a[k * r + k] as number) + spec.lambda;
  const b = new Float64Array(r);
  if (touched.length >= TF_MIN_ROWS) {
    const [extra, rhs] = tf.tidy(() => {
      const yu = tf.tensor2d(touchedRows(model, touched), [touched.length, r]);
      const c = tf.tensor2d(
        touched.map((t) => t.confidence),
        [touched.length, 1],
      );
      return [tf.matMul(yu, tf.mul(yu, tf.sub(c, 1)), true, false), tf.matMul(yu, c, true, false)];
    });
    const extraValues = extra.dataSync();
    const rhsValues = rhs.dataSync();
    extra.dispose();
    rhs.dispose();
    for (let i = 0; i < r * r; i++) a[i] = (a[i] as number) + (extraValues[i] as number);
    for (let i = 0; i < r; i++) b[i] = rhsValues[i] as number;
  } else {
    const f = model.factors;
    for (const t of touched) {
      const o = t.row * r;
      const w = t.confidence - 1;
      for (let p = 0; p < r; p++) {
        const vp = f[o + p] as number;
        b[p] = (b[p] as number) + t.confidence * vp;
        const wp = w * vp;
        // The lower triangle only: the Cholesky reads no other.
        for (let q = 0; q <= p; q++) a[p * r + q] = (a[p * r + q] as number) + wp * (f[o + q] as number);
      }
    }
  }
  return choleskySolveJitter(a, b, r, `fcf model ${model.modelId} v${model.version}`);
}

/**
 * The DP popularity's standardised log counts, z_j = (ℓ_j − mean ℓ)/sd ℓ with ℓ_j = log(1 + count_j)
 * (all 0 when no count varies). `recommendItems` ranks by (x·y_j)/sd_j(x·y) + w·z_j, w the spec's
 * `popularityWeight`: a popularity prior blended into the factor score (Steck 2011 on popularity
 * in implicit CF; the cold start's own ranking when w dominates). The counts are the trainer's DP
 * release, so this is post-processing and spends no budget; under heavy DP noise the ranking
 * degrades toward DP popularity instead of below it.
 */
export function popularityZ(popularity: readonly number[]): Float32Array {
  const n = popularity.length;
  const l = popularity.map((c) => Math.log1p(Math.max(0, c)));
  const mean = l.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const sd = Math.sqrt(l.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n));
  return Float32Array.from(l, (v) => (sd > 0 ? (v - mean) / sd : 0));
}

/** The blended score of `popularityZ` over raw factor scores (in place; see there). */
export function blendPopularity(scores: Float32Array | Float64Array, z: Float32Array, weight: number): void {
  const n = scores.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += scores[i] as number;
  mean /= Math.max(1, n);
  let v = 0;
  for (let i = 0; i < n; i++) v += ((scores[i] as number) - mean) ** 2;
  const sd = Math.sqrt(v / Math.max(1, n)) || 1;
  for (let i = 0; i < n; i++) scores[i] = ((scores[i] as number) - mean) / sd + weight * (z[i] as number);
}

/**
 * `contributeFcf`'s vector in sparse form, each part already clipped: the dense x xᵀ part, and
 * for each block item this device touched (in `touched` order; rows distinct) its block slot and
 * its item, curvature and count entries. Every other entry of the vector is zero. The vector the
 * device sends is always the dense one (`contributeFcf` scatters this); the eval sums this form
 * so 100,000 simulated devices do not each fill and clip 2^16 zeros.
 */
export interface FcfContribution {
  gram: Float64Array;
  slots: Int32Array;
  items: Float64Array;
  curvature: Float64Array;
  counts: Float64Array;
}

/** The parts of this device's round vector over `block` (see `contributeFcf`). */
export function contributeFcfSparse(
  spec: FcfDeviceSpec,
  block: FcfBlock,
  model: FcfModel,
  touched: readonly Touched[],
  x: Float64Array = solveUserFactor(spec, model, touched),
): FcfContribution {
  const r = spec.rank;
  if (model.rank !== r) throw new RangeError(`fcf: the model's rank ${model.rank} is not the spec's ${r}`);
  if (block.size > spec.blockSize) throw new RangeError("fcf: block larger than the spec's blockSize");
  const gram = new Float64Array(r * r);
  let norm2 = 0;
  for (let a = 0; a < r; a++) {
    norm2 += (x[a] as number) ** 2;
    for (let b = 0; b < r; b++) gram[a * r + b] = (x[a] as number) * (x[b] as number);
  }
  const inBlock = touched.filter((t) => t.row >= block.start && t.row - block.start < block.size);
  const slots = Int32Array.from(inBlock, (t) => t.row - block.start);
  const items = new Float64Array(inBlock.length * r);
  const curvature = new Float64Array(inBlock.length);
  const counts = new Float64Array(inBlock.length);
  inBlock.forEach((t, i) => {
    let dot = 0;
    for (let a = 0; a < r; a++) dot += (x[a] as number) * (model.factors[t.row * r + a] as number);
    const coef = (t.confidence - 1) * dot - t.confidence;
    for (let a = 0; a < r; a++) items[i * r + a] = coef * (x[a] as number);
    if (spec.curvature !== "counts") curvature[i] = (t.confidence - 1) * norm2;
    if (t.purchases > 0) counts[i] = spec.countScale ?? 1;
  });
  // Zeros add nothing to a norm: clipping the nonzero entries clips the dense part.
  clipRange(gram, 0, gram.length, spec.clipGram);
  clipRange(items, 0, items.length, spec.clipItems);
  if (spec.curvature !== "counts") clipRange(curvature, 0, curvature.length, spec.clipCurvature);
  clipRange(counts, 0, counts.length, spec.clipCounts);
  return { gram, slots, items, curvature, counts };
}

/**
 * This device's vector for a round over `block`: x xᵀ, then per block item
 * s_j = [(c_j − 1)(x·y_j) − c_j] x for the items it touched (zero for the others), then
 * h_j = (c_j − 1)‖x‖², then a 1 in the count slot of each block item it bought. Each part is clipped to its own L2 bound, so the
 * vector never moves the sum by more than the spec's sensitivity, and its length is fixed by the
 * spec: which items the device holds does not show in its shape.
 */
export function contributeFcf(
  spec: FcfDeviceSpec,
  block: FcfBlock,
  model: FcfModel,
  touched: readonly Touched[],
  x: Float64Array = solveUserFactor(spec, model, touched),
): Float64Array {
  const r = spec.rank;
  const parts = contributeFcfSparse(spec, block, model, touched, x);
  const off = fcfOffsets(spec);
  const out = new Float64Array(off.end);
  out.set(parts.gram, off.gram);
  parts.slots.forEach((k, i) => {
    out.set(parts.items.subarray(i * r, (i + 1) * r), off.items + k * r);
    out[off.curvature + k] = parts.curvature[i] as number;
    out[off.counts + k] = parts.counts[i] as number;
  });
  return out;
}

/** One recommendation: a product id, its score, and why. */
export interface Recommendation {
  productId: string;
  score: number;
  category: string | null;
  /** `similar`: nearest of the user's own items in factor space; `popular`: the DP popularity (cold start). */
  reason: { kind: "similar"; productId: string; text: string } | { kind: "popular"; text: string };
}

export interface RecommendOptions {
  /** Only items in these categories. */
  categories?: readonly string[];
  /** Also exclude items the device carted or viewed (default: only what it bought). */
  excludeTouched?: boolean;
}

/** Catalogue factors as a tfjs tensor, and the popularity's `popularityZ`, kept per model version. */
let cached: { key: string; tensor: tf.Tensor2D; z: Float32Array } | null = null;
function factorTensor(model: FcfModel): { tensor: tf.Tensor2D; z: Float32Array } {
  const key = `${model.modelId}@${model.version}`;
  if (cached?.key === key) return cached;
  cached?.tensor.dispose();
  cached = {
    key,
    tensor: tf.tensor2d(model.factors, [model.items.length, model.rank]),
    z: popularityZ(model.popularity),
  };
  return cached;
}

/**
 * The top `n` items for this device, scored on the device: Y x over the whole catalogue, blended
 * with the DP popularity by the spec's `popularityWeight` (`popularityZ`; tfjs matMul and topk), without what it bought (and, with `excludeTouched`, anything it touched),
 * within `categories`. Without any touched item in the catalogue, the DP popularity ranks.
 */
export function recommendItems(
  spec: Pick<FcfDeviceSpec, "lambda" | "popularityWeight">,
  model: FcfModel,
  touched: readonly Touched[],
  n: number,
  options: RecommendOptions = {},
): Recommendation[] {
  const count = model.items.length;
  const r = model.rank;
  const allowed = new Float32Array(count);
  const wanted = options.categories ? new Set(options.categories) : null;
  for (let i = 0; i < count; i++) {
    if (wanted && !wanted.has(model.categories?.[i] ?? "")) allowed[i] = Number.NEGATIVE_INFINITY;
  }
  for (const t of touched) {
    if (t.purchases > 0 || options.excludeTouched) allowed[t.row] = Number.NEGATIVE_INFINITY;
  }
  const k = Math.max(0, Math.min(n, count));
  if (k === 0) return [];
  const bought = touched.filter((t) => t.purchases > 0);
  const anchors = bought.length > 0 ? bought : touched;
  let x: Float64Array | null = null;
  if (anchors.length > 0) {
    try {
      x = solveUserFactor(spec, model, touched);
    } catch (error) {
      // A model this device cannot solve against still ranks by its DP popularity.
      if (!(error instanceof FcfModelError)) throw error;
    }
  }
  if (x === null) {
    const order = [...model.popularity.keys()]
      .filter((i) => allowed[i] === 0)
      .sort((a, b) => (model.popularity[b] as number) - (model.popularity[a] as number) || a - b)
      .slice(0, k);
    return order.map((i) => ({
      productId: model.items[i] as string,
      score: model.popularity[i] as number,
      category: model.categories?.[i] ?? null,
      reason: { kind: "popular", text: "popular in this shop" },
    }));
  }
  const user = x;
  // Outside the tidy: the cached catalogue tensor outlives this call.
  const { tensor: factors, z } = factorTensor(model);
  const weight = spec.popularityWeight ?? 0;
  const [values, indices] = tf.tidy(() => {
    const xt = tf.tensor2d(Float32Array.from(user), [r, 1]);
    let raw = tf.reshape(tf.matMul(factors, xt), [count]);
    if (weight > 0) {
      // blendPopularity, on tfjs.
      const { mean, variance } = tf.moments(raw);
      const sd = tf.maximum(tf.sqrt(variance), 1e-30);
      raw = tf.add(tf.div(tf.sub(raw, mean), sd), tf.mul(tf.tensor1d(z), weight));
    }
    const scores = tf.add(raw, allowed);
    const top = tf.topk(scores, k);
    return [top.values, top.indices];
  });
  const scores = values.dataSync();
  const rows = indices.dataSync();
  values.dispose();
  indices.dispose();
  const verb = bought.length > 0 ? "bought" : "looked at";
  const out: Recommendation[] = [];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as number;
    const score = scores[i] as number;
    if (!Number.isFinite(score)) break;
    const near = nearestAnchor(model, row, anchors);
    const because = model.items[near] as string;
    out.push({
      productId: model.items[row] as string,
      score,
      category: model.categories?.[row] ?? null,
      reason: { kind: "similar", productId: because, text: `because you ${verb} ${because}` },
    });
  }
  return out;
}

/** The anchor row nearest to `row` by cosine similarity of item factors. */
function nearestAnchor(model: FcfModel, row: number, anchors: readonly Touched[]): number {
  const r = model.rank;
  const f = model.factors;
  const norm = (i: number) => {
    let s = 0;
    for (let a = 0; a < r; a++) s += (f[i * r + a] as number) ** 2;
    return Math.sqrt(s) || 1;
  };
  const nr = norm(row);
  let best = anchors[0]?.row ?? row;
  let bestSim = Number.NEGATIVE_INFINITY;
  for (const t of anchors) {
    let dot = 0;
    for (let a = 0; a < r; a++) dot += (f[row * r + a] as number) * (f[t.row * r + a] as number);
    const sim = dot / (nr * norm(t.row));
    if (sim > bestSim) {
      bestSim = sim;
      best = t.row;
    }
  }
  return best;
}
