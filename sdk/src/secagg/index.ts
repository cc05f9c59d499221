/**
 * The SDK's side of secure aggregation (Bonawitz et al. CCS 2017 with the SecAgg+ graph of Bell
 * et al. CCS 2020): one function per stage over a serialisable client state (the in-memory driver that runs whole
 * rounds for tests and benchmarks is `test/secagg/driver.ts`).
 */
export {
  advertiseKeys,
  type ClientNeighbour,
  type ClientOptions,
  type ClientState,
  type ClientStep,
  type ClientStepResult,
  consistencyCheck,
  maskedInput,
  shareKeys,
  unmask,
} from "./client";
export { type ProbeOptions, type ProbeResult, probeClient } from "./probe";
