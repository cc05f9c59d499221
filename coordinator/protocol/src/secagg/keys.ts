/**
 * Key agreement and key derivation for SecAgg (Bonawitz et al. §3.1 "key agreement", §3.3
 * "authenticated encryption"): X25519 (RFC 7748) through tweetnacl, hashed with HKDF-SHA256
 * (RFC 5869) into single-purpose keys bound to (round id, sender, recipient).
 *
 * X25519 costs ~0.85 ms in tweetnacl on this machine and a device runs 2k of them per round, so
 * key agreement can also run on WebCrypto's native X25519 where the platform has it (node ≥ 20,
 * workerd, Chromium ≥ 133). Both backends compute the same RFC 7748 function; the native one is
 * used only after it reproduces the RFC 7748 §6.1 vector, and tweetnacl stays the reference.
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import nacl from "tweetnacl";
import {
  bytesToBase64,
  bytesToBase64url,
  concatBytes,
  hexToBytes,
  type RandomBytes,
  u32le,
  utf8,
} from "../bytes";
import { ERROR_CODES, LABELS, SIZES } from "./constants";
import { ProtocolError } from "./errors";
import { nativeOrReference } from "./native-or-reference";

/** An X25519 key pair. */
export interface KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** A fresh X25519 key pair from injected randomness (RFC 7748 §6.1: clamping happens inside). */
export function generateKeyPair(randomBytes: RandomBytes): KeyPair {
  const secretKey = randomBytes(SIZES.key);
  return { secretKey, publicKey: nacl.scalarMult.base(secretKey) };
}

/** The public key of an X25519 secret key. */
export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return nacl.scalarMult.base(secretKey);
}

/** Computes X25519 shared secrets of one own key pair with many peers. */
export interface KeyAgreement {
  readonly name: string;
  /** Shared secrets X25519(own.secretKey, peer), in order; throws `badKey` on a small-order peer. */
  agreeMany(own: KeyPair, peers: readonly Uint8Array[]): Promise<Uint8Array[]>;
}

function checkShared(shared: Uint8Array): Uint8Array {
  // An all-zero output means the peer key has small order (RFC 7748 §6.1 "check").
  let acc = 0;
  for (const b of shared) acc |= b;
  if (acc === 0) throw new ProtocolError(ERROR_CODES.badKey, "X25519 peer key has small order");
  return shared;
}

/** The reference backend: tweetnacl's `scalarMult`. */
export const tweetnaclKeyAgreement: KeyAgreement = {
  name: "tweetnacl",
  async agreeMany(own, peers) {
    return peers.map((peer) => checkShared(nacl.scalarMult(own.secretKey, peer)));
  },
};

/** WebCrypto's native X25519 (Secure Curves in WebCrypto; RFC 7748 outputs). */
export const webCryptoKeyAgreement: KeyAgreement = {
  name: "webcrypto",
  async agreeMany(own, peers) {
    const subtle = crypto.subtle;
    const jwk = {
      kty: "OKP",
      crv: "X25519",
      d: bytesToBase64url(own.secretKey),
      x: bytesToBase64url(own.publicKey),
    };
    const secret = await subtle.importKey("jwk", jwk, { name: "X25519" }, false, ["deriveBits"]);
    return Promise.all(
      peers.map(async (peer) => {
        const key = await subtle.importKey("raw", new Uint8Array(peer), { name: "X25519" }, false, []);
        // Standard EcdhKeyDeriveParams; a variable rather than a literal because
        // @cloudflare/workers-types spells the member `$public` while workerd reads `public`.
        const algorithm = { name: "X25519", public: key };
        try {
          return checkShared(new Uint8Array(await subtle.deriveBits(algorithm, secret, 256)));
        } catch (cause) {
          // WebCrypto rejects an all-zero result itself; report it like tweetnacl's check does.
          if (cause instanceof ProtocolError) throw cause;
          throw new ProtocolError(ERROR_CODES.badKey, "X25519 peer key has small order", { cause });
        }
      }),
    );
  },
};

/** RFC 7748 §6.1 test vector: Alice's secret key, Bob's public key, and their shared secret. */
export const RFC7748_VECTOR = {
  aliceSecret: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
  alicePublic: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
  bobPublic: "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
  shared: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
} as const;

