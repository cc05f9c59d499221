import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/** Source of cryptographic randomness; injectable so tests are deterministic. */
export type RandomBytes = (length: number) => Uint8Array;

/** WebCrypto's CSPRNG, available in browsers, workerd and node ≥ 19. */
export const cryptoRandomBytes: RandomBytes = (length) => crypto.getRandomValues(new Uint8Array(length));

/** RFC 4648 §5 base64url without padding. */
export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A fresh round id: `r_` + 128 random bits. */
export function newRoundId(randomBytes: RandomBytes = cryptoRandomBytes): string {
  return `r_${base64url(randomBytes(16))}`;
}

/** A fresh round-scoped participant id: `p_` + 128 random bits. */
export function newParticipantId(randomBytes: RandomBytes = cryptoRandomBytes): string {
  return `p_${base64url(randomBytes(16))}`;
}

/** A fresh bearer token: 192 random bits as 32 base64url characters. */
export function newToken(randomBytes: RandomBytes = cryptoRandomBytes): string {
  return base64url(randomBytes(24));
}

/** Hex SHA-256 of a UTF-8 string. Secrets are stored only as this digest. */
export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** Constant-time comparison of two equal-length strings (digests), so timing leaks nothing. */
export function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
