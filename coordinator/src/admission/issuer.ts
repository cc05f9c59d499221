/**
 * A Privacy Pass issuer (RFC 9578 §6, token type 2) for a storefront's backend: it holds the
 * secret key and signs blinded token requests, so it never sees the token a device will redeem,
 * nor the round it is for (the challenge is inside the blinded input). Pluggable admission
 * policy, two built in:
 *
 * - **customers** (the default): the storefront knows who is logged in; each customer gets at most
 *   `perCustomer` tokens per `periodMs`. A key holder with many accounts still gets that many
 *   tokens per account, which is what the round's `colluders` setting must cover.
 * - **anonymous**: for visitors not logged in, at most `perClient` tokens per `periodMs` per
 *   client key (an IP address or a network prefix, as the storefront sees it), and at most
 *   `total` anonymous tokens per period in all, so a botnet cannot drain more than that.
 *
 * Runtime-neutral (WebCrypto): it runs in a node backend, a Worker or a test. The RSA private
 * operation is pluggable (`blindSign`): blindrsa-ts does it in JavaScript (WebCrypto has no raw
 * RSA), 0.5–2 s a token; a node backend can hand it to OpenSSL (`examples/node-blind-signer.ts`).
 */
import { publicVerif } from "@cloudflare/privacypass-ts";
import { ADMISSION_BLIND_RSA_MODE, ADMISSION_TOKEN_TYPE, tokenKeyId } from "@fedprofile/protocol/admission";
import { bytesToBase64, bytesToBase64url } from "@fedprofile/protocol/bytes";
import { FedprofileError, InvalidRequestError } from "../errors";
import type { Clock } from "../ports";

/** Who asks for a token: a logged-in customer, or an anonymous visitor by client key. */
export type TokenRequester = { customerId: string } | { anonymous: string };

/** Counts tokens per requester and period; swap for a shared store when the backend scales out. */
export interface IssuanceCounter {
  /** Adds one to `key`'s count in `period` if that stays within `limit`; false when it would not. */
  take(key: string, period: number, limit: number): Promise<boolean>;
}

/** Limits of {@link createTokenIssuer}. */
export interface IssuanceLimits {
  periodMs: number;
  /** Tokens one customer may hold per period. */
  perCustomer: number;
  /** Tokens one anonymous client key may get per period (0: no anonymous issuance). */
  perClient: number;
  /** Anonymous tokens in all per period. */
  anonymousTotal: number;
}

/**
 * Default limits: 4 tokens per customer per day (a device joins a few rounds a day; the daily
 * ε cap allows a handful), 2 per anonymous client key, 1,000 anonymous tokens a day.
 */
export const DEFAULT_ISSUANCE_LIMITS: Readonly<IssuanceLimits> = Object.freeze({
  periodMs: 24 * 3600 * 1000,
  perCustomer: 4,
  perClient: 2,
  anonymousTotal: 1000,
});

/** Too many tokens for this requester this period (429, `token_quota_exhausted`). */
export class TokenQuotaError extends FedprofileError {
  constructor(message: string) {
    super("token_quota_exhausted", message, 429);
  }
}

/** The RFC 9578 §4 issuer directory a device reads the key from. */
export interface IssuerDirectory {
  "issuer-request-uri": string;
  "token-keys": { "token-type": number; "token-key": string }[];
}

export interface TokenIssuer {
  readonly name: string;
  /** RSASSA-PSS SPKI of the public key (what the coordinator and devices verify with). */
  readonly publicKey: Uint8Array;
  /** token_key_id (RFC 9578 §6.5). */
  readonly keyId: Uint8Array;
  /** Signs one blinded token request for `who`, within the limits; returns the token response. */
  issue(who: TokenRequester, tokenRequest: Uint8Array): Promise<Uint8Array>;
  /** The directory document, with the request URI the storefront serves. */
  directory(requestUri: string): IssuerDirectory;
  /** What `PUT /v1/admission/issuer` takes. */
  registration(): { v: 1; issuerName: string; publicKey: string };
}

/**
 * RFC 9474 §4.3 BlindSign over a blinded message of the key's modulus length: RSASP1, then the
 * RSAVP1 check that the signature opens to the message. Throws a `RangeError` on a message not
 * below the modulus (the requester's fault), anything else on a signing failure (the issuer's).
 */
export type BlindSigner = (blindedMessage: Uint8Array) => Promise<Uint8Array>;

export interface TokenIssuerOptions {
  /** The issuer name devices put in the challenge (a host name). */
  name: string;
  keys: CryptoKeyPair;
  /** The RSA private operation over `keys.privateKey` (default: blindrsa-ts, in JavaScript). */
  blindSign?: BlindSigner;
  limits?: Partial<IssuanceLimits>;
  counter?: IssuanceCounter;
  clock?: Clock;
}

/** A fresh RSA-PSS 2048 key pair for an issuer (RFC 9578 §6: 2048-bit modulus, e = 65537). */
export function generateIssuerKeys(): Promise<CryptoKeyPair> {
  return publicVerif.Issuer.generateKey(ADMISSION_BLIND_RSA_MODE, {
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
  });
}

