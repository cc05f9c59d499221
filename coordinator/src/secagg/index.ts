/**
 * Secure aggregation: Bonawitz et al. (CCS 2017) with the SecAgg+ neighbour graph of Bell et al.
 * (CCS 2020). The shared math (field, Shamir, graph, PRG, KDF, encoding, masks), the wire
 * schemas and the runtime-neutral server side. The client side lives in `@fedprofile/sdk`.
 */

export * from "../wire/secagg";
export * from "./bytes";
export * from "./constants";
export * from "./encoding";
export * from "./errors";
export * from "./graph";
export { admit, eligible, messageDigest, parseClientMessage } from "./guard";
export * from "./keys";
export * from "./masking";
export * from "./params";
export * from "./prg";
export {
  closeStage,
  handleAdvertiseKeys,
  handleConsistencyCheck,
  handleMaskedInput,
  handleMessage,
  handleShareKeys,
  handleUnmask,
  onDeadline,
  roundGraph,
  type Transition,
  viewFor,
} from "./server";
export * from "./shamir";
export * from "./shards";
export * from "./state";
export { finalizeUnmask, type UnmaskOptions } from "./unmask";
