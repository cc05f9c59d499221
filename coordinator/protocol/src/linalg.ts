/**
 * `@fedprofile/protocol/linalg`: the rank × rank solve both fcf halves need (tfjs has no solver):
 * the device solves its user factor, the server its preconditioned step. Its own subpath, so only
 * the lazily loaded fcf code pulls it in, never the SDK's main entry.
 */

/**
 * Solves A x = b for symmetric positive-definite A (n × n, row-major) by Cholesky, with `shift`
 * added to the diagonal (Tikhonov; 0 for none). Throws `RangeError` when A + shift·I is not
 * positive definite.
 */
export function choleskySolve(a: Float64Array, b: Float64Array, n: number, shift = 0): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = (a[i * n + j] as number) + (i === j ? shift : 0);
      for (let k = 0; k < j; k++) s -= (l[i * n + k] as number) * (l[j * n + k] as number);
      if (i === j) {
        if (!(s > 0)) throw new RangeError("choleskySolve: matrix is not positive definite");
        l[i * n + i] = Math.sqrt(s);
      } else l[i * n + j] = s / (l[j * n + j] as number);
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i] as number;
    for (let k = 0; k < i; k++) s -= (l[i * n + k] as number) * (y[k] as number);
    y[i] = s / (l[i * n + i] as number);
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i] as number;
    for (let k = i + 1; k < n; k++) s -= (l[k * n + i] as number) * (x[k] as number);
    x[i] = s / (l[i * n + i] as number);
  }
  return x;
}
