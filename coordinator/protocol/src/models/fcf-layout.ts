/**
 * The vector layout of federated collaborative filtering (FCF, Ammad-ud-din et al. 2019) on
 * implicit feedback (Hu, Koren & Volinsky 2008), shared by the device half
 * (`sdk/src/models/fcf.ts`) and the server half (`coordinator/src/models/fcf.ts`). Pure.
 *
 * The implicit-ALS loss is L = Σ_u Σ_j c_uj (p_uj − x_u·y_j)² + λ(‖X‖² + ‖Y‖²), with p_uj = 1 for
 * an item the user touched (0 otherwise) and confidence c_uj = 1 + α·w_uj. Its gradient in y_j
 * (halved) splits, as HKV's own speed-up does, into a part every user has and a sparse part:
 *
 *   ½ ∂L/∂y_j = (Σ_u x_u x_uᵀ) y_j + Σ_{u touched j} [(c_uj − 1)(x_u·y_j) − c_uj] x_u + λ y_j.
 *
 * So a device sends, for the round's item block (chosen by the trainer, public, the same for
 * every device), one vector of fixed shape whatever it holds:
 *
 *   [ x xᵀ (rank², row-major) | s_j for each of the block's `blockSize` items (rank each) |
 *     h_j = (c_uj − 1)‖x‖² per block item | a count slot per block item (1 if bought) ]
 *
 * h_j sums to tr(H_j), the trace of item j's sparse Hessian part Σ (c_uj − 1) x xᵀ, which bounds
 * its largest eigenvalue: the trainer's step preconditioned by G + (h_j + λ)I is then a
 * majorise-minimise step on the (quadratic) loss in y_j, and never overshoots. Each part is
 * clipped on its own (L2 `clipGram`, `clipItems`, `clipCurvature`, `clipCounts`), so one device
 * moves the sum by at most the root of their squares: the round's user-level L2 sensitivity. The user factor x never leaves the device; x xᵀ is its outer product, summed
 * with every other device's under SecAgg and DP noise.
 */

/** The parts of an FCF spec the layout depends on. */
export interface FcfLayoutSpec {
  rank: number;
  blockSize: number;
  clipGram: number;
  clipItems: number;
  clipCurvature: number;
  clipCounts: number;
  /** `counts`: the curvature slots are not sent (zero), so they take no sensitivity. */
  curvature?: "released" | "counts";
}

/** One round's item block: catalogue rows `[start, start + size)`. */
export interface FcfBlock {
  index: number;
  start: number;
  size: number;
}

/** Number of blocks a catalogue of `items` splits into. */
export const fcfBlockCount = (items: number, blockSize: number): number =>
  Math.max(1, Math.ceil(items / blockSize));

/** Block `index` (mod the block count) of a catalogue of `items`. */
export function fcfBlock(items: number, blockSize: number, index: number): FcfBlock {
  const count = fcfBlockCount(items, blockSize);
  const i = ((index % count) + count) % count;
  const start = i * blockSize;
  return { index: i, start, size: Math.min(blockSize, items - start) };
}

/** Offsets of the three parts of a round vector. */
export function fcfOffsets(spec: FcfLayoutSpec) {
  const gram = 0;
  const items = spec.rank * spec.rank;
  const curvature = items + spec.blockSize * spec.rank;
  const counts = curvature + spec.blockSize;
  return { gram, items, curvature, counts, end: counts + spec.blockSize };
}

/** Length of a round's vector: fixed by the spec (a last, shorter block is zero-padded). */
export const fcfDimension = (spec: FcfLayoutSpec): number => fcfOffsets(spec).end;

/** The round's L2 sensitivity (see the module comment). */
export const fcfSensitivity = (spec: FcfLayoutSpec): number =>
  Math.sqrt(
    spec.clipGram ** 2 +
      spec.clipItems ** 2 +
      (spec.curvature === "counts" ? 0 : spec.clipCurvature ** 2) +
      spec.clipCounts ** 2,
  );

/** Scales `v[from, to)` in place so its L2 norm is at most `clip`; returns the norm before. */
export function clipRange(v: Float64Array, from: number, to: number, clip: number): number {
  let s = 0;
  for (let i = from; i < to; i++) {
    const x = v[i] as number;
    if (!Number.isFinite(x)) throw new RangeError(`fcf vector[${i}] is not finite`);
    s += x * x;
  }
  const norm = Math.sqrt(s);
  if (norm > clip) {
    const k = clip / norm;
    for (let i = from; i < to; i++) v[i] = (v[i] as number) * k;
  }
  return norm;
}

/** The weights of implicit signals, and α of HKV's confidence `c = 1 + α·w`. */
export interface FcfSignalWeights {
  alpha: number;
  purchase: number;
  cart: number;
  view: number;
}

/** One item a device touched: distinct orders, cart adds and views of it. */
export interface ItemSignals {
  purchases: number;
  carts: number;
  views: number;
}

/** HKV confidence of one touched item: `1 + α·(w_p·orders + w_c·carts + w_v·views)`. */
export const confidence = (weights: FcfSignalWeights, s: ItemSignals): number =>
  1 + weights.alpha * (weights.purchase * s.purchases + weights.cart * s.carts + weights.view * s.views);

/**
 * Item factors quantised for download: per row a float32 scale (max |y|/127), then the int8
 * rows. `[scales: items × float32 LE][values: items × rank × int8]`.
 */
export function quantiseFactors(factors: ArrayLike<number>, items: number, rank: number): Uint8Array {
  if (factors.length !== items * rank) {
    throw new RangeError(`quantiseFactors: ${factors.length} values, expected ${items} × ${rank}`);
  }
  const out = new Uint8Array(items * 4 + items * rank);
  const view = new DataView(out.buffer);
  const values = new Int8Array(out.buffer, items * 4);
  for (let i = 0; i < items; i++) {
    let max = 0;
    for (let k = 0; k < rank; k++) max = Math.max(max, Math.abs(factors[i * rank + k] as number));
    const scale = max > 0 ? max / 127 : 0;
    view.setFloat32(i * 4, scale, true);
    const s = Math.fround(scale);
    for (let k = 0; k < rank; k++) {
      values[i * rank + k] = s > 0 ? Math.round((factors[i * rank + k] as number) / s) : 0;
    }
  }
  return out;
}

/** The float32 item factors of a quantised download (row-major, items × rank). */
export function dequantiseFactors(bytes: Uint8Array, items: number, rank: number): Float32Array {
  if (bytes.length !== items * 4 + items * rank) {
    throw new RangeError(`dequantiseFactors: ${bytes.length} bytes, expected ${items * (4 + rank)}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Int8Array(bytes.buffer, bytes.byteOffset + items * 4, items * rank);
  const out = new Float32Array(items * rank);
  for (let i = 0; i < items; i++) {
    const scale = view.getFloat32(i * 4, true);
    for (let k = 0; k < rank; k++) out[i * rank + k] = (values[i * rank + k] as number) * scale;
  }
  return out;
}
