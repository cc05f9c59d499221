/**
 * RFC 8032's strictness checks on Ed25519 inputs, applied before *both* verification paths
 * (native WebCrypto and tweetnacl) so the two give the same verdict on every input.
 *
 * tweetnacl accepts a signature whose S is not reduced (S + L verifies like S), which makes
 * signatures malleable; RFC 8032 §5.1.7 step 1 rejects S >= L, and §5.1.3 rejects a point
 * encoding whose y is not reduced mod p, or which sets the sign bit of x = 0.
 */

/** The group order L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 §5.1). */
export const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;
/** The field prime p = 2^255 - 19. */
const P = 2n ** 255n - 19n;

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/** True when `s` (32 bytes, little-endian) is below L. */
export function isCanonicalScalar(s: Uint8Array): boolean {
  return s.length === 32 && littleEndian(s) < ED25519_L;
}

/** True when a 32-byte point encoding is canonical: y < p, and no sign bit on x = 0 (y = ±1). */
export function isCanonicalPoint(encoded: Uint8Array): boolean {
  if (encoded.length !== 32) return false;
  const sign = (encoded[31]! & 0x80) !== 0;
  const y = littleEndian(encoded) & ((1n << 255n) - 1n);
  if (y >= P) return false;
  return !(sign && (y === 1n || y === P - 1n));
}

/** The checks every verification path runs first: lengths, S < L, canonical R and A. */
export function passesStrictChecks(signature: Uint8Array, publicKey: Uint8Array): boolean {
  return (
    signature.length === 64 &&
    publicKey.length === 32 &&
    isCanonicalScalar(signature.subarray(32)) &&
    isCanonicalPoint(signature.subarray(0, 32)) &&
    isCanonicalPoint(publicKey)
  );
}
