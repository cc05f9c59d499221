/**
 * The one HTTP layer every caller of the coordinator uses (the SDK's sync, the CLI, the
 * compliance dashboard, the demo): it builds the URL, sets the bearer key, parses the answer
 * once with a wire schema, and turns anything else into one {@link CoordinatorError} with the
 * HTTP status and the server's error code. Retries, timeouts and `AbortSignal` live here too.
 */
import type * as z from "zod/mini";
import { ErrorEnvelope } from "../wire/common";

/** Which key a client carries (README, "HTTP API"): each route accepts only some kinds. */
export type KeyKind = "publishable" | "secret" | "auditor";

const PREFIX: Record<KeyKind, string> = { publishable: "fp_pub_", secret: "fp_sec_", auditor: "fp_aud_" };
const ARTICLE: Record<KeyKind, string> = { publishable: "a", secret: "a", auditor: "an" };

/**
 * Why a call failed. `code` is the server's error code (`round_full`, `not_found`, …) when it
 * answered with the error envelope, else one of the client's own: `unreachable` (no answer;
 * status 0), `timeout` (status 0), `aborted` (the caller's signal; status 0), `http` (an error
 * status without the envelope) or `bad_response` (an answer the wire schema rejects).
 */
export class CoordinatorError extends Error {
  readonly code: string;
  /** The HTTP status, 0 when no answer came. */
  readonly status: number;

  constructor(code: string, message: string, status: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CoordinatorError";
    this.code = code;
    this.status = status;
  }

  /** A retry may succeed: no answer, a timeout, 429 or a 5xx. A 4xx is the caller's mistake. */
  get retryable(): boolean {
    return (
      this.code === "unreachable" || this.code === "timeout" || this.status === 429 || this.status >= 500
    );
  }
}

/**
 * Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff and Jitter"): the
 * n-th wait is uniform in [0, min(maxDelayMs, baseDelayMs·2^n)], and retries go on while the
 * time since the first attempt is under `windowMs`. Only {@link CoordinatorError.retryable}
 * failures are retried; every device route is idempotent or guarded against duplicates server-side.
 */