/** In-process {@link IssuanceCounter} (one backend process). */
export function memoryIssuanceCounter(): IssuanceCounter {
  const counts = new Map<string, number>();
  let current = -1;
  return {
    async take(key, period, limit) {
      if (period !== current) {
        counts.clear();
        current = period;
      }
      const used = counts.get(key) ?? 0;
      if (used >= limit) return false;
      counts.set(key, used + 1);
      return true;
    },
  };
}

/** Builds an issuer over `keys`. */
export async function createTokenIssuer(options: TokenIssuerOptions): Promise<TokenIssuer> {
  const limits: IssuanceLimits = { ...DEFAULT_ISSUANCE_LIMITS, ...options.limits };
  const counter = options.counter ?? memoryIssuanceCounter();
  const clock = options.clock ?? Date.now;
  const issuer = new publicVerif.Issuer(
    ADMISSION_BLIND_RSA_MODE,
    options.name,
    options.keys.privateKey,
    options.keys.publicKey,
  );
  const publicKey = await publicVerif.getPublicKeyBytes(options.keys.publicKey);
  const keyId = tokenKeyId(publicKey);

  return {
    name: options.name,
    publicKey,
    keyId,
    async issue(who, tokenRequest) {
      let request: publicVerif.TokenRequest;
      try {
        request = publicVerif.TokenRequest.deserialize(ADMISSION_TOKEN_TYPE, tokenRequest);
      } catch (cause) {
        throw new InvalidRequestError("tokenRequest: not a type-2 token request", { cause });
      }
      // RFC 9578 §6.3: the truncated key id must name this issuer's key.
      if (request.truncatedTokenKeyId !== keyId[keyId.length - 1]) {
        throw new InvalidRequestError("tokenRequest: for another issuer key");
      }
      const period = Math.floor(clock() / limits.periodMs);
      if ("customerId" in who) {
        if (!(await counter.take(`customer:${who.customerId}`, period, limits.perCustomer))) {
          throw new TokenQuotaError(`customer has used its ${limits.perCustomer} tokens this period`);
        }
      } else {
        if (!(await counter.take(`anonymous:${who.anonymous}`, period, limits.perClient))) {
          throw new TokenQuotaError(
            `this client has used its ${limits.perClient} anonymous tokens this period`,
          );
        }
        if (!(await counter.take("anonymous:*", period, limits.anonymousTotal))) {
          throw new TokenQuotaError(`the ${limits.anonymousTotal} anonymous tokens of this period are gone`);
        }
      }
      if (options.blindSign === undefined) return (await issuer.issue(request)).serialize();
      let signature: Uint8Array;
      try {
        signature = await options.blindSign(request.blindedMsg);
      } catch (cause) {
        if (!(cause instanceof RangeError)) throw cause;
        throw new InvalidRequestError("tokenRequest: the blinded message is not below the key's modulus", {
          cause,
        });
      }
      return new publicVerif.TokenResponse(signature).serialize();
    },
    directory: (requestUri) => ({
      "issuer-request-uri": requestUri,
      "token-keys": [{ "token-type": ADMISSION_TOKEN_TYPE.value, "token-key": bytesToBase64url(publicKey) }],
    }),
    registration: () => ({ v: 1, issuerName: options.name, publicKey: bytesToBase64(publicKey) }),
  };
}

/** Where {@link createIssuerHandler} serves (RFC 9578 §4 names the directory path). */
export const ISSUER_DIRECTORY_PATH = "/.well-known/private-token-issuer-directory";
export const ISSUER_REQUEST_PATH = "/token-request";

/** Largest token request accepted: 2 + 1 + 256 bytes for type 2 (RFC 9578 §6.1), with room. */
const MAX_TOKEN_REQUEST_BYTES = 1024;

/**
 * The issuer's HTTP face as a fetch handler (for a node backend, a Worker or a test): the
 * directory at {@link ISSUER_DIRECTORY_PATH} and token requests at {@link ISSUER_REQUEST_PATH}.
 * `requester` says who is asking (the storefront's session, else an anonymous client key), or
 * null to refuse. Answers null for any other path, so it composes with the storefront's routes.
 */
export function createIssuerHandler(
  issuer: TokenIssuer,
  requester: (request: Request) => TokenRequester | null,
): (request: Request) => Promise<Response | null> {
  const text = (status: number, body: string) =>
    new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
  return async (request) => {
    const path = new URL(request.url).pathname;
    if (path === ISSUER_DIRECTORY_PATH && request.method === "GET") {
      return new Response(JSON.stringify(issuer.directory(ISSUER_REQUEST_PATH)), {
        headers: {
          "content-type": "application/private-token-issuer-directory",
          "cache-control": "max-age=300",
        },
      });
    }
    if (path !== ISSUER_REQUEST_PATH) return null;
    if (request.method !== "POST") return text(405, "POST a token request");
    if (request.headers.get("content-type") !== "application/private-token-request") {
      return text(415, "content-type: application/private-token-request expected (RFC 9578 §5.1)");
    }
    const who = requester(request);
    if (!who) return text(403, "no token for this requester");
    const body = new Uint8Array(await request.arrayBuffer());
    if (body.length > MAX_TOKEN_REQUEST_BYTES) return text(413, "token request too large");
    try {
      const response = await issuer.issue(who, body);
      return new Response(new Uint8Array(response), {
        headers: { "content-type": "application/private-token-response" },
      });
    } catch (error) {
      if (error instanceof FedprofileError) return text(error.status, `${error.code}: ${error.message}`);
      throw error;
    }
  };
}
