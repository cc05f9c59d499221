/**
 * Differential privacy for fedprofile: the RDP accountant and calibration, the distributed
 * discrete Gaussian (client and server halves), the central Gaussian fallback, adaptive
 * clipping, and composable aggregators.
 *
 * @packageDocumentation
 */

export * from "./accountant.ts";
export * from "./adaptive-clipping.ts";
export * from "./aggregators.ts";
export * from "./calibration.ts";
export * from "./config.ts";
export * from "./conversion.ts";
export * from "./discrete-gaussian.ts";
export * from "./distributed-accounting.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./gaussian-exact.ts";
export * from "./hadamard.ts";
export * from "./mechanism.ts";
export * from "./planning.ts";
export * from "./pld.ts";
export * from "./random.ts";
export * from "./rdp.ts";
export * from "./rounding.ts";
