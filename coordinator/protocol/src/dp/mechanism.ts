/**
 * The two halves of fedprofile's DP mechanisms around secure aggregation.
 *
 * Client (`encodeClientUpdate`, KLS21 Algorithm 1): clip the L2 norm, append the adaptive-clip
 * indicator if configured, pad and rotate with the public Hadamard seed, scale by `1/gamma`,
 * round conditionally to integers, add the client's discrete Gaussian noise share (distributed
 * mode only), and wrap modulo `2^m`. The output is what SecAgg masks.
 *
 * Server (`decodeAggregate`, KLS21 Algorithm 2): take the unmasked modular sum, map it to
 * signed integers, in central mode add exact discrete Gaussian noise to them, undo the scaling
 * and the rotation, and drop the padding. A sum whose true value escaped `[-2^(m-1), 2^(m-1))` wraps; the
 * rotation makes that improbable (KLS21 Lemma 29) and `planDistributedRound` sizes gamma for it.
 */

import {
  type CentralGaussianConfig,
  type DistributedDiscreteGaussianConfig,
  type DpRoundConfig,
  jointClipNorm,
  localStddev,
  paddedDim,
} from "./config.ts";
import {
  type DyadicSigma,
  discreteGaussianSampler,
  dyadicSigmaAtLeast,
  dyadicValue,
} from "./discrete-gaussian.ts";
import { roundedL2NormBound } from "./distributed-accounting.ts";
import type { DistributedDiscreteGaussianEvent, PoissonGaussianEvent } from "./events.ts";
import { rademacherSigns, rotateForward, rotateInverse } from "./hadamard.ts";
import { type RandomSource, uniform01 } from "./random.ts";
import { clipL2InPlace, conditionalRandomizedRound } from "./rounding.ts";

/** What the client half produces. */
export interface EncodedUpdate {
  /** Integers in `[0, 2^m)`, length `paddedDim(cfg)`: SecAgg's input. */
  readonly values: Uint32Array;
  /** The update's L2 norm before clipping (stays on the device; for local diagnostics). */
  readonly preClipNorm: number;
  /** Conditional-rounding draws used. */
  readonly roundingAttempts: number;
}

const signCache = new Map<string, Int8Array>();

/** The rotation signs of a round, memoised per (seed, size). */
export function roundSigns(seed: string, n: number): Int8Array {
  const key = `${seed}:${n}`;
  let s = signCache.get(key);
  if (!s) {
    if (signCache.size > 16) signCache.clear();
    s = rademacherSigns(seed, n);
    signCache.set(key, s);
  }
  return s;
}

function mod(x: number, m: number): number {
  const r = x % m;
  return r < 0 ? r + m : r;
}

/**
 * The client half: turns a model update into its SecAgg input under `cfg`. `rng` must be a
 * cryptographic source in production (see {@link bufferedRandom}); the noise share must stay
 * unpredictable to the coordinator.
 */
