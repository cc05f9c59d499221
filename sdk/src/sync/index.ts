/**
 * `@fedprofile/sdk/sync`: taking part in federated rounds. Loaded lazily by the profiler, so the
 * tracking core stays small.
 */

export { PolicyRefusedError, type PrivacyPolicyOption } from "../privacy-policy";
export { type AdmissionOptions, AdmissionUnavailableError, fetchAdmissionToken } from "./admission";
export {
  type CoordinatorClient,
  type CoordinatorClientOptions,
  CoordinatorError,
  createCoordinatorClient,
  type RetryOptions,
  SDK_VERSION,
  SYNC_RETRY,
} from "./coordinator-client";
export { contributeKMeans } from "./model-tasks";
export { type ParticipationOptions, participateInRound, type RoundOutcome } from "./plain-round";
export { assertRoundMeetsPolicy, resolvePolicy } from "./policy-check";
export {
  createMemorySessionStore,
  participateInSecAggRound,
  type SecAggOutcome,
  type SecAggParticipationOptions,
  type SecAggSession,
  type SecAggSessionStore,
} from "./secagg-round";
export type { StageSocketFactory, StageSocketLike } from "./stage-socket";
