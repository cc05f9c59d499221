/**
 * Randomness for the mechanisms: exact uniform integers from a stream of 32-bit words.
 *
 * Every sampler takes a {@link RandomSource}, so tests run on a seeded ChaCha20 stream and
 * production runs on the platform CSPRNG (`systemRandomBytes` of the bytes module). Noise
 * must come from a cryptographic generator: a coordinator that can predict a client's noise
 * share can subtract it.
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { type RandomBytes, systemRandomBytes } from "../bytes.ts";

/** A source of independent uniform 32-bit words. */
export interface RandomSource {
  /** A uniform integer in `[0, 2^32)`. */
  nextUint32(): number;
}

export type { RandomBytes };

const POOL_BYTES = 65536;

/**
 * A {@link RandomSource} that draws from `randomBytes` in 64 KiB blocks (the most
 * `crypto.getRandomValues` returns per call) and wipes each block once consumed.
 */
export function bufferedRandom(randomBytes: RandomBytes = systemRandomBytes): RandomSource {
  let words: Uint32Array = new Uint32Array(0);
  let bytes: Uint8Array = new Uint8Array(0);
  let pos = 0;
  return {
    nextUint32(): number {
      if (pos >= words.length) {
        bytes.fill(0);
        bytes = randomBytes(POOL_BYTES);
        if (bytes.length !== POOL_BYTES) throw new RangeError("randomBytes returned the wrong length");
        words = new Uint32Array(bytes.buffer, bytes.byteOffset, POOL_BYTES / 4);
        pos = 0;
      }
      return words[pos++]!;
    },
  };
}

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/** The ChaCha20 block function (RFC 8439 Section 2.3) into `out`. */
export function chacha20Block(key: Uint32Array, counter: number, nonce: Uint32Array, out: Uint32Array): void {
  const s = new Uint32Array(16);
  s[0] = 0x61707865;
  s[1] = 0x3320646e;
  s[2] = 0x79622d32;
  s[3] = 0x6b206574;
  s.set(key.subarray(0, 8), 4);
  s[12] = counter >>> 0;
  s.set(nonce.subarray(0, 3), 13);
  const x = new Uint32Array(s);
  const qr = (a: number, b: number, c: number, d: number): void => {
    x[a] = (x[a]! + x[b]!) | 0;
    x[d] = rotl(x[d]! ^ x[a]!, 16);
    x[c] = (x[c]! + x[d]!) | 0;
    x[b] = rotl(x[b]! ^ x[c]!, 12);
    x[a] = (x[a]! + x[b]!) | 0;
    x[d] = rotl(x[d]! ^ x[a]!, 8);
    x[c] = (x[c]! + x[d]!) | 0;
    x[b] = rotl(x[b]! ^ x[c]!, 7);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12);
    qr(1, 5, 9, 13);
    qr(2, 6, 10, 14);
    qr(3, 7, 11, 15);
    qr(0, 5, 10, 15);
    qr(1, 6, 11, 12);
    qr(2, 7, 8, 13);
    qr(3, 4, 9, 14);
  }
  for (let i = 0; i < 16; i++) out[i] = (x[i]! + s[i]!) >>> 0;
}

function bytesToWordsLE(b: Uint8Array): Uint32Array {
  const w = new Uint32Array(b.length >>> 2);
  for (let i = 0; i < w.length; i++) {
    w[i] = (b[4 * i]! | (b[4 * i + 1]! << 8) | (b[4 * i + 2]! << 16) | (b[4 * i + 3]! << 24)) >>> 0;
  }
  return w;
}

/**
 * A deterministic {@link RandomSource}: the ChaCha20 keystream (RFC 8439) under
 * `key = SHA-256(domain || 0x00 || seed)`, nonce 0, block counter from 0, words little-endian.
 * Both ends derive the same stream from a public seed (the Hadamard signs); tests use it for
 * reproducible noise.
 */
export function seededRandom(seed: Uint8Array | string, domain = "fedprofile/dp/seeded/v1"): RandomSource {
  const seedBytes = typeof seed === "string" ? utf8ToBytes(seed) : seed;
  const d = utf8ToBytes(domain);
  const msg = new Uint8Array(d.length + 1 + seedBytes.length);
  msg.set(d, 0);
  msg.set(seedBytes, d.length + 1);
  const key = bytesToWordsLE(sha256(msg));
  const nonce = new Uint32Array(3);
  const block = new Uint32Array(16);
  let counter = 0;
  let pos = 16;
  return {
    nextUint32(): number {
      if (pos >= 16) {
        chacha20Block(key, counter, nonce, block);
        counter = (counter + 1) >>> 0;
        pos = 0;
      }
      return block[pos++]!;
    },
  };
}

const TWO32 = 4294967296;
const TWO53 = 9007199254740992;

/**
 * A uniform integer in `[0, n)` for `1 <= n <= 2^53`, exactly, by rejection (no modulo bias).
 * `n <= 2^32` uses one word per attempt, larger `n` two (21 + 32 bits). Below 2^32 remainders
 * are taken as `x - n * floor(x / n)`: the double quotient of two integers below 2^32 is never
 * within rounding of an integer it does not equal, so this is exact, and much faster in V8 than
 * `%` on doubles.
 */
export function uniformBelow(rng: RandomSource, n: number): number {
  if (n <= TWO32) {
    if (n === TWO32) return rng.nextUint32();
    const limit = n * Math.floor(TWO32 / n);
    for (;;) {
      const x = rng.nextUint32();
      if (x < limit) return x - n * Math.floor(x / n);
    }
  }
  if (n > TWO53) throw new RangeError(`uniformBelow: n must be <= 2^53, got ${n}`);
  // Here a double quotient can round up to the next integer, so use the exact (slow) fmod.
  const limit = TWO53 - (TWO53 % n);
  for (;;) {
    const x = (rng.nextUint32() & 0x1fffff) * TWO32 + rng.nextUint32();
    if (x < limit) return x % n;
  }
}

/** A uniform bigint in `[0, n)` by rejection over whole 32-bit words. */
export function uniformBelowBig(rng: RandomSource, n: bigint): bigint {
  if (n <= 0n) throw new RangeError("uniformBelowBig: n must be positive");
  const bits = n.toString(2).length;
  const words = Math.ceil(bits / 32);
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    let x = 0n;
    for (let i = 0; i < words; i++) x = (x << 32n) | BigInt(rng.nextUint32());
    x &= mask;
    if (x < n) return x;
  }
}

/** A uniform double in `[0, 1)` with 53 random bits. */
export function uniform01(rng: RandomSource): number {
  return ((rng.nextUint32() >>> 5) * 67108864 + (rng.nextUint32() >>> 6)) / TWO53;
}
