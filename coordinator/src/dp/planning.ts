/**
 * Round planning: from the operator's privacy target to the public {@link DpRoundConfig}.
 *
 * For the distributed discrete Gaussian the noise is calibrated for the *threshold* `t` of the
 * SecAgg cohort (minus assumed colluders), the fewest noise shares a completed round can carry,
 * so the stated guarantee holds under any admissible dropout (KLS21 Section 5). The granularity
 * gamma is then chosen, as in KLS21 Section 4.4 / `heuristic_scale_factor`, so that `k`
 * standard deviations of the expected aggregate fit in `m` bits; gamma and sigma depend on each
 * other (rounding inflation), so the two are iterated to a fixed point.
 */

import type {
  CentralGaussianConfig,
  ClipIndicator,
  DistributedDiscreteGaussianConfig,
} from "@fedprofile/protocol/dp";
import { assertInRange, assertInteger, dyadicSigmaAtLeast, nextPowerOfTwo } from "@fedprofile/protocol/dp";
import {
  calibrateDistributedDiscreteGaussian,
  calibrateNoiseMultiplier,
  type PriorRdp,
} from "./calibration.ts";

/**
 * KLS21 Section 4.4: the scale `1/gamma` such that `2^b = 2k sqrt(rho/d (c n)^2 + (gamma^2/4 +
 * sigma^2) n) / gamma`, i.e. `k` stddevs of the rounded, noised sum of `n` clients fit in `b` bits.
 */
export function heuristicScaleFactor(
  localStddev: number,
  clipNorm: number,
  bits: number,
  clients: number,
  dim: number,
  kStddevs: number,
  rho = 1,
): number {
  const top = 2 ** (2 * bits) - clients * kStddevs ** 2;
  if (top <= 0) {
    throw new RangeError(
      `${bits} bits cannot hold ${clients} clients at ${kStddevs} stddevs; raise modulusBits`,
    );
  }
  const denom =
    2 * kStddevs * Math.sqrt((rho / dim) * clipNorm ** 2 * clients ** 2 + clients * localStddev ** 2);
  return Math.sqrt(top) / denom;
}

/** Common planning inputs. */
export interface PlanBase {
  /** Update dimension. */
  readonly dim: number;
  /** L2 clip of the update (before any adaptive-clip indicator). */
  readonly clipNorm: number;
  /** Expected number of contributing clients (sizes the modulus). */
  readonly expectedClients: number;
  /** Modulus bits m (<= 32, SecAgg's word). Default 32. */
  readonly modulusBits?: number;
  /** Standard deviations of the aggregate that must fit in m bits (default 4). */
  readonly kStddevs?: number;
  /** Conditional rounding beta (default exp(-0.5), as in KLS21's experiments). */
  readonly beta?: number;
  /** Public hex seed for the rotation. */
  readonly rotationSeed: string;
  /** Adaptive clipping: desired stddev of the clip-count noise (Andrew et al. 2021). */
  readonly clipCountStddev?: number;
}

/** Inputs for {@link planDistributedRound}. */
export interface DistributedPlan extends PlanBase {
  /** Target epsilon over `rounds` rounds at `delta`. */
  readonly targetEpsilon: number;
  /** Target delta. */
  readonly delta: number;
  /** Rounds the budget must cover. */
  readonly rounds: number;
  /** Accounted sampling rate (1 unless the cohort is a uniform sample). */
  readonly samplingRate: number;
  /** SecAgg threshold t: the fewest survivors a round completes with. */
  readonly threshold: number;
  /** Clients assumed to collude with the coordinator (their noise does not count). */
  readonly colluders?: number;
  /** RDP the run has already spent: the noise is calibrated for `prior` plus `rounds` such rounds. */
  readonly prior?: PriorRdp;
}

