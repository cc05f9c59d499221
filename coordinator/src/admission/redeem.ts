/**
 * Token redemption at join: one Privacy Pass token buys one place in one round (issue 13,
 * finding 1). A pure function over a small storage port, so that whichever object handles a join
 * (the round's root today, a shard object when joins move off the root) keeps the spent set in
 * its own storage, and a double-spend always meets the same set.
 */
import {
  type AdmissionKey,
  importIssuerPublicKey,
  tokenKeyId,
  verifyAdmissionToken,
} from "@fedprofile/protocol/admission";
import { base64ToBytes, bytesToBase64, constantTimeEqual } from "@fedprofile/protocol/bytes";
import type { AdmissionIssuerStatus, RoundAdmissionInfo } from "@fedprofile/protocol/wire";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ConflictError, FedprofileError, InvalidRequestError } from "../errors";

/**
 * The nonces of redeemed tokens, per round. `markSpent` is called only inside the serialised
 * join that checked `has`, so check-then-mark is atomic per object.
 */
export interface SpentTokens {
  has(roundId: string, nonce: string): Promise<boolean>;
  markSpent(roundId: string, nonce: string): Promise<void>;
}

/** The tenant's registered issuer (read when a round opens, never on a join). */
export interface AdmissionIssuerStore {
  get(tenantId: string): Promise<AdmissionIssuerStatus | null>;
  put(tenantId: string, issuer: AdmissionIssuerStatus): Promise<void>;
}

/** What a round stores to check tokens: the issuer as it was when the round opened. */
export interface RoundAdmission {
  issuerName: string;
  /** Standard base64 of the issuer's RSASSA-PSS SPKI. */
  publicKey: string;
  /** token_key_id, standard base64. */
  keyId: string;
}

/** A token was needed and not sent (401, `admission_token_required`). */
export class AdmissionRequiredError extends FedprofileError {
  constructor(roundId: string) {
    super(
      "admission_token_required",
      `token: round ${roundId} admits devices by Privacy Pass token; none was sent`,
      401,
    );
  }
}

/**
 * Checks an issuer registration (the key imports as RSA-PSS 2048) and returns what is stored.
 * Throws a 400 naming `publicKey` when it is not such a key.
 */
export async function registeredIssuer(
  issuerName: string,
  publicKeyBase64: string,
  updatedAt: number,
): Promise<AdmissionIssuerStatus> {
  const spki = base64ToBytes(publicKeyBase64);
  try {
    const key = await importIssuerPublicKey(spki);
    const algorithm: object = key.algorithm;
    const bits = "modulusLength" in algorithm ? algorithm.modulusLength : undefined;
    if (bits !== 2048) throw new RangeError(`modulus of ${String(bits)} bits`);
  } catch (cause) {
    throw new InvalidRequestError(
      `publicKey: not an RSASSA-PSS 2048-bit SPKI (token type 2, RFC 9578 §6)${cause instanceof Error ? `: ${cause.message}` : ""}`,
      { cause },
    );
  }
  return { v: 1, issuerName, publicKey: publicKeyBase64, keyId: bytesToBase64(tokenKeyId(spki)), updatedAt };
}

/** The round's copy of the tenant's issuer, and what devices see of it. */
export function roundAdmission(issuer: AdmissionIssuerStatus): RoundAdmission {
  return { issuerName: issuer.issuerName, publicKey: issuer.publicKey, keyId: issuer.keyId };
}

/** What check-in shows devices: which issuer, and which of its keys. */
export function roundAdmissionInfo(admission: RoundAdmission): RoundAdmissionInfo {
  return { kind: "privacypass", issuerName: admission.issuerName, keyId: admission.keyId };
}

/** Imported issuer keys by (name, key id, SPKI): an RSA key import per join would dominate redemption. */
const imported = new Map<string, Promise<AdmissionKey>>();
const MAX_IMPORTED = 64;

function admissionKey(admission: RoundAdmission): Promise<AdmissionKey> {
  const id = `${admission.issuerName}\n${admission.keyId}\n${admission.publicKey}`;
  let key = imported.get(id);
  if (!key) {
    if (imported.size >= MAX_IMPORTED) imported.clear();
    key = importAdmissionKey(admission);
    imported.set(id, key);
    // A failed import is not cached.
    key.catch(() => imported.delete(id));
  }
  return key;
}

async function importAdmissionKey(admission: RoundAdmission): Promise<AdmissionKey> {
  const spki = base64ToBytes(admission.publicKey);
  const keyId = base64ToBytes(admission.keyId);
  // The stored key id was derived from the stored key; a mismatch is a corrupted round state.
  if (!constantTimeEqual(tokenKeyId(spki), keyId))
    throw new Error("round admission key id does not match its key");
  return { issuerName: admission.issuerName, publicKey: await importIssuerPublicKey(spki), keyId };
}

/**
 * Redeems `token` for `roundId` and runs `admit` (the join itself); the token is marked spent only
 * once `admit` succeeded, so a full round does not burn it. Without `admission` the round admits
 * anyone (development floors only) and `token` is ignored.
 *
 * Errors: 401 `admission_token_required`; 400 `admission_token_malformed`; 403
 * `admission_token_wrong_issuer` / `admission_token_wrong_round` / `admission_token_invalid`;
 * 409 `admission_token_spent` (a double-spend).
 */
export async function redeemJoinToken<T>(
  roundId: string,
  admission: RoundAdmission | undefined,
  token: string | undefined,
  spent: SpentTokens | undefined,
  admit: () => Promise<T>,
): Promise<T> {
  if (!admission) return admit();
  if (token === undefined) throw new AdmissionRequiredError(roundId);
  if (!spent) throw new Error("a round that admits by token needs a spent-token store");
  const { nonce } = await verifyAdmissionToken(base64ToBytes(token), roundId, await admissionKey(admission));
  const key = bytesToHex(nonce);
  if (await spent.has(roundId, key)) {
    throw new ConflictError("admission_token_spent", `token: already redeemed in round ${roundId}`);
  }
  const admitted = await admit();
  await spent.markSpent(roundId, key);
  return admitted;
}

/** In-memory {@link SpentTokens} (tests, the memory coordinator). */
export class MemorySpentTokens implements SpentTokens {
  readonly spent = new Set<string>();
  async has(roundId: string, nonce: string): Promise<boolean> {
    return this.spent.has(`${roundId}/${nonce}`);
  }
  async markSpent(roundId: string, nonce: string): Promise<void> {
    this.spent.add(`${roundId}/${nonce}`);
  }
}

/** In-memory {@link AdmissionIssuerStore}. */
export class MemoryAdmissionIssuerStore implements AdmissionIssuerStore {
  private readonly issuers = new Map<string, AdmissionIssuerStatus>();
  async get(tenantId: string): Promise<AdmissionIssuerStatus | null> {
    return this.issuers.get(tenantId) ?? null;
  }
  async put(tenantId: string, issuer: AdmissionIssuerStatus): Promise<void> {
    this.issuers.set(tenantId, issuer);
  }
}
