/**
 * Differential privacy for fedprofile: the RDP accountant, calibration, the distributed discrete
 * Gaussian and Skellam mechanisms, and the composable aggregators.
 *
 * @packageDocumentation
 */

export * from "./accountant.ts";
export * from "./calibration.ts";
export * from "./conversion.ts";
export * from "./distributed-accounting.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./gaussian-exact.ts";
export * from "./rdp.ts";
