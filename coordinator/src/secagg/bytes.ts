/**
 * Byte helpers shared by both sides of the protocol: injectable randomness, constant-time
 * comparison, little-endian words and compact slot-set bitmaps. Runtime-neutral: only
 * `Uint8Array` and WebCrypto's `getRandomValues`.
 */
import { base64ToBytes, bytesToBase64 } from "../wire/binary";

export { base64ToBytes, bytesToBase64 };

/** Source of cryptographic randomness; injectable everywhere so tests are deterministic. */
export type RandomBytes = (length: number) => Uint8Array;

/** WebCrypto caps one `getRandomValues` call at 65,536 bytes (WebCrypto §10.1.1). */
const MAX_RANDOM_CHUNK = 65536;

/** The platform CSPRNG (browsers, workerd, node ≥ 19), in chunks of at most 64 KiB. */
export const systemRandomBytes: RandomBytes = (length) => {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += MAX_RANDOM_CHUNK) {
    globalThis.crypto.getRandomValues(out.subarray(i, Math.min(length, i + MAX_RANDOM_CHUNK)));
  }
  return out;
};

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Compares two byte arrays in time independent of where they differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** Overwrites secret bytes (noble's habit: wipe secrets after use). */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}

/** UTF-8 encoding of a label or id. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** 32-bit unsigned integer, little-endian. */
export function u32le(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, true);
  return out;
}

/** Little-endian 32-bit words as bytes (copying, so the result owns its buffer). */
export function wordsToBytes(words: Uint32Array): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(i * 4, words[i] as number, true);
  return out;
}

/** Bytes as little-endian 32-bit words; the length must be a multiple of 4. */
export function bytesToWords(bytes: Uint8Array): Uint32Array {
  if (bytes.length % 4 !== 0) throw new RangeError(`words: ${bytes.length} bytes is not a multiple of 4`);
  const out = new Uint32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

/**
 * A set of slots in `[0, size)` as a bitmap (bit i of byte i>>3, LSB first). A cohort of 1,000
 * costs 125 bytes, against ~4 KB for a JSON list of numbers.
 */
export function encodeSlotSet(slots: Iterable<number>, size: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(size / 8));
  for (const s of slots) {
    if (!Number.isInteger(s) || s < 0 || s >= size) throw new RangeError(`slot ${s} outside [0, ${size})`);
    out[s >> 3] = (out[s >> 3] as number) | (1 << (s & 7));
  }
  return out;
}

/** Inverse of `encodeSlotSet`: sorted slots. Rejects a wrong length or bits at or past `size`. */
export function decodeSlotSet(bitmap: Uint8Array, size: number): number[] {
  if (bitmap.length !== Math.ceil(size / 8)) {
    throw new RangeError(`slot set: expected ${Math.ceil(size / 8)} bytes, got ${bitmap.length}`);
  }
  const out: number[] = [];
  for (let s = 0; s < bitmap.length * 8; s++) {
    if (((bitmap[s >> 3] as number) >> (s & 7)) & 1) {
      if (s >= size) throw new RangeError(`slot set: bit ${s} is past the cohort size ${size}`);
      out.push(s);
    }
  }
  return out;
}
