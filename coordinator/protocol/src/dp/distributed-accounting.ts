/**
 * RDP accounting for the distributed discrete Gaussian (Kairouz, Liu & Steinke, ICML 2021,
 * arXiv:2102.06387) and the distributed Skellam mechanism (Agarwal, Kairouz & Liu, NeurIPS 2021,
 * arXiv:2110.04995), following google-research/federated `distributed_dp/accounting_utils.py`
 * (commit a5af8c4433c9) so that the known-answer vectors match.
 *
 * Both mechanisms run on integers: the client scales its clipped vector by `1/gamma`, rounds it
 * to the integer grid (which inflates the norm, Theorem 1 of KLS21), and adds integer noise.
 * Subsampling uses the general upper bound of Zhu & Wang (ICML 2019, Theorem 5) at integer
 * orders, which holds for any mechanism with the given RDP curve, taking the minimum with the
 * unamplified curve.
 */

import { assertInRange, assertInteger, logAbsBinomials, logSumExp } from "./numeric.ts";

/** Guard used by the reference implementation in place of division by zero. */
const DIV_EPSILON = 1e-22;

/**
 * The L2 norm bound of a vector of norm `l2NormBound` after (conditional) randomised rounding
 * to the integer grid in `dim` dimensions (KLS21 Theorem 1 / Proposition 22):
 * `min(c + sqrt(d), sqrt(c^2 + d/4 + sqrt(2 log(1/beta)) (c + sqrt(d)/2)))`; `beta = 0` means
 * unconditional rounding and gives the first bound only.
 */
