import { bytesToBase64url, type RandomBytes, systemRandomBytes } from "@fedprofile/protocol/bytes";
import { TenantId } from "@fedprofile/protocol/wire";
import { sha256Hex } from "./ids";

/**
 * Three kinds of tenant API key:
 * - `publishable` (`fp_pub_…`): embedded in storefront pages; device routes only.
 * - `secret` (`fp_sec_…`): storefront backends and operators; never shipped to browsers.
 * - `auditor` (`fp_aud_…`): read-only access to the privacy ledger and model history.
 */
export type ApiKeyKind = "publishable" | "secret" | "auditor";

const PREFIX: Record<ApiKeyKind, string> = { publishable: "pub", secret: "sec", auditor: "aud" };
const KIND_OF_PREFIX: Record<string, ApiKeyKind> = { pub: "publishable", sec: "secret", aud: "auditor" };

/** `fp_<kind>_<tenant>.<32 base64url chars>`: the tenant is readable so lookups need no scan. */
const KEY_PATTERN = /^fp_(pub|sec|aud)_([a-z0-9][a-z0-9-]{2,39})\.([A-Za-z0-9_-]{32})$/;

/** A parsed API key. The full key is only ever stored as its SHA-256 digest. */
export interface ParsedApiKey {
  kind: ApiKeyKind;
  tenantId: string;
  keyHash: string;
}

/** Parses a key's shape; returns `null` when it is not a fedprofile key. */
export function parseApiKey(key: string): ParsedApiKey | null {
  const match = KEY_PATTERN.exec(key);
  if (!match) return null;
  const [, prefix, tenantId] = match;
  const kind = KIND_OF_PREFIX[prefix as string];
  if (!kind || !tenantId) return null;
  return { kind, tenantId, keyHash: sha256Hex(key) };
}

/** Generates a new key of `kind` for `tenantId`, with the digest to store. */
export function generateApiKey(
  tenantId: string,
  kind: ApiKeyKind,
  randomBytes: RandomBytes = systemRandomBytes,
): { key: string; keyHash: string } {
  TenantId.parse(tenantId);
  const key = `fp_${PREFIX[kind]}_${tenantId}.${bytesToBase64url(randomBytes(24))}`;
  return { key, keyHash: sha256Hex(key) };
}

/** One key of each kind for a new tenant. */
export function generateTenantKeys(
  tenantId: string,
  randomBytes: RandomBytes = systemRandomBytes,
): Record<ApiKeyKind, { key: string; keyHash: string }> {
  return {
    publishable: generateApiKey(tenantId, "publishable", randomBytes),
    secret: generateApiKey(tenantId, "secret", randomBytes),
    auditor: generateApiKey(tenantId, "auditor", randomBytes),
  };
}
