/**
 * The differential-privacy math both sides run: the public per-round DP configuration, the
 * distributed discrete Gaussian (Kairouz, Liu & Steinke 2021) with its rotation, rounding and
 * exact samplers, the RDP curves of the events a round spends, and the client's encoding of its
 * noised update. The accountant, the planner and the ledger live in `@fedprofile/coordinator/dp`.
 *
 * @packageDocumentation
 */

export * from "./config.ts";
export * from "./conversion.ts";
export * from "./discrete-gaussian.ts";
export * from "./distributed-accounting.ts";
export * from "./events.ts";
export * from "./floors.ts";
export * from "./hadamard.ts";
export * from "./mechanism.ts";
export * from "./numeric.ts";
export * from "./random.ts";
export * from "./rdp.ts";
export * from "./rounding.ts";
