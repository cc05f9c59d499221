/** @fedprofile/coordinator: the runtime-neutral core. */
export * from "./admission/index";
export * from "./api-keys";
export * from "./app/index";
export * from "./errors";
export * from "./ids";
export * from "./memory/index";
export * from "./models/index";
export * from "./ports";
export * from "./rounds/any-round-host";
export * from "./rounds/plain-sum-round";
export * from "./rounds/round-floors";
export * from "./rounds/round-host";
export * from "./rounds/round-limits";
export * from "./rounds/round-privacy";
export * from "./rounds/round-service";
export * from "./rounds/secagg-root-host";
export * from "./rounds/secagg-shard-host";
