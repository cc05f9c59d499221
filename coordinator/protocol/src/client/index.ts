/**
 * `@fedprofile/protocol/client`: the one typed HTTP client for the coordinator, shared by the
 * SDK's sync (device routes), the CLI, the compliance dashboard and the demo (operator and
 * auditor routes). Each factory checks its key kind; every answer is parsed once with the
 * protocol's wire schemas; every failure is a {@link CoordinatorError}.
 *
 * @packageDocumentation
 */
export {
  type AuditorClient,
  type BudgetRequest,
  createAuditorClient,
  createOperatorClient,
  type LedgerPageRequest,
  type OperatorClient,
  type ReadClient,
} from "./backend";
export { createDeviceClient, type DeviceCallOptions, type DeviceClient } from "./device";
export {
  type CallOptions,
  type ClientOptions,
  CoordinatorError,
  type KeyKind,
  normalizeEndpoint,
  type RetryOptions,
} from "./http";
