/** @fedprofile/sdk: on-device profiling and federated rounds. */
export * from "./core";
export {
  type CoordinatorClient,
  createCoordinatorClient,
  SDK_VERSION,
  SyncError,
} from "./sync/coordinator-client";
export { participateInPlainRound, type RoundOutcome } from "./sync/plain-round";