export function roundedL2NormBound(l2NormBound: number, beta: number, dim: number): number {
  assertInRange("l2NormBound", l2NormBound, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  assertInRange("beta", beta, 0, 1, { hiOpen: true });
  assertInteger("dim", dim, 1);
  const bound1 = l2NormBound + Math.sqrt(dim);
  if (beta === 0) return bound1;
  const sq =
    l2NormBound * l2NormBound +
    0.25 * dim +
    Math.sqrt(2 * Math.log(1 / beta)) * (l2NormBound + 0.5 * Math.sqrt(dim));
  return Math.min(bound1, Math.sqrt(sq));
}

/** The L1 bound of an integer vector with L2 norm at most `l2`: `l2 * min(sqrt(d), l2)` (L1 <= L2^2 on integers). */
export function roundedL1NormBound(l2NormBound: number, dim: number): number {
  return l2NormBound * Math.min(Math.sqrt(dim), l2NormBound);
}

/**
 * Zhu & Wang (2019) Theorem 5: RDP at integer order `alpha` of the Poisson-subsampled version of
 * a mechanism whose RDP curve is `eps(l)` for integer `l >= 2`:
 * `(alpha-1) eps'(alpha) <= log( (1-g)^(alpha-1) (alpha g - g + 1) + C(alpha,2) g^2 (1-g)^(alpha-2) e^{eps(2)}
 *                                + 3 sum_{l=3}^{alpha} C(alpha,l) (1-g)^(alpha-l) g^l e^{(l-1) eps(l)} )`.
 */
export function subsampledRdpUpperBound(
  alpha: number,
  gamma: number,
  eps: (order: number) => number,
): number {
  assertInteger("alpha", alpha, 2);
  assertInRange("gamma", gamma, 0, 1, { loOpen: true });
  if (gamma === 1) return eps(alpha);
  const { logAbs } = logAbsBinomials(alpha, alpha);
  const logG = Math.log(gamma);
  const log1mG = Math.log1p(-gamma);
  const terms = new Float64Array(alpha);
  terms[0] = (alpha - 1) * log1mG + Math.log(alpha * gamma - gamma + 1);
  terms[1] = eps(2) + logAbs[2]! + 2 * logG + (alpha - 2) * log1mG;
  for (let l = 3; l <= alpha; l++) {
    terms[l - 1] = Math.log(3) + (l - 1) * eps(l) + logAbs[l]! + (alpha - l) * log1mG + l * logG;
  }
  return logSumExp(terms) / (alpha - 1);
}

/** Parameters of the (distributed) discrete Gaussian RDP bound, KLS21 Proposition 14 / Eq. 17. */
export interface DiscreteGaussianRdpParams {
  /** Sampling rate (1 = no amplification). */
  readonly samplingRate: number;
  /** L1 sensitivity / total noise stddev. */
  readonly l1Scale: number;
  /** L2 sensitivity / total noise stddev. */
  readonly l2Scale: number;
  /** Inflation from summing discrete Gaussians (KLS21 Theorem 1); 0 for a single discrete Gaussian. */
  readonly tau: number;
  /** Dimension of the released vector. */
  readonly dim: number;
}

/**
 * Per-step RDP of the (sampled, distributed) discrete Gaussian at one order (KLS21 Prop. 14):
 * `min(a/2 l2^2 + tau d,  a/2 (l2^2 + 2 l1 tau + tau^2 d),  a/2 (l2 + sqrt(d) tau)^2)`.
 * With sampling, the Zhu-Wang bound needs integer orders; a fractional order is evaluated at its
 * ceiling, which is an upper bound because Rényi divergence is non-decreasing in the order.
 */
export function discreteGaussianRdp(p: DiscreteGaussianRdpParams, order: number): number {
  assertInRange("samplingRate", p.samplingRate, 0, 1);
  if (!(order > 1)) throw new RangeError(`order must be > 1, got ${order}`);
  if (p.samplingRate === 0) return 0;
  const base = (a: number): number => {
    const t1 = (a / 2) * p.l2Scale ** 2 + p.tau * p.dim;
    const t2 = (a / 2) * (p.l2Scale ** 2 + 2 * p.l1Scale * p.tau + p.tau ** 2 * p.dim);
    const t3 = (a / 2) * (p.l2Scale + Math.sqrt(p.dim) * p.tau) ** 2;
    return Math.min(t1, t2, t3);
  };
  // A single discrete Gaussian (tau = 0) is rho-zCDP, so its curve holds at every real order
  // (CKS20 Theorem 4); otherwise Prop. 14 is applied at integer orders only.
  if (p.samplingRate === 1) return base(p.tau === 0 ? order : Math.ceil(order));
  const a = Math.ceil(order);
  return Math.min(subsampledRdpUpperBound(a, p.samplingRate, base), base(a));
}

/** Parameters of one round of the distributed discrete Gaussian, in the client's units. */
export interface DistributedDiscreteGaussianParams {
  /** Granularity gamma: the client scales by `1/gamma` before rounding. */
  readonly gamma: number;
  /** Per-client noise stddev (in the unscaled domain), `sigma_local`. */
  readonly localStddev: number;
  /** Number of clients whose noise shares are in the sum (honest survivors). */
  readonly noiseShares: number;
  /** L2 clip norm of each client's vector (unscaled). */
  readonly l2Sensitivity: number;
  /** Conditional-rounding parameter beta in [0, 1); 0 = unconditional rounding. */
  readonly beta: number;
  /** Dimension after padding. */
  readonly dim: number;
  /** Sampling rate (1 = no amplification). */
  readonly samplingRate: number;
  /** L1 sensitivity (unscaled); defaults to `l2 * sqrt(dim)`. */
  readonly l1Sensitivity?: number;
  /** Account for the rounding inflation (default true). */
  readonly rounding?: boolean;
}

/**
 * Maps a distributed-discrete-Gaussian round to the parameters of the RDP bound
 * (`ddgauss_epsilon` in the reference): the rounding-inflated sensitivities, the
 * `tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma_s^2 k/(k+1))` of KLS21 Theorem 1 (sigma_s the
 * scaled local stddev), and the scales relative to the summed stddev `sqrt(n) sigma_local`.
 */
export function distributedDiscreteGaussianRdpParams(
  p: DistributedDiscreteGaussianParams,
): DiscreteGaussianRdpParams {
  assertInRange("gamma", p.gamma, 0, Number.POSITIVE_INFINITY);
  assertInRange("localStddev", p.localStddev, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  assertInteger("noiseShares", p.noiseShares, 1);
  assertInteger("dim", p.dim, 1);
  const scale = 1 / (p.gamma + DIV_EPSILON);
  let l2 = p.l2Sensitivity;
  let l1 = p.l1Sensitivity ?? p.l2Sensitivity * Math.sqrt(p.dim);
  if (p.rounding ?? true) {
    l2 = roundedL2NormBound(l2 * scale, p.beta, p.dim) / scale;
    l1 = roundedL1NormBound(l2 * scale, p.dim) / scale;
  }
  let tau = 0;
  const s = Math.PI * p.localStddev * scale;
  for (let k = 1; k < p.noiseShares; k++) {
    const term = Math.exp(-2 * s * s * (k / (k + 1)));
    tau += term;
    if (term === 0) break;
  }
  tau *= 10;
  const total = Math.sqrt(p.noiseShares) * p.localStddev;
  return { samplingRate: p.samplingRate, l1Scale: l1 / total, l2Scale: l2 / total, tau, dim: p.dim };
}

/** Parameters of one round of the distributed Skellam mechanism (AKL21). */
export interface SkellamParams {
  /** Scale factor applied before rounding (`1/gamma`). */
  readonly scale: number;
  /** Stddev of the summed Skellam noise in the unscaled domain. */
  readonly centralStddev: number;
  /** L2 clip norm (unscaled). */
  readonly l2Sensitivity: number;
  /** Conditional-rounding beta. */
  readonly beta: number;
  /** Dimension after padding. */
  readonly dim: number;
  /** Sampling rate. */
  readonly samplingRate: number;
  /** L1 sensitivity (unscaled); defaults to `l2 * sqrt(dim)`. */
  readonly l1Sensitivity?: number;
  /** Account for the rounding inflation (default true). */
  readonly rounding?: boolean;
}

/**
 * RDP of the Skellam mechanism at order `a` (AKL21 Theorem 3.5, in unscaled units with scale `s`
 * and central variance `mu`): `a l2^2/(2 mu) + min(((2a-1) s l2^2 + 6 l1)/(4 s^3 mu^2), 3 l1/(2 s mu))`.
 */
export function skellamRdpSingle(
  l1: number,
  l2: number,
  centralVar: number,
  scale: number,
  order: number,
): number {
  if (!(order > 1)) throw new RangeError(`order must be > 1, got ${order}`);
  const a = order;
  const s = scale;
  const mu = centralVar;
  return (
    (a / (2 * mu)) * l2 * l2 +
    Math.min(((2 * a - 1) * s * l2 * l2 + 6 * l1) / (4 * s ** 3 * mu * mu), (3 * l1) / (2 * s * mu))
  );
}

/** Per-step RDP of a (sampled) Skellam round at one order; fractional orders use the ceiling. */
export function skellamRdp(p: SkellamParams, order: number): number {
  assertInRange("samplingRate", p.samplingRate, 0, 1);
  assertInRange("scale", p.scale, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  assertInRange("centralStddev", p.centralStddev, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  if (p.samplingRate === 0) return 0;
  let l2 = p.l2Sensitivity;
  let l1 = p.l1Sensitivity ?? p.l2Sensitivity * Math.sqrt(p.dim);
  if (p.rounding ?? true) {
    l2 = roundedL2NormBound(l2 * p.scale, p.beta, p.dim) / p.scale;
    l1 = roundedL1NormBound(l2 * p.scale, p.dim) / p.scale;
  }
  const mu = p.centralStddev ** 2;
  const base = (a: number): number => skellamRdpSingle(l1, l2, mu, p.scale, a);
  // AKL21 Theorem 3.5 is stated for integer orders: evaluate fractional ones at the ceiling.
  const a = Math.ceil(order);
  if (p.samplingRate === 1) return base(a);
  return Math.min(subsampledRdpUpperBound(a, p.samplingRate, base), base(a));
}
