/**
 * Secure aggregation: Bonawitz et al. (CCS 2017) with the SecAgg+ neighbour graph of Bell et al.
 * (CCS 2020). The runtime-neutral server side (state, guard, stage handlers, unmasking, shards)
 * plus, re-exported, the shared math and wire schemas of `@fedprofile/protocol`. The client side
 * lives in `@fedprofile/sdk`.
 */

export * from "@fedprofile/protocol/bytes";
export * from "@fedprofile/protocol/secagg";
export * from "@fedprofile/protocol/wire";
export { admit, eligible, frameDigest, type Received, receiveFrame, receiveJson } from "./guard";
export * from "./params";
export {
  closeStage,
  handleAdvertiseKeys,
  handleConsistencyCheck,
  handleFrame,
  handleMaskedInput,
  handleMessage,
  handleReceived,
  handleShareKeys,
  handleUnmask,
  onDeadline,
  roundGraph,
  type StepOptions,
  type Transition,
  viewFor,
} from "./server";
export * from "./shards";
export * from "./state";
export { finalizeUnmask, type UnmaskOptions } from "./unmask";