export function encodeClientUpdate(
  cfg: DpRoundConfig,
  update: ArrayLike<number>,
  rng: RandomSource,
): EncodedUpdate {
  if (update.length !== cfg.dim)
    throw new RangeError(`update has length ${update.length}, the round expects ${cfg.dim}`);
  const n = paddedDim(cfg);
  const x = new Float64Array(cfg.dim + (cfg.clipIndicator ? 1 : 0));
  for (let i = 0; i < cfg.dim; i++) {
    const v = update[i]!;
    if (!Number.isFinite(v)) throw new TypeError(`update[${i}] is not finite`);
    x[i] = v;
  }
  let preClipNorm: number;
  if (cfg.clipIndicator) {
    // Andrew et al. 2021: clip the update to the current clip and release b = [norm <= clip]
    // as weight * (b - 1/2), so the joint norm is at most jointClipNorm.
    const head = x.subarray(0, cfg.dim);
    preClipNorm = clipL2InPlace(head, cfg.clipIndicator.updateClip);
    const b = preClipNorm <= cfg.clipIndicator.updateClip ? 1 : 0;
    x[cfg.dim] = cfg.clipIndicator.weight * (b - 0.5);
    clipL2InPlace(x, Math.min(cfg.clipNorm, jointClipNorm(cfg.clipIndicator)));
  } else {
    preClipNorm = clipL2InPlace(x, cfg.clipNorm);
  }
  const rotated = rotateForward(x, roundSigns(cfg.rotationSeed, n));
  const inv = 1 / cfg.gamma;
  for (let i = 0; i < n; i++) rotated[i] = rotated[i]! * inv;
  // Rotation is orthonormal, so the scaled norm is at most clipNorm / gamma; a hair of slack
  // covers the FWHT's floating-point rounding.
  const scaledNorm = (cfg.clipNorm / cfg.gamma) * (1 + 1e-12);
  const { rounded, attempts } = conditionalRandomizedRound(rng, rotated, scaledNorm, cfg.beta);
  const m = 2 ** cfg.modulusBits;
  const values = new Uint32Array(n);
  if (cfg.mechanism === "distributed_discrete_gaussian") {
    const noise = discreteGaussianSampler(rng, cfg.localSigma);
    for (let i = 0; i < n; i++) values[i] = mod(rounded[i]! + noise(), m);
  } else {
    for (let i = 0; i < n; i++) values[i] = mod(rounded[i]!, m);
  }
  rounded.fill(0);
  rotated.fill(0);
  x.fill(0);
  return { values, preClipNorm, roundingAttempts: attempts };
}

/** Adds `a` into the running modular sum `acc` (both length n), modulo 2^32 like SecAgg. */
export function addModular(acc: Uint32Array, a: Uint32Array): void {
  if (acc.length !== a.length) throw new RangeError("vectors differ in length");
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! + a[i]!) >>> 0;
}

/** What the server half recovers. */
export interface DecodedAggregate {
  /** The noisy sum of the clipped updates, length `cfg.dim`. */
  readonly sum: Float64Array;
  /** The noisy count of clients within the update clip (adaptive clipping), if configured. */
  readonly clipCount?: number;
  /** Noise variance per coordinate actually present in `sum` (unscaled units). */
  readonly noiseVariance: number;
}

/** Options of {@link decodeAggregate}. */
export interface DecodeOptions {
  /** Number of clients whose inputs (and noise shares) are in the sum. */
  readonly survivors: number;
  /** Randomness for the central mechanism's noise (required in central mode). */
  readonly rng?: RandomSource;
}

/** A standard normal draw by Box-Muller from 53-bit uniforms. */
export function standardNormal(rng: RandomSource): number {
  const u1 = 1 - uniform01(rng);
  const u2 = uniform01(rng);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** The L2 sensitivity of one client's decoded contribution: the rounding-inflated clip. */
export function decodedSensitivity(cfg: DpRoundConfig): number {
  return cfg.gamma * roundedL2NormBound(cfg.clipNorm / cfg.gamma, cfg.beta, paddedDim(cfg));
}

/**
 * The server half: from the unmasked sum modulo 2^32 (or 2^m) to the noisy aggregate. In central
 * mode it adds `N_Z(0, (z * sensitivity / gamma)^2)` to every scaled integer coordinate, drawn
 * exactly (CKS20), rather than floating-point Gaussian draws after decoding, whose low-order bits
 * can betray the value they were added to (Mironov, CCS 2012). The integers are where the
 * sensitivity was bounded, and the discrete Gaussian is Δ²/(2σ²)-zCDP like the continuous one
 * (CKS20 Theorem 4), so the accounting event is the same. The noise is added to the centred lift,
 * not modulo 2^m, so it cannot wrap the sum.
 */
export function decodeAggregate(
  cfg: DpRoundConfig,
  modularSum: Uint32Array,
  opts: DecodeOptions,
): DecodedAggregate {
  const n = paddedDim(cfg);
  if (modularSum.length !== n) throw new RangeError(`sum has length ${modularSum.length}, expected ${n}`);
  if (!Number.isSafeInteger(opts.survivors) || opts.survivors < 1) {
    throw new RangeError(`survivors must be a positive integer, got ${opts.survivors}`);
  }
  const m = 2 ** cfg.modulusBits;
  const half = m / 2;
  const central = cfg.mechanism === "central_gaussian" ? centralNoiseScale(cfg) : null;
  if (central && !opts.rng)
    throw new TypeError("central_gaussian decoding needs an rng for the server's noise");
  const noise = central && opts.rng ? discreteGaussianSampler(opts.rng, central) : () => 0;
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = modularSum[i]! % m;
    y[i] = ((v >= half ? v - m : v) + noise()) * cfg.gamma;
  }
  const withIndicator = rotateInverse(
    y,
    roundSigns(cfg.rotationSeed, n),
    cfg.dim + (cfg.clipIndicator ? 1 : 0),
  );
  const noiseVariance =
    cfg.mechanism === "central_gaussian"
      ? centralNoiseStddev(cfg) ** 2
      : opts.survivors * localStddev(cfg) ** 2;
  const sum = withIndicator.subarray(0, cfg.dim).slice();
  if (!cfg.clipIndicator) return { sum, noiseVariance };
  // The indicator coordinate holds weight * sum(b - 1/2) + noise.
  const clipCount = withIndicator[cfg.dim]! / cfg.clipIndicator.weight + opts.survivors / 2;
  return { sum, clipCount, noiseVariance };
}

