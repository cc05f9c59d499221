/**
 * The device's half of fedprofile's differential privacy: turn a local model update into the
 * integer vector that secure aggregation masks, under the round's public DP configuration.
 *
 * Distributed mode (Kairouz, Liu & Steinke, ICML 2021): clip, rotate with the public seed,
 * scale, round conditionally, add this device's discrete Gaussian noise share (Canonne, Kamath
 * & Steinke 2020, exact), wrap modulo 2^m. Central mode: the same without the noise share; the
 * coordinator adds Gaussian noise after unmasking. The noise comes from the platform CSPRNG
 * (`crypto.getRandomValues`) unless a `randomBytes` is injected (tests).
 *
 * Nothing computed here except `values` may leave the device: `local` is for on-device
 * diagnostics only (the pre-clip norm is a function of the user's data).
 */

import type { RandomBytes } from "@fedprofile/protocol/bytes";
import {
  bufferedRandom,
  DpRoundConfig,
  encodeClientUpdate,
  paddedDim,
  type RandomSource,
} from "@fedprofile/protocol/dp";

/** Options of {@link prepareDpContribution}. */
export interface DpClientOptions {
  /** CSPRNG for rounding and noise (default: `crypto.getRandomValues`). */
  readonly randomBytes?: RandomBytes;
}

/** What the device hands to SecAgg, plus device-only diagnostics. */
export interface DpContribution {
  /** SecAgg input: `paddedDim` integers in `[0, 2^modulusBits)`. */
  readonly values: Uint32Array;
  /** Bits of the modular arithmetic SecAgg must use for this round. */
  readonly modulusBits: number;
  /** The mechanism and the trust model it implies. */
  readonly mechanism: DpRoundConfig["mechanism"];
  readonly trustModel: "distributed" | "central";
  /** Device-only diagnostics; never send these. */
  readonly local: {
    readonly preClipNorm: number;
    readonly clipped: boolean;
    readonly roundingAttempts: number;
  };
}

/** Thrown when the coordinator's DP configuration is malformed. */
export class DpConfigError extends TypeError {
  readonly code = "DP_CONFIG_INVALID";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DpConfigError";
  }
}

/** Validates the round's DP configuration as received from the coordinator. */
export function parseDpConfig(config: unknown): DpRoundConfig {
  const parsed = DpRoundConfig.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new DpConfigError(
      `invalid DP round configuration at ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "unknown"}`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

/**
 * Prepares this device's contribution to a DP round. Throws {@link DpConfigError} for a bad
 * configuration and `RangeError`/`TypeError` for an update of the wrong length or with
 * non-finite entries.
 */
export function prepareDpContribution(
  config: unknown,
  update: ArrayLike<number>,
  opts: DpClientOptions = {},
): DpContribution {
  const cfg = parseDpConfig(config);
  const rng: RandomSource = bufferedRandom(opts.randomBytes);
  const enc = encodeClientUpdate(cfg, update, rng);
  if (enc.values.length !== paddedDim(cfg))
    throw new RangeError("encoder produced a vector of the wrong length");
  const limit = cfg.clipIndicator ? cfg.clipIndicator.updateClip : cfg.clipNorm;
  return {
    values: enc.values,
    modulusBits: cfg.modulusBits,
    mechanism: cfg.mechanism,
    trustModel: cfg.mechanism === "distributed_discrete_gaussian" ? "distributed" : "central",
    local: {
      preClipNorm: enc.preClipNorm,
      clipped: enc.preClipNorm > limit,
      roundingAttempts: enc.roundingAttempts,
    },
  };
}
