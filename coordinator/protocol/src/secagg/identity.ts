/**
 * Signed key advertisements of the `maliciousServer` preset (issue 13, finding 4; Bonawitz et al.
 * CCS 2017 §6.3, "active adversary": each user signs its round-0 keys and peers verify).
 *
 * A signature alone proves nothing when the coordinator relays the verification keys too: it
 * could mint its own identity key and sign keys it substituted. So the identity key is bound to
 * something the coordinator cannot mint, the device's admission token (`../admission.ts`):
 *
 * - per round the device draws an Ed25519 key pair (RFC 8032) and a 32-byte salt, and asks the
 *   storefront's issuer for a token whose client nonce is SHA-256(label ‖ idPk ‖ salt). The
 *   nonce still looks uniformly random to the issuer and the coordinator, and the key is fresh
 *   per round, so tokens of two rounds stay unlinkable (RFC 9576 §3.3);
 * - the advertisement carries idPk, the salt, the token and an Ed25519 signature over
 *   (round id, shard, slot, cPk, sPk);
 * - a neighbour accepts the keys only if the token verifies under the issuer key the device got
 *   from the issuer directory itself, the nonce opens to (idPk, salt), the token is for this round,
 *   no two neighbours share a token, and the signature verifies.
 *
 * The consistency tags (round 3) are MACs keyed by X25519 of the two signed c-keys, so they are
 * bound to the same identity keys: the coordinator cannot compute them without a c secret key.
 *
 * The token RSA check lives with the device (`sdk/src/secagg/identity.ts`), so this module stays
 * free of the blind-RSA library; it holds what the coordinator checks as well.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import nacl from "tweetnacl";
import {
  bytesToBase64url,
  concatBytes,
  constantTimeEqual,
  hexToBytes,
  type RandomBytes,
  u32le,
  utf8,
} from "../bytes";
import { LABELS, SIZES } from "./constants";
import { nativeOrReference } from "./native-or-reference";

/** A device's identity key pair for one round, and the salt of its token nonce. */
export interface RoundIdentity {
  /** Ed25519 secret seed (RFC 8032 §5.1.5). */
  seed: Uint8Array;
  publicKey: Uint8Array;
  salt: Uint8Array;
}

/** The identity part of an advertisement, as bytes: what a neighbour checks. */
export interface AdvertIdentityBytes {
  idPk: Uint8Array;
  salt: Uint8Array;
  /** The serialised type-2 Privacy Pass token (RFC 9578 §6: type ‖ nonce ‖ digest ‖ key id ‖ sig). */
  token: Uint8Array;
  sig: Uint8Array;
}

/** Bytes of a type-2 token: type (2), nonce (32), challenge digest (32), key id (32), RSA-2048 (256). */
const TOKEN_BYTES = 354;

/** A fresh identity from injected randomness. */
export function generateRoundIdentity(randomBytes: RandomBytes): RoundIdentity {
  const seed = randomBytes(SIZES.identityKey);
  const { publicKey } = nacl.sign.keyPair.fromSeed(seed);
  return { seed, publicKey, salt: randomBytes(SIZES.identitySalt) };
}

/** "fedprofile/secagg/v1" ‖ 0 ‖ label ‖ 0: the domain of a hashed or signed statement. */
function domain(label: string): Uint8Array {
  return concatBytes(utf8(LABELS.salt), new Uint8Array([0]), utf8(label), new Uint8Array([0]));
}

/** The token nonce that binds `publicKey`: SHA-256(domain ‖ idPk ‖ salt). */
export function identityNonce(publicKey: Uint8Array, salt: Uint8Array): Uint8Array {
  return sha256(concatBytes(domain(LABELS.identityNonce), publicKey, salt));
}

/** The client nonce of a serialised type-2 token (RFC 9578 §6: it follows the 2-byte type). */
export function tokenNonce(token: Uint8Array): Uint8Array {
  return token.subarray(2, 2 + 32);
}

/**
 * What a device signs: domain ‖ round id ‖ 0 ‖ shard ‖ slot (32-bit LE) ‖ cPk ‖ sPk. Round ids
 * never contain NUL and the rest has fixed lengths, so the encoding is injective.
 */
