/**
 * Calibration: the least noise that meets a target epsilon.
 *
 * Epsilon is non-increasing in the noise (more noise never costs privacy), so a bracketing
 * bisection converges to the smallest noise within tolerance. The value returned is always the
 * upper end of the bracket, whose epsilon is guaranteed to be at most the target, as
 * dp_accounting's `calibrate_dp_mechanism` guarantees.
 */

import {
  assertInRange,
  assertInteger,
  assertOrders,
  DEFAULT_RDP_ORDERS,
  type DistributedDiscreteGaussianParams,
  discreteGaussianRdp,
  distributedDiscreteGaussianRdpParams,
  FEDERATED_RDP_ORDERS,
  poissonSubsampledGaussianRdp,
} from "@fedprofile/protocol/dp";
import { rdpToEpsilon } from "./conversion.ts";

/** Options shared by the calibrators. */
export interface CalibrationOptions {
  /** Absolute tolerance on the returned noise parameter (default 1e-9). */
  readonly tolerance?: number;
  /** Upper search limit; exceeding it throws a RangeError (default 1e6). */
  readonly maxNoise?: number;
}

/** A calibrated noise parameter and the epsilon it achieves. */
export interface CalibrationResult {
  /** The calibrated noise (noise multiplier or stddev, per calibrator). */
  readonly noise: number;
  /** The epsilon at that noise, `<= targetEpsilon`. */
  readonly epsilon: number;
  /** The RDP order attaining it. */
  readonly optimalOrder: number;
}

/**
 * Smallest noise `x` in `(0, maxNoise]` with `epsilonAt(x).epsilon <= target`, by doubling then
 * bisection.
 */
export function bisectNoise(
  targetEpsilon: number,
  epsilonAt: (noise: number) => { epsilon: number; optimalOrder: number },
  opts: CalibrationOptions = {},
): CalibrationResult {
  assertInRange("targetEpsilon", targetEpsilon, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  const tol = opts.tolerance ?? 1e-9;
  const maxNoise = opts.maxNoise ?? 1e6;
  assertInRange("tolerance", tol, 0, Number.POSITIVE_INFINITY, { loOpen: true });
  let lo = 0;
  let hi = 1;
  let atHi = epsilonAt(hi);
  while (atHi.epsilon > targetEpsilon) {
    lo = hi;
    hi *= 2;
    if (hi > maxNoise) {
      throw new RangeError(
        `no noise up to ${maxNoise} reaches epsilon ${targetEpsilon}; raise the target or delta`,
      );
    }
    atHi = epsilonAt(hi);
  }
  while (hi - lo > tol) {
    const mid = lo + (hi - lo) / 2;
    if (mid === lo || mid === hi) break;
    const atMid = epsilonAt(mid);
    if (atMid.epsilon <= targetEpsilon) {
      hi = mid;
      atHi = atMid;
    } else {
      lo = mid;
    }
  }
  return { noise: hi, epsilon: atHi.epsilon, optimalOrder: atHi.optimalOrder };
}

/** Inputs of {@link calibrateNoiseMultiplier}. */
export interface NoiseMultiplierTarget extends CalibrationOptions {
  /** Target epsilon. */
  readonly targetEpsilon: number;
  /** Target delta. */
  readonly delta: number;
  /** Poisson sampling rate (1 when sampling was not uniform). */
  readonly samplingRate: number;
  /** Number of rounds. */
  readonly steps: number;
  /** RDP orders (default {@link DEFAULT_RDP_ORDERS}). */
  readonly orders?: readonly number[];
}

/**
 * The smallest noise multiplier for which `steps` rounds of the Poisson-subsampled Gaussian stay
 * within `targetEpsilon` at `delta` (dp_accounting `calibrate_dp_mechanism` with an
 * `RdpAccountant`; tolerance 1e-9 by default).
 */
export function calibrateNoiseMultiplier(t: NoiseMultiplierTarget): CalibrationResult {
  assertInRange("delta", t.delta, 0, 1, { loOpen: true, hiOpen: true });
  assertInRange("samplingRate", t.samplingRate, 0, 1, { loOpen: true });
  assertInteger("steps", t.steps, 1);
  const orders = t.orders ?? DEFAULT_RDP_ORDERS;
  assertOrders(orders);
  const rdp = new Float64Array(orders.length);
  return bisectNoise(
    t.targetEpsilon,
    (z) => {
      for (let k = 0; k < orders.length; k++) {
        rdp[k] = t.steps * poissonSubsampledGaussianRdp(t.samplingRate, z, orders[k]!);
      }
      return rdpToEpsilon(orders, rdp, t.delta);
    },
    t,
  );
}

/** RDP already spent, at `orders` (an accountant's curve), that a calibration composes with. */
export interface PriorRdp {
  readonly orders: readonly number[];
  readonly rdp: ArrayLike<number>;
}

/**
 * Epsilon of `steps` rounds of the distributed discrete Gaussian (`ddgauss_epsilon`), after
 * `prior` if given (RDP composes additively per order, Mironov 2017 Prop. 1).
 */
export function distributedDiscreteGaussianEpsilon(
  p: DistributedDiscreteGaussianParams & {
    readonly steps: number;
    readonly delta: number;
    readonly orders?: readonly number[];
    readonly prior?: PriorRdp;
  },
): { epsilon: number; optimalOrder: number } {
  assertInteger("steps", p.steps, 1);
  const orders = p.prior?.orders ?? p.orders ?? FEDERATED_RDP_ORDERS;
  assertOrders(orders);
  if (p.prior && p.prior.rdp.length !== orders.length) throw new RangeError("prior: one RDP value per order");
  const params = distributedDiscreteGaussianRdpParams(p);
  const rdp = orders.map((a, i) => (p.prior?.rdp[i] ?? 0) + p.steps * discreteGaussianRdp(params, a));
  return rdpToEpsilon(orders, rdp, p.delta);
}

/** Inputs of {@link calibrateDistributedDiscreteGaussian}: every round parameter except the noise. */
export interface DistributedTarget
  extends CalibrationOptions,
    Omit<DistributedDiscreteGaussianParams, "localStddev"> {
  /** Target epsilon over all `steps` rounds. */
  readonly targetEpsilon: number;
  /** Target delta. */
  readonly delta: number;
  /** Number of rounds. */
  readonly steps: number;
  /** RDP orders (default {@link FEDERATED_RDP_ORDERS}). */
  readonly orders?: readonly number[];
  /** RDP already spent: `prior` plus the `steps` rounds reach `targetEpsilon` (its orders win). */
  readonly prior?: PriorRdp;
}

/**
 * The smallest per-client noise stddev for the distributed discrete Gaussian. Pass the SecAgg
 * threshold `t` (minus any assumed colluders) as `noiseShares`: the guarantee then holds however
 * many clients beyond the threshold drop out (KLS21 Section 5: noise from dropped clients is
 * lost, so calibrate for the fewest survivors the protocol accepts).
 */
export function calibrateDistributedDiscreteGaussian(t: DistributedTarget): CalibrationResult {
  return bisectNoise(
    t.targetEpsilon,
    (localStddev) => distributedDiscreteGaussianEpsilon({ ...t, localStddev }),
    { tolerance: t.tolerance ?? 1e-9 * Math.max(1, t.l2Sensitivity), maxNoise: t.maxNoise ?? 1e6 },
  );
}
