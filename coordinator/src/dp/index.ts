/**
 * Differential privacy for fedprofile: the RDP accountant and calibration, the central Gaussian
 * fallback, adaptive clipping and composable aggregators, plus, re-exported, the DP math both
 * sides run (`@fedprofile/protocol/dp`: round configuration, discrete Gaussian, events).
 *
 * @packageDocumentation
 */

export * from "@fedprofile/protocol/dp";
export * from "./accountant.ts";
export * from "./adaptive-clipping.ts";
export * from "./aggregators.ts";
export * from "./calibration.ts";
export * from "./errors.ts";
export * from "./gaussian-exact.ts";
export * from "./planning.ts";
export * from "./pld.ts";