function indicatorFor(
  clip: number,
  totalStddev: number,
  countStddev: number | undefined,
): ClipIndicator | undefined {
  if (countStddev === undefined) return undefined;
  assertInRange("clipCountStddev", countStddev, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  return { updateClip: clip, weight: totalStddev / countStddev };
}

/**
 * Plans a distributed-discrete-Gaussian round: calibrates the per-client noise for `threshold -
 * colluders` noise shares and picks gamma for the modulus. With adaptive clipping the indicator
 * coordinate is sized from the same noise, and the whole vector's clip is the joint norm.
 */
export function planDistributedRound(p: DistributedPlan): DistributedDiscreteGaussianConfig {
  assertInteger("dim", p.dim, 1);
  assertInteger("threshold", p.threshold, 1);
  const shares = p.threshold - (p.colluders ?? 0);
  assertInteger("threshold - colluders", shares, 1);
  const bits = p.modulusBits ?? 32;
  const k = p.kStddevs ?? 4;
  const beta = p.beta ?? Math.exp(-0.5);
  const hasIndicator = p.clipCountStddev !== undefined;
  const padded = nextPowerOfTwo(p.dim + (hasIndicator ? 1 : 0));
  let clip = p.clipNorm;
  let gamma = 1 / heuristicScaleFactor(0, clip, bits, p.expectedClients, padded, k);
  let sigma = 0;
  let indicator: ClipIndicator | undefined;
  for (let iter = 0; iter < 8; iter++) {
    const cal = calibrateDistributedDiscreteGaussian({
      targetEpsilon: p.targetEpsilon,
      delta: p.delta,
      steps: p.rounds,
      samplingRate: p.samplingRate,
      gamma,
      noiseShares: shares,
      l2Sensitivity: clip,
      beta,
      dim: padded,
      tolerance: 1e-7 * clip,
      ...(p.prior ? { prior: p.prior } : {}),
    });
    sigma = cal.noise;
    // The indicator's weight is the ratio of the total noise to the desired count noise, and it
    // enlarges the joint clip, which feeds back into sigma (Andrew et al. 2021, Sec. 3.1).
    indicator = indicatorFor(p.clipNorm, Math.sqrt(shares) * sigma, p.clipCountStddev);
    clip = indicator ? Math.sqrt(p.clipNorm ** 2 + indicator.weight ** 2 / 4) : p.clipNorm;
    // A grid finer than sigma / 2^14 buys nothing (the rounding error is then 2^-14 of one
    // client's noise) and keeps the exact sampler on single-word draws, so the scale stops there.
    const next = Math.max(
      1 / heuristicScaleFactor(sigma, clip, bits, p.expectedClients, padded, k),
      sigma / 2 ** 14,
    );
    if (Math.abs(next - gamma) <= 1e-6 * gamma) {
      gamma = next;
      break;
    }
    gamma = next;
  }
  // Round the scaled noise *up* to an exact dyadic: the clients add at least the calibrated noise.
  const localSigma = dyadicSigmaAtLeast(sigma / gamma);
  const base = {
    v: 1 as const,
    mechanism: "distributed_discrete_gaussian" as const,
    dim: p.dim,
    gamma,
    beta,
    modulusBits: bits,
    rotationSeed: p.rotationSeed,
    clipNorm: clip,
    localSigma,
  };
  return indicator ? { ...base, clipIndicator: indicator } : base;
}

/** Inputs for {@link planCentralRound}. */
export interface CentralPlan extends PlanBase {
  /** Either a noise multiplier, or a target epsilon with delta, rounds and sampling rate. */
  readonly noiseMultiplier?: number;
  readonly targetEpsilon?: number;
  readonly delta?: number;
  readonly rounds?: number;
  readonly samplingRate?: number;
}

/**
 * Plans a central-Gaussian round: the noise multiplier (given, or calibrated by bisection with
 * the MTZ19 accountant) and a fine granularity for the fixed-point encoding.
 */
export function planCentralRound(p: CentralPlan): CentralGaussianConfig {
  assertInteger("dim", p.dim, 1);
  let z = p.noiseMultiplier;
  if (z === undefined) {
    if (p.targetEpsilon === undefined || p.delta === undefined || p.rounds === undefined) {
      throw new TypeError("planCentralRound needs noiseMultiplier, or targetEpsilon with delta and rounds");
    }
    z = calibrateNoiseMultiplier({
      targetEpsilon: p.targetEpsilon,
      delta: p.delta,
      steps: p.rounds,
      samplingRate: p.samplingRate ?? 1,
    }).noise;
  }
  const bits = p.modulusBits ?? 32;
  const hasIndicator = p.clipCountStddev !== undefined;
  const padded = nextPowerOfTwo(p.dim + (hasIndicator ? 1 : 0));
  // Andrew et al. 2021: noise z * C_joint on the joint vector, C_joint = sqrt(C^2 + w^2/4),
  // w = sigma / sigma_b, which solves to sigma = C (z^-2 - (2 sigma_b)^-2)^(-1/2).
  let clip = p.clipNorm;
  let indicator: ClipIndicator | undefined;
  if (hasIndicator) {
    const sb = p.clipCountStddev!;
    const inv = z ** -2 - (2 * sb) ** -2;
    if (!(inv > 0))
      throw new RangeError("clipCountStddev too small for this noise multiplier (Andrew et al. 2021 Eq. 4)");
    const sigma = p.clipNorm / Math.sqrt(inv);
    indicator = indicatorFor(p.clipNorm, sigma, sb);
    clip = Math.sqrt(p.clipNorm ** 2 + (indicator?.weight ?? 0) ** 2 / 4);
  }
  // As for the distributed plan, a grid finer than sigma / 2^14 buys nothing, and it keeps the
  // server's exact discrete Gaussian (sigma / gamma, sigma >= z C) within its sampler's range.
  const gamma = Math.max(
    1 / heuristicScaleFactor(0, clip, bits, p.expectedClients, padded, p.kStddevs ?? 4),
    (z * clip) / 2 ** 14,
  );
  const base = {
    v: 1 as const,
    mechanism: "central_gaussian" as const,
    dim: p.dim,
    gamma,
    beta: p.beta ?? 0,
    modulusBits: bits,
    rotationSeed: p.rotationSeed,
    clipNorm: clip,
    noiseMultiplier: z,
  };
  return indicator ? { ...base, clipIndicator: indicator } : base;
}
