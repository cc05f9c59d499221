/**
 * The device's side of admission: before joining a round that admits by token, fetch one Privacy
 * Pass token for that round from the storefront's issuer (RFC 9578 §5–6). The device blinds the
 * token input, so the issuer (which may know the logged-in customer) cannot tell which token the
 * coordinator later sees, nor which round it is for. Loaded only for such rounds: the blind-RSA
 * code stays out of the bundle otherwise.
 */
import {
  createTokenRequest,
  TOKEN_REQUEST_MEDIA_TYPE,
  TOKEN_RESPONSE_MEDIA_TYPE,
  tokenKeyId,
} from "@fedprofile/protocol/admission";
import {
  base64ToBytes,
  base64urlToBytes,
  bytesToBase64,
  constantTimeEqual,
} from "@fedprofile/protocol/bytes";
import { FedprofileError } from "@fedprofile/protocol/errors";
import type { RoundAdmissionInfo } from "@fedprofile/protocol/wire";
import * as z from "zod/mini";

/** Where and how the device asks for tokens (`createProfiler({ admission })`). */
export interface AdmissionOptions {
  /**
   * The issuer directory (RFC 9578 §4), e.g. `https://shop.example/.well-known/private-token-issuer-directory`.
   * Its `issuer-request-uri` is resolved against this URL.
   */
  directoryUrl: string;
  /** `include` sends the storefront's session cookie, so a logged-in customer gets its quota. */
  credentials?: "omit" | "same-origin" | "include";
  fetch?: typeof fetch;
}

/** The device could not get a token (`code` `admission_unavailable`; the round is skipped). */
export class AdmissionUnavailableError extends FedprofileError {
  constructor(message: string, status = 0, options?: { cause?: unknown }) {
    super("admission_unavailable", message, status, options);
  }
}

const IssuerDirectory = z.object({
  "issuer-request-uri": z.string().check(z.minLength(1), z.maxLength(2048)),
  "token-keys": z
    .array(
      z.object({
        "token-type": z.int(),
        "token-key": z.string().check(z.maxLength(4096), z.regex(/^[A-Za-z0-9_-]+={0,2}$/, "base64url")),
      }),
    )
    .check(z.minLength(1), z.maxLength(16)),
});

/** Fetches a token for round `roundId` (admission `info`) and returns it as standard base64. */
export async function fetchAdmissionToken(
  options: AdmissionOptions,
  roundId: string,
  info: RoundAdmissionInfo,
): Promise<string> {
  return (await fetchBoundAdmissionToken(options, roundId, info)).token;
}

/** A token and the issuer key it was fetched under (from the directory, not the coordinator). */
export interface BoundAdmissionToken {
  /** Standard base64 of the 354-byte token. */
  token: string;
  /** The issuer's RSASSA-PSS SPKI, base64: what neighbours' tokens are checked against. */
  issuerPublicKey: string;
}

/**
 * As {@link fetchAdmissionToken}, with the token's client nonce chosen by the caller (the
 * `maliciousServer` preset binds it to the round identity key, `@fedprofile/protocol/secagg`
 * identity.ts) and the issuer key returned with the token.
 */
export async function fetchBoundAdmissionToken(
  options: AdmissionOptions,
  roundId: string,
  info: RoundAdmissionInfo,
  nonce?: Uint8Array,
): Promise<BoundAdmissionToken> {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const init = options.credentials ? { credentials: options.credentials } : {};
  const directoryResponse = await call(doFetch, options.directoryUrl, { ...init, method: "GET" });
  const parsed = IssuerDirectory.safeParse(await directoryResponse.json().catch(() => null));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AdmissionUnavailableError(
      `issuer directory: ${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`,
    );
  }
  // The round names the key it checks with; blinding to another key would waste the quota.
  const want = base64ToBytes(info.keyId);
  const key = parsed.data["token-keys"]
    .filter((k) => k["token-type"] === 2)
    .map((k) => base64urlToBytes(k["token-key"]))
    .find((spki) => constantTimeEqual(tokenKeyId(spki), want));
  if (!key) throw new AdmissionUnavailableError("issuer directory: no type-2 key matches the round's keyId");

  const pending = await createTokenRequest(info.issuerName, roundId, key, nonce);
  const requestUrl = new URL(parsed.data["issuer-request-uri"], options.directoryUrl).toString();
  const response = await call(doFetch, requestUrl, {
    ...init,
    method: "POST",
    headers: { "content-type": TOKEN_REQUEST_MEDIA_TYPE, accept: TOKEN_RESPONSE_MEDIA_TYPE },
    body: new Uint8Array(pending.request),
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  try {
    return { token: bytesToBase64(await pending.finalize(bytes)), issuerPublicKey: bytesToBase64(key) };
  } catch (cause) {
    throw new AdmissionUnavailableError("issuer: the token response does not verify", 0, { cause });
  }
}

async function call(doFetch: typeof fetch, url: string, init: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await doFetch(url, init);
  } catch (cause) {
    throw new AdmissionUnavailableError(`issuer: ${url} is unreachable`, 0, { cause });
  }
  if (!response.ok) {
    const text = await response.text().catch(() => "");
    throw new AdmissionUnavailableError(
      `issuer: ${init.method} ${url} answered ${response.status}${text ? ` (${text.slice(0, 200)})` : ""}`,
      response.status,
    );
  }
  return response;
}
