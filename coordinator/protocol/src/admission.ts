/**
 * Admission tokens: one device, one contribution, without linking rounds (issue 13, finding 1).
 *
 * A device joins a round with a Privacy Pass token (RFC 9576 architecture, RFC 9577 HTTP scheme,
 * RFC 9578 issuance), token type 2: publicly verifiable blind RSA-PSS 2048 (RFC 9474). The
 * storefront's issuer signs a *blinded* token input, so it cannot link the token it signed to the
 * token the coordinator later redeems (RFC 9576 §3.3, issuer–origin unlinkability); the
 * coordinator verifies with the issuer's public key alone.
 *
 * The token's challenge (RFC 9577 §2.1) carries a redemption context derived from the round id,
 * so a token is good for one round only: a token of round A does not verify at round B, and
 * tokens of two rounds share nothing but the issuer name (RFC 9577 §2.1.1, "per-origin" contexts).
 * The coordinator keeps each round's spent nonces, so a token is redeemed at most once.
 *
 * This module is the math both sides share, over `@cloudflare/privacypass-ts` (the library runs
 * on WebCrypto: browsers, node ≥ 20 and workerd).
 */
import {
  AuthenticatorInput,
  publicVerif,
  TOKEN_TYPES,
  Token,
  TokenChallenge,
  util,
} from "@cloudflare/privacypass-ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { constantTimeEqual } from "./bytes";
import { FedprofileError } from "./errors";

/** Token type 2, blind RSA-PSS 2048 with SHA-384 (RFC 9578 §6). */
export const ADMISSION_TOKEN_TYPE = TOKEN_TYPES.BLIND_RSA;
/** The RFC 9474 variant RFC 9578 §6 names: RSABSSA-SHA384-PSS-Deterministic. */
export const ADMISSION_BLIND_RSA_MODE = publicVerif.BlindRSAMode.PSS;
/** Bytes of a serialised type-2 token: type, nonce, challenge digest, key id, authenticator. */
export const ADMISSION_TOKEN_BYTES = 2 + 32 + 32 + 32 + 256;

/** Media types of RFC 9578 §5.1 and §5.2. */
export const TOKEN_REQUEST_MEDIA_TYPE = "application/private-token-request";
export const TOKEN_RESPONSE_MEDIA_TYPE = "application/private-token-response";

/** Domain separation of the redemption context; bump the suffix with any change of meaning. */
const CONTEXT_LABEL = "fedprofile/admission/v1 round ";

/** The 32-byte redemption context of `roundId`: SHA-256 of a label and the round id. */
export function roundRedemptionContext(roundId: string): Uint8Array {
  return sha256(utf8ToBytes(`${CONTEXT_LABEL}${roundId}`));
}

/** The challenge a device's token for `roundId` answers (RFC 9577 §2.1). */
export function roundChallenge(issuerName: string, roundId: string): TokenChallenge {
  return new TokenChallenge(ADMISSION_TOKEN_TYPE.value, issuerName, roundRedemptionContext(roundId));
}

/** token_key_id: SHA-256 of the issuer's public key in its RSASSA-PSS SPKI form (RFC 9578 §6.5). */
export function tokenKeyId(publicKeySpki: Uint8Array): Uint8Array {
  return sha256(publicKeySpki);
}

/** Imports an issuer's public key (RSASSA-PSS SPKI, as published) for verification. */
export function importIssuerPublicKey(publicKeySpki: Uint8Array): Promise<CryptoKey> {
  const spki = new Uint8Array(util.convertRSASSAPSSToEnc(publicKeySpki));
  return crypto.subtle.importKey("spki", spki, ADMISSION_TOKEN_TYPE.rsaParams, true, ["verify"]);
}

/** A token request in flight: its bytes for the issuer, and the step that unblinds the answer. */
export interface PendingToken {
  request: Uint8Array;
  /** Unblinds the issuer's response into the token (throws if the issuer's signature is bad). */
  finalize(response: Uint8Array): Promise<Uint8Array>;
}

/**
 * Device side (RFC 9578 §6.1): a blinded token request for `roundId`. `nonce` is the token's
 * 32-byte client nonce; the `maliciousServer` preset derives it from the round's identity key
 * (`./secagg/identity.ts`), which is why this builds the request from the library's parts instead
 * of `publicVerif.Client`, which always draws its own nonce. Default: 32 fresh random bytes.
 */
