/**
 * Typed HTTP client for the coordinator's device routes. Every response is parsed with the
 * shared wire schemas; nothing is cast. Errors carry the coordinator's stable error code.
 */
import {
  CheckinResponse,
  ContributionResponse,
  ErrorEnvelope,
  JoinResponse,
  ModelVersion,
  modelEtag,
  RoundStatus,
  SecAggAck,
  SecAggServerView,
  TasksResponse,
  WIRE_VERSION,
} from "@fedprofile/protocol/wire";
import type * as z from "zod/mini";

/** SDK version reported at check-in (no device information is sent). */
export const SDK_VERSION = "0.1.0";

const NOT_MODIFIED: unique symbol = Symbol("not-modified");

/** A request to the coordinator failed; `code` is the coordinator's error code when it sent one. */
export class SyncError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SyncError";
    this.code = code;
    this.status = status;
  }
}

export interface CoordinatorClientOptions {
  /** Base URL of the coordinator, e.g. `https://edge.example.com`. */
  endpoint: string;
  /** The tenant's publishable key (`fp_pub_…`). */
  apiKey: string;
  fetch?: typeof fetch;
  /** Retry policy for flaky links (mobile webviews); set `attempts: 1` to disable. */
  retry?: RetryOptions;
}

/**
 * Retries with full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff
 * and Jitter"), only where a retry is safe and useful: network failures, 429 and 5xx. A 4xx
 * is the caller's mistake and is never retried. Every device route is idempotent or guarded
 * server-side against duplicates, so a retried POST cannot count twice.
 */
export interface RetryOptions {
  /** Total attempts including the first (default 4). */
  attempts?: number;
  /** First backoff cap in ms (default 250); doubles per attempt. */
  baseDelayMs?: number;
  /** Largest backoff in ms (default 5000). */
  maxDelayMs?: number;
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

const RETRYABLE_STATUS = (status: number) => status === 0 || status === 429 || status >= 500;

export interface CoordinatorClient {
  checkin(modelId: string): Promise<CheckinResponse>;
  join(roundId: string): Promise<JoinResponse>;
  contribute(
    roundId: string,
    participantId: string,
    participantToken: string,
    vector: string,
  ): Promise<ContributionResponse>;
  roundStatus(roundId: string): Promise<RoundStatus>;
  /** The latest published version of `modelId`, or `null` when none exists yet. */
  latestModel(modelId: string): Promise<ModelVersion | null>;
  /**
   * Version `version` (or the newest) of `modelId`. With `cached`, sends `If-None-Match` and
   * returns `cached` itself on a 304, so an unchanged model costs no download.
   */
  model(
    modelId: string,
    version: number | "latest",
    cached?: ModelVersion | null,
  ): Promise<ModelVersion | null>;
  /** The tenant's declared models with their newest version and open round. */
  tasks(): Promise<TasksResponse>;
  /** This participant's view of the current SecAgg stage of its shard. */
  secaggView(roundId: string, shard: number, participant: string): Promise<SecAggServerView>;
  /** Sends one SecAgg message as a binary frame (no base64: it counts against the upload budget). */
  secaggMessage(roundId: string, shard: number, participant: string, frame: Uint8Array): Promise<SecAggAck>;
}

export function createCoordinatorClient(options: CoordinatorClientOptions): CoordinatorClient {
  const base = options.endpoint.replace(/\/+$/, "");
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);

  const attempts = Math.max(1, options.retry?.attempts ?? 4);
  const baseDelay = options.retry?.baseDelayMs ?? 250;
  const maxDelay = options.retry?.maxDelayMs ?? 5000;
  const sleep = options.retry?.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
  const random = options.retry?.random ?? Math.random;

  async function call<T extends z.ZodMiniType>(
    schema: T,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<z.infer<T>> {
    const result = await callOrNotModified(schema, method, path, body, headers);
    if (result === NOT_MODIFIED) throw new SyncError("bad_response", `unexpected 304 from ${path}`, 304);
    return result;
  }

  async function callOrNotModified<T extends z.ZodMiniType>(
    schema: T,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<z.infer<T> | typeof NOT_MODIFIED> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await callOnce(schema, method, path, body, headers);
      } catch (error) {
        const retryable = error instanceof SyncError && RETRYABLE_STATUS(error.status);
        if (!retryable || attempt >= attempts) throw error;
        await sleep(random() * Math.min(maxDelay, baseDelay * 2 ** (attempt - 1)));
      }
    }
  }

  async function callOnce<T extends z.ZodMiniType>(
    schema: T,
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
  ): Promise<z.infer<T> | typeof NOT_MODIFIED> {
    const binary = body instanceof Uint8Array;
    let response: Response;
    try {
      response = await doFetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.apiKey}`,
          ...headers,
          ...(body === undefined
            ? {}
            : { "content-type": binary ? "application/octet-stream" : "application/json" }),
        },
        ...(body === undefined ? {} : { body: binary ? new Uint8Array(body) : JSON.stringify(body) }),
      });
    } catch (cause) {
      throw new SyncError("network", `could not reach the coordinator at ${base}`, 0, { cause });
    }
    if (response.status === 304) return NOT_MODIFIED;
    const payload: unknown = await response.json().catch(() => null);
    if (!response.ok) {
      const envelope = ErrorEnvelope.safeParse(payload);
      throw envelope.success
        ? new SyncError(envelope.data.error.code, envelope.data.error.message, response.status)
        : new SyncError("http", `coordinator answered ${response.status}`, response.status);
    }
    const parsed = schema.safeParse(payload);
    if (!parsed.success)
      throw new SyncError("bad_response", `unexpected response from ${path}`, response.status, {
        cause: parsed.error,
      });
    return parsed.data;
  }

  return {
    checkin: (modelId) =>
      call(CheckinResponse, "POST", "/v1/checkin", { v: WIRE_VERSION, modelId, sdkVersion: SDK_VERSION }),
    join: (roundId) => call(JoinResponse, "POST", `/v1/rounds/${roundId}/join`, { v: WIRE_VERSION }),
    contribute: (roundId, participantId, participantToken, vector) =>
      call(ContributionResponse, "POST", `/v1/rounds/${roundId}/contributions`, {
        v: WIRE_VERSION,
        participantId,
        participantToken,
        vector,
      }),
    roundStatus: (roundId) => call(RoundStatus, "GET", `/v1/rounds/${roundId}`),
    secaggView: (roundId, shard, participant) =>
      call(SecAggServerView, "GET", `/v1/rounds/${roundId}/shards/${shard}/view`, undefined, {
        "x-participant": participant,
      }),
    secaggMessage: (roundId, shard, participant, frame) =>
      call(SecAggAck, "POST", `/v1/rounds/${roundId}/shards/${shard}/messages`, frame, {
        "x-participant": participant,
      }),
    tasks: () => call(TasksResponse, "GET", "/v1/tasks"),
    async model(modelId, version, cached) {
      const path = `/v1/models/${modelId}/${version === "latest" ? "latest" : `versions/${version}`}`;
      const headers: Record<string, string> = cached ? { "if-none-match": modelEtag(cached) } : {};
      try {
        const found = await callOrNotModified(ModelVersion, "GET", path, undefined, headers);
        return found === NOT_MODIFIED ? (cached ?? null) : found;
      } catch (error) {
        if (error instanceof SyncError && error.status === 404) return null;
        throw error;
      }
    },
    async latestModel(modelId) {
      try {
        return await call(ModelVersion, "GET", `/v1/models/${modelId}/latest`);
      } catch (error) {
        if (error instanceof SyncError && error.status === 404) return null;
        throw error;
      }
    },
  };
}
