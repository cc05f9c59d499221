/**
 * Wire schemas shared by the SDK and the coordinator: the single source of truth for every
 * message. Types are derived with `z.infer`; parsed JSON is never cast.
 */
export * from "./admission";
export * from "./audit";
export * from "./binary";
export * from "./common";
export * from "./model";
export * from "./round";
export * from "./secagg";
export * from "./secagg-frame";
export * from "./stage-push";
export * from "./training";
