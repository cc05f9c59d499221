/**
 * `fedprofile accountant`: epsilon of repeated Poisson-subsampled Gaussian rounds (RDP, Mironov,
 * Talwar & Zhang 2019, converted with dp_accounting's rule set), or, with `--target-epsilon`, the
 * smallest noise multiplier that stays within it.
 */

import {
  calibrateNoiseMultiplier,
  composedGaussianEpsilon,
  pldPoissonGaussianEpsilon,
  poissonGaussianEpsilon,
} from "@fedprofile/coordinator/dp";
import { type CliIo, CliUsageError } from "./io.ts";
import { numberFlag, parseArgs, wantsHelp } from "./options.ts";

/** Help text of the command. */
export const ACCOUNTANT_HELP = `Usage:
  fedprofile accountant --noise-multiplier Z --sampling-rate Q --steps T --delta D [--pld] [--json]
  fedprofile accountant --target-epsilon E --sampling-rate Q --steps T --delta D [--json]

Epsilon of T rounds of the Gaussian mechanism with noise multiplier Z (noise stddev over L2
sensitivity) under Poisson sampling at rate Q, by Renyi DP (Mironov, Talwar & Zhang 2019) with
dp_accounting's default orders and its RDP-to-(epsilon, delta) conversion. With
--target-epsilon, calibrates the smallest Z instead. Use Q = 1 unless the cohort really was a
uniform sample of a known population. --pld adds the tighter privacy-loss-distribution
epsilon (connect-the-dots, pessimistic; seconds for small Z or many steps).
`;

/** The machine-readable result (`--json`). */
export interface AccountantJson {
  readonly mode: "epsilon" | "calibrate";
  readonly noiseMultiplier: number;
  readonly samplingRate: number;
  readonly steps: number;
  readonly delta: number;
  readonly epsilon: number;
  readonly optimalOrder: number;
  readonly targetEpsilon?: number;
  /** Exact epsilon of the composed Gaussian (only without sampling, Balle & Wang 2018). */
  readonly epsilonExactGaussian?: number;
  /** PLD epsilon (`--pld`), a tighter second opinion. */
  readonly epsilonPld?: number;
}

/** Runs the command; returns the exit code. */
export async function accountantCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseArgs(
    argv,
    ["noise-multiplier", "sampling-rate", "steps", "delta", "target-epsilon"],
    ["json", "help", "pld"],
  );
  if (wantsHelp(args)) {
    io.stdout(ACCOUNTANT_HELP);
    return 0;
  }
  if (args.positionals.length > 0) throw new CliUsageError(`unexpected argument "${args.positionals[0]}"`);
  const q = numberFlag(args, "sampling-rate", { min: 0, max: 1, exclusiveMin: true }) ?? 1;
  const steps = numberFlag(args, "steps", { min: 1, integer: true });
  const delta = numberFlag(args, "delta", { min: 0, max: 1, exclusiveMin: true });
  const z = numberFlag(args, "noise-multiplier", { min: 0, exclusiveMin: true });
  const target = numberFlag(args, "target-epsilon", { min: 0, exclusiveMin: true });
  if (steps === undefined) throw new CliUsageError("--steps is required");
  if (delta === undefined || delta >= 1) throw new CliUsageError("--delta is required and must be below 1");
  if ((z === undefined) === (target === undefined)) {
    throw new CliUsageError("give exactly one of --noise-multiplier and --target-epsilon");
  }
  let out: AccountantJson;
  if (target !== undefined) {
    const c = calibrateNoiseMultiplier({ targetEpsilon: target, delta, samplingRate: q, steps });
    out = {
      mode: "calibrate",
      noiseMultiplier: c.noise,
      samplingRate: q,
      steps,
      delta,
      epsilon: c.epsilon,
      optimalOrder: c.optimalOrder,
      targetEpsilon: target,
    };
  } else {
    const e = poissonGaussianEpsilon({ noiseMultiplier: z!, samplingRate: q, steps, delta });
    out = {
      mode: "epsilon",
      noiseMultiplier: z!,
      samplingRate: q,
      steps,
      delta,
      epsilon: e.epsilon,
      optimalOrder: e.optimalOrder,
    };
    if (q === 1) out = { ...out, epsilonExactGaussian: composedGaussianEpsilon(z!, steps, delta) };
    if (args.flags.has("pld")) {
      io.stderr("computing the PLD epsilon...\n");
      out = {
        ...out,
        epsilonPld: pldPoissonGaussianEpsilon({ noiseMultiplier: z!, samplingRate: q, steps, delta }),
      };
    }
  }
  if (args.flags.has("json")) {
    io.stdout(`${JSON.stringify(out)}\n`);
    return 0;
  }
  const lines = [
    out.mode === "calibrate"
      ? "Noise calibration (Poisson-subsampled Gaussian, RDP; Mironov, Talwar & Zhang 2019)"
      : "Privacy spent (Poisson-subsampled Gaussian, RDP; Mironov, Talwar & Zhang 2019)",
  ];
  if (out.targetEpsilon !== undefined) lines.push(`  target epsilon    ${out.targetEpsilon}`);
  lines.push(
    `  noise multiplier  ${out.mode === "calibrate" ? out.noiseMultiplier.toPrecision(10) : out.noiseMultiplier}`,
    `  sampling rate     ${out.samplingRate}${out.samplingRate === 1 ? " (no amplification)" : ""}`,
    `  steps             ${out.steps}`,
    `  delta             ${out.delta}`,
    `  epsilon           ${out.epsilon.toFixed(4)}  (${out.epsilon})`,
    `  optimal order     ${out.optimalOrder}`,
  );
  if (out.epsilonExactGaussian !== undefined) {
    lines.push(
      `  exact Gaussian    ${out.epsilonExactGaussian.toFixed(4)}  (mu-GDP, Balle & Wang 2018; tighter than RDP)`,
    );
  }
  if (out.epsilonPld !== undefined) {
    lines.push(
      `  PLD               ${out.epsilonPld.toFixed(4)}  (privacy loss distribution, connect-the-dots; tighter than RDP)`,
    );
  }
  io.stdout(`${lines.join("\n")}\n`);
  return 0;
}
