/**
 * `@fedprofile/protocol`: what the device and the coordinator share. Wire schemas (zod/mini),
 * the SecAgg+ and distributed-DP math both sides run, and the one bytes module. Prefer the
 * subpath imports (`/wire`, `/secagg`, `/dp`, `/bytes`, `/errors`): every module is side-effect
 * free, so a bundler keeps only what is used.
 *
 * @packageDocumentation
 */

export * from "./bytes";
export * from "./dp/index";
export * from "./errors";
export * from "./secagg/index";
export * from "./wire/index";
