/**
 * The SDK's side of differential privacy: preparing a device's noised, clipped, quantised
 * contribution for secure aggregation.
 */
export {
  type DpClientOptions,
  DpConfigError,
  type DpContribution,
  parseDpConfig,
  prepareDpContribution,
} from "./client";