export interface RetryOptions {
  /** How long to keep retrying, from the first attempt, in ms (default 0: no retry). */
  windowMs?: number;
  /** First backoff cap in ms (default 250); doubles per attempt. */
  baseDelayMs?: number;
  /** Largest backoff in ms (default 8000). */
  maxDelayMs?: number;
  /** Injectable for tests (default `setTimeout`). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

/** Options of every client factory. */
export interface ClientOptions {
  /** The coordinator's base URL, e.g. `https://edge.example.com` (http or https, nothing after the path). */
  endpoint: string;
  /** The key this client sends as `Authorization: Bearer …`. */
  apiKey: string;
  fetch?: typeof fetch;
  /** Per-attempt timeout in ms (default 30,000). */
  timeoutMs?: number;
  retry?: RetryOptions;
}

/** One call's extras. */
export interface CallOptions {
  /** A JSON value, or bytes sent as `application/octet-stream`. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Sends `If-None-Match`; a 304 then resolves to {@link NOT_MODIFIED}. */
  etag?: string;
  signal?: AbortSignal;
  /**
   * Reads a successful answer's text instead of `JSON.parse` (the schema then checks what it
   * returns). The ledger's verifiers pass a strict I-JSON reader here (ledger SPEC.md §3).
   */
  readBody?: (text: string) => unknown;
}

/** What a conditional GET resolves to on 304. */
export const NOT_MODIFIED: unique symbol = Symbol("not-modified");

/** The transport the route clients share. */
export interface Http {
  /** The normalised base URL. */
  readonly endpoint: string;
  call<S extends z.ZodMiniType>(
    schema: S,
    method: string,
    path: string,
    options?: CallOptions,
  ): Promise<z.infer<S> | typeof NOT_MODIFIED>;
}

/**
 * The base URL as the client uses it: http(s), no credentials, query or fragment, no trailing
 * slash. Throws a `TypeError` naming `endpoint` otherwise.
 */
export function normalizeEndpoint(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new TypeError(`endpoint: not a URL: ${JSON.stringify(text)} (give the scheme too, e.g. http://…)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new TypeError(`endpoint: must be http or https, got ${url.protocol}`);
  if (url.username || url.password || url.search || url.hash)
    throw new TypeError("endpoint: the coordinator's base URL only (no credentials, query or fragment)");
  return url.href.replace(/\/+$/, "");
}

const sleepFor = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", stop);
      resolve();
    }
    function stop() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener("abort", stop, { once: true });
  });

/** The transport for `kind` keys. Throws a `TypeError` naming the field for a bad endpoint or key. */
export function createHttp(options: ClientOptions, kind: KeyKind): Http {
  const endpoint = normalizeEndpoint(options.endpoint);
  if (!options.apiKey.startsWith(PREFIX[kind]))
    throw new TypeError(`apiKey: expected ${ARTICLE[kind]} ${kind} key (${PREFIX[kind]}…)`);
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const retry = options.retry ?? {};
  const windowMs = retry.windowMs ?? 0;
  const sleep = retry.sleep ?? sleepFor;
  const random = retry.random ?? Math.random;
  const now = retry.now ?? Date.now;

  async function once<S extends z.ZodMiniType>(
    schema: S,
    method: string,
    path: string,
    o: CallOptions,
  ): Promise<z.infer<S> | typeof NOT_MODIFIED> {
    const body = o.body;
    const bytes = body instanceof Uint8Array;
    const headers: Record<string, string> = { authorization: `Bearer ${options.apiKey}`, ...o.headers };
    if (body !== undefined) headers["content-type"] = bytes ? "application/octet-stream" : "application/json";
    if (o.etag) headers["if-none-match"] = o.etag;
    // One controller per attempt: the caller's signal and this attempt's timeout both abort it.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const forward = () => controller.abort();
    o.signal?.addEventListener("abort", forward, { once: true });
    const where = `${method} ${endpoint}${path}`;
    const failed = (cause: unknown) =>
      o.signal?.aborted
        ? new CoordinatorError("aborted", `${where}: aborted`, 0, { cause: o.signal.reason })
        : controller.signal.aborted
          ? new CoordinatorError("timeout", `${where}: no answer within ${timeoutMs} ms`, 0, { cause })
          : new CoordinatorError(
              "unreachable",
              // fetch says only "fetch failed"; its cause says why (ECONNREFUSED, ENOTFOUND, …).
              `cannot reach ${endpoint}${cause instanceof Error && cause.cause instanceof Error ? ` (${cause.cause.message})` : ""}`,
              0,
              { cause },
            );
    try {
      let response: Response;
      let text: string;
      try {
        response = await doFetch(`${endpoint}${path}`, {
          method,
          headers,
          signal: controller.signal,
          ...(body === undefined
            ? {}
            : { body: body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body) }),
        });
        text = await response.text();
      } catch (cause) {
        throw failed(cause);
      }
      if (response.status === 304 && o.etag) return NOT_MODIFIED;
      let payload: unknown = null;
      try {
        payload = text === "" ? null : JSON.parse(text);
      } catch {
        // an error page from a proxy, or a truncated body: reported below with the status
      }
      if (!response.ok) {
        const envelope = ErrorEnvelope.safeParse(payload);
        throw envelope.success
          ? new CoordinatorError(envelope.data.error.code, envelope.data.error.message, response.status)
          : new CoordinatorError("http", `${where}: HTTP ${response.status}`, response.status);
      }
      if (o.readBody) {
        try {
          payload = o.readBody(text);
        } catch (cause) {
          throw new CoordinatorError(
            "bad_response",
            `${where}: ${cause instanceof Error ? cause.message : String(cause)}`,
            response.status,
            { cause },
          );
        }
      }
      const parsed = schema.safeParse(payload);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new CoordinatorError(
          "bad_response",
          `${where}: unexpected answer${issue ? ` (${issue.path.join(".") || "body"}: ${issue.message})` : ""}`,
          response.status,
          { cause: parsed.error },
        );
      }
      return parsed.data;
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", forward);
    }
  }

  return {
    endpoint,
    async call(schema, method, path, o = {}) {
      const start = now();
      for (let attempt = 0; ; attempt++) {
        try {
          return await once(schema, method, path, o);
        } catch (error) {
          if (!(error instanceof CoordinatorError && error.retryable)) throw error;
          const wait =
            random() * Math.min(retry.maxDelayMs ?? 8000, (retry.baseDelayMs ?? 250) * 2 ** attempt);
          if (now() - start + wait > windowMs) throw error;
          await sleep(wait, o.signal).catch(() => {
            throw new CoordinatorError("aborted", `${method} ${endpoint}${path}: aborted`, 0, {
              cause: o.signal?.reason,
            });
          });
        }
      }
    },
  };
}

/** {@link Http.call} for routes that never answer 304. */
export async function callJson<S extends z.ZodMiniType>(
  http: Http,
  schema: S,
  method: string,
  path: string,
  options?: CallOptions,
): Promise<z.infer<S>> {
  const result = await http.call(schema, method, path, options);
  if (result === NOT_MODIFIED) throw new CoordinatorError("bad_response", `unexpected 304 from ${path}`, 304);
  return result;
}

/** A path segment, percent-encoded (ids are validated server-side; this keeps the URL well-formed). */
export const seg = (value: string | number): string => encodeURIComponent(String(value));
