/**
 * The SDK's coordinator client: the protocol's typed device client
 * (`@fedprofile/protocol/client`) with the SDK's version and its retry policy. Loaded lazily with
 * the rest of the sync code.
 */
import {
  type ClientOptions,
  createDeviceClient,
  type DeviceClient,
  type RetryOptions,
} from "@fedprofile/protocol/client";

export { CoordinatorError, type RetryOptions } from "@fedprofile/protocol/client";

/** SDK version reported at check-in (no device information is sent). */
export const SDK_VERSION = "0.1.0";

/**
 * How long a device keeps retrying a call that got no answer, a 429 or a 5xx: 90 s of
 * full-jitter backoff (0.5 s doubling to 15 s), longer than a coordinator restart takes.
 */
export const SYNC_RETRY = { windowMs: 90_000, baseDelayMs: 500, maxDelayMs: 15_000 } as const;

/** The device routes, as the SDK's sync calls them. */
export type CoordinatorClient = DeviceClient;

/** Options of {@link createCoordinatorClient}: `endpoint`, the publishable `apiKey`, `fetch`, `retry`, `timeoutMs`. */
export type CoordinatorClientOptions = ClientOptions;

/** The device client with {@link SYNC_RETRY} (each field overridable) and {@link SDK_VERSION}. */
export function createCoordinatorClient(options: CoordinatorClientOptions): CoordinatorClient {
  const retry: RetryOptions = { ...SYNC_RETRY, ...options.retry };
  return createDeviceClient({ ...options, retry, sdkVersion: SDK_VERSION });
}
