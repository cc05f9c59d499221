import {
  bytesToBase64url,
  bytesToHex,
  type RandomBytes,
  systemRandomBytes,
  utf8,
} from "@fedprofile/protocol/bytes";
import { sha256 } from "@noble/hashes/sha2.js";

/** A fresh round id: `r_` + 128 random bits. */
export function newRoundId(randomBytes: RandomBytes = systemRandomBytes): string {
  return `r_${bytesToBase64url(randomBytes(16))}`;
}

/** A fresh round-scoped participant id: `p_` + 128 random bits. */
export function newParticipantId(randomBytes: RandomBytes = systemRandomBytes): string {
  return `p_${bytesToBase64url(randomBytes(16))}`;
}

/** A fresh bearer token: 192 random bits as 32 base64url characters. */
export function newToken(randomBytes: RandomBytes = systemRandomBytes): string {
  return bytesToBase64url(randomBytes(24));
}

/** Hex SHA-256 of a UTF-8 string. Secrets are stored only as this digest. */
export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8(text)));
}
