/**
 * Choosing the SecAgg+ degree k and threshold t (Bell et al. CCS 2020 §3-4).
 *
 * Two requirements pull t in opposite directions:
 *
 * - Survival: a device's secrets are recoverable only if at least t of its k neighbours are
 *   still there at unmask time. With D of n devices dropped uniformly at random, the number of
 *   dropped neighbours of a node is hypergeometric, Hyp(n - 1, D or D - 1, k); a union bound
 *   over the n nodes bounds the probability that any node falls short.
 * - Collusion: an honest-but-curious server that colludes with a fraction γ of the cohort learns
 *   a device's input if t of its neighbours collude (they can rebuild both b_u and s_u^SK). The
 *   number of colluding neighbours is Hyp(n - 1, ⌈γn⌉, k); a union bound over nodes must stay
 *   below 2^-σ (statistical security, σ = 40 by default, as in Bell et al.).
 *
 * `chooseParameters` returns the smallest even k (then the smallest t meeting the collusion
 * bound) whose survival bound meets the target. The union bound grows linearly in n while the
 * tails fall exponentially in k, so k = O(log n).
 */

/** Natural logs of factorials 0..n, cached and extended on demand. */
const logFactorials: number[] = [0];

function logFactorial(n: number): number {
  for (let i = logFactorials.length; i <= n; i++)
    logFactorials.push((logFactorials[i - 1] as number) + Math.log(i));
  return logFactorials[n] as number;
}

function logChoose(n: number, r: number): number {
  if (r < 0 || r > n) return Number.NEGATIVE_INFINITY;
  return logFactorial(n) - logFactorial(r) - logFactorial(n - r);
}

/** P(X = j) for X ~ Hypergeometric(population N, K successes, m draws). */
export function hypergeometricPmf(N: number, K: number, m: number, j: number): number {
  return Math.exp(logChoose(K, j) + logChoose(N - K, m - j) - logChoose(N, m));
}

/** P(X ≥ j) for X ~ Hypergeometric(N, K, m). */
export function hypergeometricTail(N: number, K: number, m: number, j: number): number {
  let p = 0;
  for (let i = Math.max(0, j); i <= Math.min(K, m); i++) p += hypergeometricPmf(N, K, m, i);
  return Math.min(1, p);
}

/** Inputs of the survival bound. */
export interface SurvivalQuestion {
  /** Devices in the graph. */
  n: number;
  /** Neighbours per device (capped at n - 1: the complete graph). */
  k: number;
  /** Shares needed to reconstruct a device's secret. */
  t: number;
  /** Fraction of devices that drop, uniformly at random (exactly round(dropout · n) of them). */
  dropout: number;
  /**
   * Count a surviving node's own share towards t (Flower keeps one share per client,
   * "num_shares" includes itself). Off for this protocol: shares go to neighbours only.
   */
  countSelf?: boolean;
}

/**
 * Union bound on the probability that some node has fewer than t surviving share holders, i.e.
 * that the round fails its threshold check. Exact per node (hypergeometric), union over nodes.
 */
export function failureBound(q: SurvivalQuestion): number {
  const { n, t } = q;
  const k = Math.min(q.k, n - 1);
  const dropped = Math.round(q.dropout * n);
  const self = q.countSelf ? 1 : 0;
  // A surviving node fails if more than k - (t - self) of its neighbours dropped.
  const aliveNode = hypergeometricTail(n - 1, dropped, k, k - (t - self) + 1);
  // A dropped node (its own share is gone) fails if more than k - t neighbours dropped.
  const droppedNode = dropped > 0 ? hypergeometricTail(n - 1, dropped - 1, k, k - t + 1) : 0;
  return Math.min(1, (n - dropped) * aliveNode + dropped * droppedNode);
}

/**
 * Union bound on the probability that some node has t or more colluding neighbours when
 * ⌈colluding · n⌉ devices collude with the server.
 */
export function collusionBound(n: number, k: number, t: number, colluding: number): number {
  const corrupt = Math.ceil(colluding * n);
  return Math.min(1, n * hypergeometricTail(n - 1, corrupt, Math.min(k, n - 1), t));
}

/** Design targets for `chooseParameters`. */
export interface ParameterOptions {
  /** Cohort size n (devices in one shard). */
  n: number;
  /** Dropout the round must survive (default 0.3). */
  dropout?: number;
  /** Largest acceptable failure probability at that dropout (default 1e-3: ≥ 99.9% of rounds). */
  failure?: number;
  /** Fraction of devices assumed to collude with the server (default 0.05). */
  colluding?: number;
  /** Statistical security parameter σ: collusion succeeds with probability ≤ 2^-σ (default 40). */
  securityBits?: number;
  /**
   * The `maliciousServer` preset: t > k/2, an honest majority of every device's neighbours
   * (`@fedprofile/protocol/secagg` threat.ts). Costs a larger k for the same dropout target.
   */
  honestMajority?: boolean;
}