export async function createTokenRequest(
  issuerName: string,
  roundId: string,
  issuerPublicKeySpki: Uint8Array,
  nonce: Uint8Array = crypto.getRandomValues(new Uint8Array(32)),
): Promise<PendingToken> {
  if (nonce.length !== AuthenticatorInput.NONCE_LENGTH) throw new RangeError("nonce: expected 32 bytes");
  const type = ADMISSION_TOKEN_TYPE;
  const keyId = tokenKeyId(issuerPublicKeySpki);
  const digest = sha256(roundChallenge(issuerName, roundId).serialize());
  const authInput = new AuthenticatorInput(type, type.value, nonce, digest, keyId);
  const tokenInput = authInput.serialize();
  const publicKey = await importIssuerPublicKey(issuerPublicKeySpki);
  const suite = type.suite[ADMISSION_BLIND_RSA_MODE]();
  const { blindedMsg, inv } = await suite.blind(publicKey, tokenInput);
  // truncated_token_key_id: the last byte of token_key_id (RFC 9578 §6.1).
  const request = new publicVerif.TokenRequest(keyId[keyId.length - 1] as number, blindedMsg, type);
  return {
    request: request.serialize(),
    async finalize(response) {
      const { blindSig } = publicVerif.TokenResponse.deserialize(response);
      const authenticator = await suite.finalize(publicKey, tokenInput, blindSig, inv);
      return new Token(type, authInput, authenticator).serialize();
    },
  };
}

/** What a round checks a token against. */
export interface AdmissionKey {
  issuerName: string;
  /** The issuer's public key (from {@link importIssuerPublicKey}). */
  publicKey: CryptoKey;
  /** Its token_key_id. */
  keyId: Uint8Array;
}

/** Codes of a refused token: malformed is 400, the rest 403 (409 for a spent one, in the coordinator). */
export type AdmissionTokenCode =
  | "admission_token_malformed"
  | "admission_token_wrong_issuer"
  | "admission_token_wrong_round"
  | "admission_token_invalid";

/** Why a token was refused: `code` names the check that failed. */
export class AdmissionTokenError extends FedprofileError {
  constructor(code: AdmissionTokenCode, message: string, options?: { cause?: unknown }) {
    super(code, message, code === "admission_token_malformed" ? 400 : 403, options);
  }
}

/**
 * Coordinator side (RFC 9578 §6.4): checks `token` answers this round's challenge under this
 * issuer's key, and returns its nonce (the double-spend key). Costs one RSA verification.
 */
export async function verifyAdmissionToken(
  token: Uint8Array,
  roundId: string,
  key: AdmissionKey,
): Promise<{ nonce: Uint8Array }> {
  if (token.length !== ADMISSION_TOKEN_BYTES) {
    throw new AdmissionTokenError(
      "admission_token_malformed",
      `token: expected ${ADMISSION_TOKEN_BYTES} bytes of a type-2 token, got ${token.length}`,
    );
  }
  let parsed: Token;
  try {
    parsed = Token.deserialize(ADMISSION_TOKEN_TYPE, token);
  } catch (cause) {
    throw new AdmissionTokenError("admission_token_malformed", "token: not a Privacy Pass token", { cause });
  }
  const input = parsed.authInput;
  if (input.tokenType !== ADMISSION_TOKEN_TYPE.value) {
    throw new AdmissionTokenError("admission_token_malformed", `token: type ${input.tokenType}, expected 2`);
  }
  if (!constantTimeEqual(input.tokenKeyId, key.keyId)) {
    throw new AdmissionTokenError("admission_token_wrong_issuer", "token: signed by another issuer key");
  }
  const digest = sha256(roundChallenge(key.issuerName, roundId).serialize());
  if (!constantTimeEqual(input.challengeDigest, digest)) {
    throw new AdmissionTokenError("admission_token_wrong_round", `token: not issued for round ${roundId}`);
  }
  const origin = new publicVerif.Origin(ADMISSION_BLIND_RSA_MODE);
  if (!(await origin.verify(parsed, key.publicKey))) {
    throw new AdmissionTokenError("admission_token_invalid", "token: the issuer's signature does not verify");
  }
  return { nonce: input.nonce };
}
