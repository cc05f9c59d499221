/** @fedprofile/sdk: on-device profiling and federated rounds. */
export {
  ACTIVITY_MODEL,
  createProfiler,
  type Profile,
  type Profiler,
  type ProfilerEvent,
  type ProfilerOptions,
} from "./profiler";
export {
  createIndexedDbEventStore,
  createMemoryEventStore,
  type EventStore,
  type StoredEvent,
} from "./store/event-store";
export {
  type CoordinatorClient,
  createCoordinatorClient,
  SDK_VERSION,
  SyncError,
} from "./sync/coordinator-client";
export { participateInPlainRound, type RoundOutcome } from "./sync/plain-round";