export function advertStatement(
  roundId: string,
  shard: number,
  slot: number,
  cPk: Uint8Array,
  sPk: Uint8Array,
): Uint8Array {
  return concatBytes(
    domain(LABELS.advert),
    utf8(roundId),
    new Uint8Array([0]),
    u32le(shard),
    u32le(slot),
    cPk,
    sPk,
  );
}

/** Ed25519 signature of `message` by the identity with secret `seed` (tweetnacl, RFC 8032). */
export function signStatement(seed: Uint8Array, message: Uint8Array): Uint8Array {
  const { secretKey } = nacl.sign.keyPair.fromSeed(seed);
  const sig = nacl.sign.detached(message, secretKey);
  secretKey.fill(0);
  return sig;
}

/**
 * The checks of an advertisement's identity that need no issuer key: lengths, and that the token
 * nonce opens to (idPk, salt). Returns why it fails, or null.
 */
export function identityBindingFault(identity: AdvertIdentityBytes): string | null {
  if (identity.idPk.length !== SIZES.identityKey) return `identity key is not ${SIZES.identityKey} bytes`;
  if (identity.salt.length !== SIZES.identitySalt) return `salt is not ${SIZES.identitySalt} bytes`;
  if (identity.sig.length !== SIZES.signature) return `signature is not ${SIZES.signature} bytes`;
  if (identity.token.length !== TOKEN_BYTES) return `token is not ${TOKEN_BYTES} bytes`;
  if (!constantTimeEqual(tokenNonce(identity.token), identityNonce(identity.idPk, identity.salt))) {
    return "the admission token's nonce is not bound to this identity key";
  }
  return null;
}

/** One signature to check. */
export interface SignatureCheck {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
}

/** Verifies Ed25519 signatures; the native backend is ~50× faster than tweetnacl's. */
export interface SignatureVerifier {
  readonly name: string;
  /** One boolean per check, in order; false for a bad signature or key. */
  verifyMany(checks: readonly SignatureCheck[]): Promise<boolean[]>;
}

/** The reference backend: tweetnacl (~20 ms a signature on a loaded 2-core machine). */
export const tweetnaclSignatureVerifier: SignatureVerifier = {
  name: "tweetnacl",
  async verifyMany(checks) {
    return checks.map((c) => nacl.sign.detached.verify(c.message, c.signature, c.publicKey));
  },
};

/** WebCrypto's native Ed25519 (Secure Curves in WebCrypto: node ≥ 20, workerd, Chromium ≥ 137). */
export const webCryptoSignatureVerifier: SignatureVerifier = {
  name: "webcrypto",
  async verifyMany(checks) {
    const subtle = crypto.subtle;
    return Promise.all(
      checks.map(async (c) => {
        try {
          const jwk = { kty: "OKP", crv: "Ed25519", x: bytesToBase64url(c.publicKey) };
          const key = await subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["verify"]);
          return await subtle.verify(
            { name: "Ed25519" },
            key,
            new Uint8Array(c.signature),
            new Uint8Array(c.message),
          );
        } catch {
          return false; // not a point on the curve
        }
      }),
    );
  },
};

/** RFC 8032 §7.1 TEST 2: public key, one-byte message, signature. */
export const RFC8032_TEST2 = {
  publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
  message: "72",
  signature:
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
} as const;

/**
 * The fastest verifier that accepts RFC 8032 §7.1 TEST 2 and rejects it with one bit flipped:
 * WebCrypto's Ed25519 if present and correct, else tweetnacl. Probed once per process.
 */
export const defaultSignatureVerifier: () => Promise<SignatureVerifier> = nativeOrReference(
  webCryptoSignatureVerifier,
  tweetnaclSignatureVerifier,
  async (verifier) => {
    const good = {
      publicKey: hexToBytes(RFC8032_TEST2.publicKey),
      message: hexToBytes(RFC8032_TEST2.message),
      signature: hexToBytes(RFC8032_TEST2.signature),
    };
    const [ok, forged] = await verifier.verifyMany([good, { ...good, message: Uint8Array.of(0x73) }]);
    return ok === true && forged === false;
  },
);