/** The central mechanism's noise stddev: noise multiplier times the decoded sensitivity. */
export function centralSigma(cfg: CentralGaussianConfig): number {
  return cfg.noiseMultiplier * decodedSensitivity(cfg);
}

/** The server's discrete Gaussian scale in the integer domain: at least `centralSigma / gamma`. */
export function centralNoiseScale(cfg: CentralGaussianConfig): DyadicSigma {
  return dyadicSigmaAtLeast(centralSigma(cfg) / cfg.gamma);
}

/** The central noise stddev actually added, in unscaled units (at most 2^-14 above `centralSigma`). */
export function centralNoiseStddev(cfg: CentralGaussianConfig): number {
  return dyadicValue(centralNoiseScale(cfg)) * cfg.gamma;
}

/** Sampling context of a round, as the ledger records it. */
export interface RoundSampling {
  /** The cohort was sampled uniformly (Poisson) from a known population. */
  readonly uniform: boolean;
  /** The sampling rate q (ignored unless `uniform`). */
  readonly rate: number;
}

/** The rate amplification may use: `q` only for a really uniform sample, otherwise 1. */
export function accountedSamplingRate(s: RoundSampling): number {
  if (!s.uniform) return 1;
  if (!(s.rate > 0 && s.rate <= 1)) throw new RangeError(`sampling rate must be in (0, 1], got ${s.rate}`);
  return s.rate;
}

/**
 * The accounting event of a distributed round. `noiseShares` is the number of survivors whose
 * noise is trusted: survivors minus the clients assumed to collude with the coordinator (they
 * know, and can subtract, their own shares).
 */
export function distributedRoundEvent(
  cfg: DistributedDiscreteGaussianConfig,
  ctx: { survivors: number; colluders?: number; sampling: RoundSampling },
): DistributedDiscreteGaussianEvent {
  const shares = ctx.survivors - (ctx.colluders ?? 0);
  if (!Number.isSafeInteger(shares) || shares < 1) {
    throw new RangeError(`survivors (${ctx.survivors}) must exceed colluders (${ctx.colluders ?? 0})`);
  }
  return {
    kind: "distributed_discrete_gaussian",
    samplingRate: accountedSamplingRate(ctx.sampling),
    gamma: cfg.gamma,
    localStddev: localStddev(cfg),
    noiseShares: shares,
    l2Sensitivity: cfg.clipNorm,
    beta: cfg.beta,
    dim: paddedDim(cfg),
  };
}

/** The accounting event of a central-Gaussian round (MTZ19 Poisson-subsampled Gaussian). */
export function centralRoundEvent(
  cfg: CentralGaussianConfig,
  ctx: { sampling: RoundSampling },
): PoissonGaussianEvent {
  return {
    kind: "poisson_gaussian",
    samplingRate: accountedSamplingRate(ctx.sampling),
    noiseMultiplier: cfg.noiseMultiplier,
  };
}
