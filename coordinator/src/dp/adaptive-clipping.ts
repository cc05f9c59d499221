/**
 * Adaptive clipping (Andrew, Thakkar, McMahan & Ramaswamy, "Differentially Private Learning
 * with Adaptive Clipping", NeurIPS 2021).
 *
 * The clip norm tracks a target quantile `g` of the update norms by the geometric rule
 * `C <- C * exp(-eta (b - g))` (their Eq. 3), where `b` is the noisy fraction of clients whose
 * update norm was within `C`. The count is released in the *same* noised vector as the update,
 * as one extra coordinate `w (b_i - 1/2)` (see {@link ClipIndicator}), so its noise is part of the
 * round's single Gaussian release and of its accounting: the joint clip `sqrt(C^2 + w^2/4)` is the
 * round's sensitivity, which is exactly their effective noise multiplier
 * `z = (z_delta^-2 + (2 sigma_b)^-2)^(-1/2)` (Section 3.1).
 */

import { assertInRange } from "@fedprofile/protocol/dp";
import * as z from "zod";

/** Parameters of the adaptive clipping rule. */
export const AdaptiveClippingOptions = z
  .object({
    /** The starting clip norm C_0. */
    initialClip: z.number().positive().finite(),
    /** The target quantile g of update norms (Andrew et al. recommend 0.5). */
    targetQuantile: z.number().gt(0).lt(1),
    /** The learning rate eta of the geometric update (they use 0.2). */
    learningRate: z.number().positive().finite(),
    /** Stddev sigma_b of the noise on the clipped count (they use about cohort/20). */
    countStddev: z.number().positive().finite(),
    /** Lower and upper limits on the clip norm, to keep a noisy run from collapsing. */
    minClip: z.number().positive().finite().optional(),
    maxClip: z.number().positive().finite().optional(),
  })
  .strict();
export type AdaptiveClippingOptions = z.infer<typeof AdaptiveClippingOptions>;

/** The clip state carried between rounds. */
export interface ClipState {
  /** The clip norm for the next round. */
  readonly clipNorm: number;
  /** Quantile releases so far. */
  readonly releases: number;
}

/** One quantile release, as the ledger records it. */
export interface ClipRelease {
  /** Clip norm used in the round. */
  readonly previousClip: number;
  /** Clip norm for the next round. */
  readonly nextClip: number;
  /** The noisy count of clients within the clip. */
  readonly noisyCount: number;
  /** Number of contributing clients the fraction is taken over. */
  readonly clients: number;
  /** The noisy fraction, clamped to [0, 1]. */
  readonly noisyFraction: number;
}

/** The initial clip state. */
export function initClipState(opts: AdaptiveClippingOptions): ClipState {
  return { clipNorm: AdaptiveClippingOptions.parse(opts).initialClip, releases: 0 };
}

/**
 * Applies the geometric update of Andrew et al. (Eq. 3) given the noisy count released with the
 * round. The fraction is clamped to [0, 1] (noise can push it outside), which is post-processing.
 */
export function updateClip(
  opts: AdaptiveClippingOptions,
  state: ClipState,
  noisyCount: number,
  clients: number,
): { state: ClipState; release: ClipRelease } {
  assertInRange("clients", clients, 1, Number.POSITIVE_INFINITY);
  if (!Number.isFinite(noisyCount)) throw new TypeError("noisyCount must be finite");
  const frac = Math.min(1, Math.max(0, noisyCount / clients));
  let next = state.clipNorm * Math.exp(-opts.learningRate * (frac - opts.targetQuantile));
  if (opts.minClip !== undefined) next = Math.max(opts.minClip, next);
  if (opts.maxClip !== undefined) next = Math.min(opts.maxClip, next);
  return {
    state: { clipNorm: next, releases: state.releases + 1 },
    release: { previousClip: state.clipNorm, nextClip: next, noisyCount, clients, noisyFraction: frac },
  };
}
