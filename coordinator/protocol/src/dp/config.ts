/**
 * The per-round DP configuration the coordinator publishes to the cohort, as a versioned zod
 * schema (the single source of truth for the wire and for the ledger). Everything in it is
 * public: the rotation seed, the granularity, the noise scale.
 */

import * as z from "zod/mini";
import { dyadicValue } from "./discrete-gaussian.ts";
import { nextPowerOfTwo } from "./hadamard.ts";

/** A dyadic rational `num / 2^exp2`: the exact per-client noise scale of the discrete Gaussian. */
export const DyadicSigmaSchema = z.strictObject({
  num: z.int().check(z.positive(), z.lt(2 ** 26)),
  exp2: z.int().check(z.minimum(0), z.maximum(60)),
});

/**
 * Adaptive clipping (Andrew et al., NeurIPS 2021): each client also releases whether its update
 * norm was within `updateClip`, as one extra coordinate `weight * (b - 1/2)` in the same noised
 * vector, so the count's noise is part of the same Gaussian release and of the same accounting.
 */
export const ClipIndicator = z.strictObject({
  /** Clip applied to the update itself. */
  updateClip: z.number().check(z.positive()),
  /** Weight of the indicator coordinate: total noise stddev / desired count-noise stddev. */
  weight: z.number().check(z.positive()),
});
export type ClipIndicator = z.infer<typeof ClipIndicator>;

const common = {
  v: z.literal(1),
  /** Dimension of the model update (before padding). */
  dim: z.int().check(z.positive()),
  /** Granularity gamma: values are scaled by 1/gamma and rounded to integers. */
  gamma: z.number().check(z.positive()),
  /** Conditional rounding parameter beta in [0, 1) (KLS21 Prop. 22); 0 = plain rounding. */
  beta: z.number().check(z.minimum(0), z.lt(1)),
  /** Bits m of the modular arithmetic; client values live in [0, 2^m). At most SecAgg's 32. */
  modulusBits: z.int().check(z.minimum(2), z.maximum(32)),
  /** Public hex seed of the randomised Hadamard rotation. */
  rotationSeed: z.string().check(z.regex(/^[0-9a-f]{16,128}$/)),
  /** Optional adaptive-clipping indicator. */
  clipIndicator: z.optional(ClipIndicator),
};

/** Distributed discrete Gaussian (KLS21): every client adds `N_Z(0, localSigma^2)` in the scaled domain. */
export const DistributedDiscreteGaussianConfig = z.strictObject({
  ...common,
  mechanism: z.literal("distributed_discrete_gaussian"),
  /** L2 clip of the whole client vector (update plus indicator, if any), unscaled. */
  clipNorm: z.number().check(z.positive()),
  /** Per-client noise stddev in the scaled (integer) domain. */
  localSigma: DyadicSigmaSchema,
});
export type DistributedDiscreteGaussianConfig = z.infer<typeof DistributedDiscreteGaussianConfig>;

/** Central Gaussian fallback: clients only clip and quantise; the coordinator adds `N(0, sigma^2)`. */
export const CentralGaussianConfig = z.strictObject({
  ...common,
  mechanism: z.literal("central_gaussian"),
  clipNorm: z.number().check(z.positive()),
  /** Noise multiplier: the server's stddev over the rounding-inflated L2 sensitivity. */
  noiseMultiplier: z.number().check(z.positive()),
});
export type CentralGaussianConfig = z.infer<typeof CentralGaussianConfig>;

/** Any round configuration. */
export const DpRoundConfig = z.discriminatedUnion("mechanism", [
  DistributedDiscreteGaussianConfig,
  CentralGaussianConfig,
]);
export type DpRoundConfig = z.infer<typeof DpRoundConfig>;

/** Length of the vector after the indicator coordinate and padding to a power of two. */
export function paddedDim(cfg: DpRoundConfig): number {
  return nextPowerOfTwo(cfg.dim + (cfg.clipIndicator ? 1 : 0));
}

/** The per-client noise stddev in the unscaled domain (distributed mechanism). */
export function localStddev(cfg: DistributedDiscreteGaussianConfig): number {
  return dyadicValue(cfg.localSigma) * cfg.gamma;
}

/** `sqrt(updateClip^2 + weight^2 / 4)`: the norm bound of update plus indicator coordinate. */
export function jointClipNorm(indicator: ClipIndicator): number {
  return Math.sqrt(indicator.updateClip ** 2 + indicator.weight ** 2 / 4);
}