/** Chosen parameters and the bounds they achieve. */
export interface SecAggParameters {
  k: number;
  t: number;
  /** True when the cohort is small enough that the graph is complete (plain Bonawitz). */
  complete: boolean;
  /** Union bound on round failure at the design dropout. */
  failureBound: number;
  /** Union bound on any device being exposed by colluders. */
  collusionBound: number;
}

/**
 * The smallest even k, and for it the smallest t with collusion bound ≤ 2^-σ, whose failure
 * bound at the design dropout is within target. Throws `RangeError` when even the complete graph
 * cannot meet both (tiny cohorts with heavy dropout or collusion).
 */
export function chooseParameters(options: ParameterOptions): SecAggParameters {
  const { n } = options;
  const dropout = options.dropout ?? 0.3;
  const failure = options.failure ?? 1e-3;
  const colluding = options.colluding ?? 0.05;
  const security = 2 ** -(options.securityBits ?? 40);
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`n must be an integer ≥ 2, got ${n}`);
  for (let k = 2; ; k += 2) {
    const degree = Math.min(k, n - 1);
    let t = 1;
    while (t <= degree && collusionBound(n, degree, t, colluding) > security) t++;
    if (options.honestMajority) t = Math.max(t, Math.floor(degree / 2) + 1);
    if (t <= degree) {
      const f = failureBound({ n, k: degree, t, dropout });
      if (f <= failure) {
        return {
          k,
          t,
          complete: k >= n - 1,
          failureBound: f,
          collusionBound: collusionBound(n, degree, t, colluding),
        };
      }
    }
    if (k >= n - 1) {
      throw new RangeError(
        `no (k, t) for n=${n} survives ${dropout} dropout with failure ≤ ${failure} and collusion ≤ 2^-${options.securityBits ?? 40}`,
      );
    }
  }
}

/** A small, fast, seeded generator for simulations (xoshiro128**; never for protocol secrets). */
function simulationRandom(seed: number): () => number {
  // splitmix32 expands the seed into the four state words (Vigna's recommendation).
  let z = seed >>> 0;
  const next = (): number => {
    z = (z + 0x9e3779b9) >>> 0;
    let x = z;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    return (x ^ (x >>> 16)) >>> 0;
  };
  let a = next();
  let b = next();
  let c = next();
  let d = next();
  return () => {
    const x = Math.imul(b, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const shifted = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= shifted;
    d = (d << 11) | (d >>> 21);
    return result / 2 ** 32;
  };
}

/** Inputs of `simulateSurvival`. */
export interface SimulationOptions extends SurvivalQuestion {
  /** Rounds to simulate. */
  rounds: number;
  /** Seed of the simulation generator. */
  seed?: number;
}

/**
 * Monte Carlo check of `failureBound`: builds the actual ring-over-random-permutation graph,
 * drops exactly round(dropout · n) devices uniformly, and counts rounds in which every node keeps
 * at least t share holders. Returns the fraction of rounds that survive.
 */
export function simulateSurvival(options: SimulationOptions): number {
  const { n, t, rounds } = options;
  const k = Math.min(options.k, n - 1);
  const half = Math.floor(k / 2);
  const complete = k >= n - 1;
  const dropped = Math.round(options.dropout * n);
  const self = options.countSelf ? 1 : 0;
  const random = simulationRandom(options.seed ?? 1);
  const alive = new Uint8Array(n);
  const prefix = new Int32Array(2 * n + 1);
  let survived = 0;
  for (let r = 0; r < rounds; r++) {
    // The permutation is uniform, so dropping a uniform subset of ring positions is equivalent
    // to permuting and then dropping: shuffle the alive flags directly.
    alive.fill(1);
    for (let i = 0; i < dropped; i++) alive[i] = 0;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const tmp = alive[i] as number;
      alive[i] = alive[j] as number;
      alive[j] = tmp;
    }
    let ok = true;
    if (complete) {
      const totalAlive = n - dropped;
      // Every node sees all others: the worst node is an alive one (loses itself from the count).
      ok = (dropped === 0 || totalAlive >= t) && (totalAlive === 0 || totalAlive - 1 + self >= t);
    } else {
      for (let i = 0; i < 2 * n; i++) prefix[i + 1] = (prefix[i] as number) + (alive[i % n] as number);
      for (let p = 0; p < n && ok; p++) {
        // Ring positions p - half .. p + half, shifted by n to stay non-negative.
        const lo = p + n - half;
        const window = (prefix[lo + 2 * half + 1] as number) - (prefix[lo] as number) - (alive[p] as number);
        if (window + (alive[p] ? self : 0) < t) ok = false;
      }
    }
    if (ok) survived++;
  }
  return survived / rounds;
}
