/**
 * The operator's published ledger keys (SPEC.md §6): a JSON document served from the shop's own
 * origin at `/.well-known/fedprofile-ledger-keys.json`, not from the coordinator's API, so a
 * coordinator that rewrites and re-signs its ledger cannot also replace the key auditors pin.
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import * as z from "zod";
import { keyIdOf } from "./chain.ts";
import type { TrustedKey } from "./verify.ts";

/** The well-known path the operator serves the document at. */
export const LEDGER_KEYS_PATH = "/.well-known/fedprofile-ledger-keys.json";

/** One published key. */
export const PublishedLedgerKey = z
  .object({
    algorithm: z.literal("Ed25519"),
    /** 32 bytes, lower-case hex. */
    publicKey: z.string().regex(/^[0-9a-f]{64}$/),
    /** First 16 hex digits of SHA-256 of the key bytes (what entries carry). */
    keyId: z.string().regex(/^[0-9a-f]{16}$/),
    /** `SHA256:` and all 64 hex digits of SHA-256 of the key bytes, for reading aloud or printing. */
    fingerprint: z.string().regex(/^SHA256:[0-9a-f]{64}$/),
    /** active: signs now; retired: signed earlier chains (rotated away); revoked: see revokedAt. */
    status: z.enum(["active", "retired", "revoked"]),
    /** A revoked key's entries from this time on fail verification. */
    revokedAt: z.iso.datetime().optional(),
  })
  .strict()
  .refine((k) => (k.status === "revoked") === (k.revokedAt !== undefined), {
    message: "revokedAt is required for, and only for, a revoked key",
    path: ["revokedAt"],
  });
export type PublishedLedgerKey = z.infer<typeof PublishedLedgerKey>;

/** The document. */
export const LedgerKeysDocument = z
  .object({
    v: z.literal(1),
    type: z.literal("fedprofile-ledger-keys"),
    keys: z.array(PublishedLedgerKey).min(1),
  })
  .strict();
export type LedgerKeysDocument = z.infer<typeof LedgerKeysDocument>;

/** The fingerprint of a key: `SHA256:` and the full hex digest of its 32 bytes. */
export function keyFingerprint(publicKey: Uint8Array): string {
  return `SHA256:${bytesToHex(sha256(publicKey))}`;
}

/** Describes a key for the document. */
export function publishedKey(
  publicKey: Uint8Array,
  status: PublishedLedgerKey["status"] = "active",
  revokedAt?: string,
): PublishedLedgerKey {
  return {
    algorithm: "Ed25519",
    publicKey: bytesToHex(publicKey),
    keyId: keyIdOf(publicKey),
    fingerprint: keyFingerprint(publicKey),
    status,
    ...(revokedAt === undefined ? {} : { revokedAt }),
  };
}

/**
 * The keys to pin from a document, after checking that each keyId and fingerprint belongs to its
 * key (a document that disagrees with itself pins nothing).
 */
export function trustFromKeysDocument(raw: unknown): TrustedKey[] {
  const doc = LedgerKeysDocument.parse(raw);
  return doc.keys.map((k, i) => {
    const bytes = hexToBytes(k.publicKey);
    if (keyIdOf(bytes) !== k.keyId || keyFingerprint(bytes) !== k.fingerprint)
      throw new RangeError(`keys[${i}]: keyId or fingerprint is not that of its publicKey`);
    return { publicKey: bytes, ...(k.revokedAt === undefined ? {} : { revokedAt: k.revokedAt }) };
  });
}