/**
 * The fastest backend that reproduces RFC 7748 §6.1 on this platform: WebCrypto's X25519 if
 * present and correct, else tweetnacl. Probed once per process.
 */
export const defaultKeyAgreement: () => Promise<KeyAgreement> = nativeOrReference(
  webCryptoKeyAgreement,
  tweetnaclKeyAgreement,
  async (agreement) => {
    const own = {
      secretKey: hexToBytes(RFC7748_VECTOR.aliceSecret),
      publicKey: hexToBytes(RFC7748_VECTOR.alicePublic),
    };
    const [shared] = await agreement.agreeMany(own, [hexToBytes(RFC7748_VECTOR.bobPublic)]);
    return shared !== undefined && bytesToBase64(shared) === bytesToBase64(hexToBytes(RFC7748_VECTOR.shared));
  },
);

/**
 * HKDF `info` for a derived key: label ‖ 0 ‖ round id ‖ 0 ‖ a ‖ b (32-bit LE). Round ids never
 * contain NUL, so the encoding is injective.
 */
function info(label: string, roundId: string, a: number, b: number): Uint8Array {
  return concatBytes(
    utf8(label),
    new Uint8Array([0]),
    utf8(roundId),
    new Uint8Array([0]),
    u32le(a),
    u32le(b),
  );
}

const SALT = utf8(LABELS.salt);

function derive(ikm: Uint8Array, label: string, roundId: string, a: number, b: number): Uint8Array {
  return hkdf(sha256, ikm, SALT, info(label, roundId, a, b), SIZES.seed);
}

/**
 * The pairwise mask seed s_{u,v} = HKDF(X25519(s_u^SK, s_v^PK)) (Bonawitz §4 round 2), the same
 * from both ends because the pair is ordered (min, max).
 */
export function pairwiseMaskSeed(shared: Uint8Array, roundId: string, u: number, v: number): Uint8Array {
  return derive(shared, LABELS.pairwiseMask, roundId, Math.min(u, v), Math.max(u, v));
}

/** The self-mask PRG seed of device u, domain-separated from b_u itself. */
export function selfMaskSeed(b: Uint8Array, roundId: string, u: number): Uint8Array {
  return derive(b, LABELS.selfMask, roundId, u, u);
}

/**
 * Key of the share box from `from` to `to`, from X25519(c_from^SK, c_to^PK). Directional and
 * per round, so each key seals exactly one message and a zero nonce is safe; binding the ids in
 * the KDF authenticates them (Bonawitz §4 puts u ‖ v inside the ciphertext instead).
 */
export function shareBoxKey(shared: Uint8Array, roundId: string, from: number, to: number): Uint8Array {
  return derive(shared, LABELS.shareBox, roundId, from, to);
}

/** Key of the consistency-check MAC from `from` to `to` (see `consistencyTag`). */
export function consistencyKey(shared: Uint8Array, roundId: string, from: number, to: number): Uint8Array {
  return derive(shared, LABELS.consistency, roundId, from, to);
}

/** The all-zero XSalsa20 nonce: safe because every share-box key seals one message only. */
const ZERO_NONCE = new Uint8Array(nacl.secretbox.nonceLength);

/** Seals a share payload with XSalsa20-Poly1305 (`nacl.secretbox`). */
export function sealShares(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return nacl.secretbox(plaintext, ZERO_NONCE, key);
}

/** Opens a share box; throws `authentication` if it was forged, altered or misrouted. */
export function openShares(key: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const plain = nacl.secretbox.open(ciphertext, ZERO_NONCE, key);
  if (!plain) throw new ProtocolError(ERROR_CODES.authentication, "share box failed authentication");
  return plain;
}

/**
 * Consistency-check tag: HMAC-SHA256(key_{from→to}, round id ‖ survivor bitmap), truncated to
 * 128 bits. It plays the role of Bonawitz §4's signature on U3: the server cannot forge it (it
 * lacks the pairwise key), and only the neighbour that verifies needs to be convinced.
 */
export function consistencyTag(key: Uint8Array, roundId: string, survivors: Uint8Array): Uint8Array {
  return hmac(sha256, key, concatBytes(utf8(roundId), new Uint8Array([0]), survivors)).slice(0, SIZES.tag);
}
