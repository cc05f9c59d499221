/**
 * Centralised implicit ALS (Hu, Koren & Volinsky 2008), the recommendation eval's baseline, in
 * the form that scales to the 100,000-user population: both sides held as CSR (Int32Array rows,
 * Float64Array confidences), YᵀY (or XᵀX) formed once per half-sweep, and each row solved by an
 * in-place Cholesky in one preallocated rank × rank buffer. Per row: O(n_u·k²/2 + k³/6), no
 * allocation. Only the lower triangle is formed (the Cholesky reads no other), which halves the
 * n_u·k² term (HKV §4; the same normal equations as their eq. 4 and 5).
 *
 * The arithmetic is the one of the earlier per-row `choleskySolve` version term for term, so the
 * factors agree to the last bit (test/node/recs-als.test.ts keeps that version as the reference).
 */
import { seededUniform } from "@fedprofile/coordinator/models";
import type { RecsData } from "./recs-data";

export interface AlsConfig {
  rank: number;
  alpha: number;
  lambda: number;
  iterations: number;
  seed: number;
}

/** One side of the interaction matrix as CSR: row r's entries are `ptr[r]..ptr[r+1]`. */
interface Csr {
  ptr: Int32Array;
  col: Int32Array;
  /** HKV's confidence c = 1 + α·w (c − 1 is the weight above the one every zero also has). */
  conf: Float64Array;
}

function userCsr(data: RecsData, alpha: number): Csr {
  let nnz = 0;
  for (const u of data.users) nnz += u.items.size;
  const ptr = new Int32Array(data.users.length + 1);
  const col = new Int32Array(nnz);
  const conf = new Float64Array(nnz);
  let e = 0;
  data.users.forEach((u, ui) => {
    for (const [row, w] of u.items) {
      col[e] = row;
      conf[e] = 1 + alpha * w;
      e++;
    }
    ptr[ui + 1] = e;
  });
  return { ptr, col, conf };
}

/** The transpose of `csr` (`columns` columns), entries in row order within each column. */
function transpose(csr: Csr, columns: number): Csr {
  const ptr = new Int32Array(columns + 1);
  for (let e = 0; e < csr.col.length; e++) {
    const j = (csr.col[e] as number) + 1;
    ptr[j] = (ptr[j] as number) + 1;
  }
  for (let j = 0; j < columns; j++) ptr[j + 1] = (ptr[j + 1] as number) + (ptr[j] as number);
  const fill = ptr.slice(0, columns);
  const col = new Int32Array(csr.col.length);
  const conf = new Float64Array(csr.col.length);
  for (let u = 0; u + 1 < csr.ptr.length; u++) {
    for (let e = csr.ptr[u] as number; e < (csr.ptr[u + 1] as number); e++) {
      const j = csr.col[e] as number;
      const at = fill[j] as number;
      col[at] = u;
      conf[at] = csr.conf[e] as number;
      fill[j] = at + 1;
    }
  }
  return { ptr, col, conf };
}

/** Lower triangle of MᵀM for `count` rows of rank `r` (row-major), into `g`. */
function gramLower(m: Float64Array, count: number, r: number, g: Float64Array): void {
  g.fill(0);
  for (let i = 0; i < count; i++) {
    const o = i * r;
    for (let a = 0; a < r; a++) {
      const va = m[o + a] as number;
      for (let b = a; b < r; b++) g[b * r + a] = (g[b * r + a] as number) + va * (m[o + b] as number);
    }
  }
}

/**
 * Solves every row of `csr` against the fixed side `fixed` (gram `g`, lower triangle) into `out`:
 * (G + Fᵤᵀ(Cᵤ − I)Fᵤ + λI) x = Fᵤᵀ Cᵤ 1, by Cholesky in place in `a`.
 */
function halfSweep(
  csr: Csr,
  fixed: Float64Array,
  g: Float64Array,
  r: number,
  lambda: number,
  out: Float64Array,
  a: Float64Array,
  b: Float64Array,
): void {
  const rows = csr.ptr.length - 1;
  for (let u = 0; u < rows; u++) {
    for (let p = 0; p < r; p++) {
      const o = p * r;
      for (let q = 0; q <= p; q++) a[o + q] = g[o + q] as number;
      a[o + p] = (a[o + p] as number) + lambda;
      b[p] = 0;
    }
    const end = csr.ptr[u + 1] as number;
    for (let e = csr.ptr[u] as number; e < end; e++) {
      const fo = (csr.col[e] as number) * r;
      const c = csr.conf[e] as number;
      const w = c - 1;
      for (let p = 0; p < r; p++) {
        const vp = fixed[fo + p] as number;
        b[p] = (b[p] as number) + c * vp;
        const wp = w * vp;
        const o = p * r;
        for (let q = 0; q <= p; q++) a[o + q] = (a[o + q] as number) + wp * (fixed[fo + q] as number);
      }
    }
    // Cholesky A = LLᵀ in place (lower triangle), then Ly = b, Lᵀx = y.
    for (let i = 0; i < r; i++) {
      const oi = i * r;
      for (let j = 0; j <= i; j++) {
        const oj = j * r;
        let s = a[oi + j] as number;
        for (let k = 0; k < j; k++) s -= (a[oi + k] as number) * (a[oj + k] as number);
        if (i === j) {
          if (!(s > 0)) throw new RangeError("trainAls: matrix is not positive definite");
          a[oi + i] = Math.sqrt(s);
        } else a[oi + j] = s / (a[oj + j] as number);
      }
    }
    const xo = u * r;
    for (let i = 0; i < r; i++) {
      const oi = i * r;
      let s = b[i] as number;
      for (let k = 0; k < i; k++) s -= (a[oi + k] as number) * (b[k] as number);
      b[i] = s / (a[oi + i] as number);
    }
    for (let i = r - 1; i >= 0; i--) {
      let s = b[i] as number;
      for (let k = i + 1; k < r; k++) s -= (a[k * r + i] as number) * (out[xo + k] as number);
      out[xo + i] = s / (a[i * r + i] as number);
    }
  }
}

/** Centralised implicit ALS: returns item factors (row-major) and user factors. */
export function trainAls(data: RecsData, config: AlsConfig): { items: Float64Array; users: Float64Array[] } {
  const r = config.rank;
  const n = data.items.length;
  const m = data.users.length;
  const random = seededUniform(config.seed);
  const y = Float64Array.from({ length: n * r }, () => (random() - 0.5) * (0.6 / Math.sqrt(r)));
  const x = new Float64Array(m * r);
  const byUser = userCsr(data, config.alpha);
  const byItem = transpose(byUser, n);
  const g = new Float64Array(r * r);
  const a = new Float64Array(r * r);
  const b = new Float64Array(r);
  for (let it = 0; it < config.iterations; it++) {
    gramLower(y, n, r, g);
    halfSweep(byUser, y, g, r, config.lambda, x, a, b);
    gramLower(x, m, r, g);
    halfSweep(byItem, x, g, r, config.lambda, y, a, b);
  }
  // Final user factors against the final item factors.
  gramLower(y, n, r, g);
  halfSweep(byUser, y, g, r, config.lambda, x, a, b);
  return { items: y, users: Array.from({ length: m }, (_, u) => x.subarray(u * r, (u + 1) * r)) };
}
