/**
 * The one bytes module of fedprofile, shared by the device and the coordinator: the single
 * {@link RandomBytes} type and its CSPRNG default, base64 (RFC 4648 §4), base64url (§5) and hex,
 * one constant-time comparison, little-endian words and compact slot-set bitmaps.
 * Runtime-neutral: only `Uint8Array` and WebCrypto's `getRandomValues`.
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";

/** Lower-case hex, from @noble/hashes (throws on odd length or a non-hex digit). */
export { bytesToHex, hexToBytes };

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ENCODE = Array.from(ALPHABET, (c) => c.charCodeAt(0));
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/** Two base64 characters per 12 bits: one table lookup per 12 bits in the encoder. */
const ENCODE12 = new Uint16Array(4096);
for (let i = 0; i < 4096; i++) ENCODE12[i] = ((ENCODE[i >> 6] as number) << 8) | (ENCODE[i & 63] as number);

/**
 * Standard padded base64 (RFC 4648 §4), table-driven. SecAgg moves masked vectors of hundreds of
 * kilobytes through JSON state and messages; `btoa` over `String.fromCharCode(...)` chunks costs
 * ~15 ms per 256 KiB vector in Chromium, this ~1 ms.
 */
export function bytesToBase64(bytes: Uint8Array): string {
  const n = bytes.length;
  const out = new Uint8Array(Math.ceil(n / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    const hi = ENCODE12[v >>> 12] as number;
    const lo = ENCODE12[v & 4095] as number;
    out[o] = hi >>> 8;
    out[o + 1] = hi & 255;
    out[o + 2] = lo >>> 8;
    out[o + 3] = lo & 255;
    o += 4;
  }
  if (i < n) {
    const v = ((bytes[i] as number) << 16) | (i + 1 < n ? (bytes[i + 1] as number) << 8 : 0);
    out[o++] = ENCODE[v >>> 18] as number;
    out[o++] = ENCODE[(v >>> 12) & 63] as number;
    out[o++] = i + 1 < n ? (ENCODE[(v >>> 6) & 63] as number) : 61;
    out[o++] = 61; // "="
  }
  return new TextDecoder().decode(out);
}

/** Decodes standard padded base64; throws `TypeError` on any malformed input. */
export function base64ToBytes(text: string): Uint8Array {
  const len = text.length;
  if (len % 4 !== 0) throw new TypeError("invalid base64: length is not a multiple of 4");
  const pad = len > 0 && text.charCodeAt(len - 1) === 61 ? (text.charCodeAt(len - 2) === 61 ? 2 : 1) : 0;
  const out = new Uint8Array((len / 4) * 3 - pad);
  const full = pad === 0 ? len : len - 4;
  let o = 0;
  // Invalid characters map to -1, which sets the sign bit of `check`; non-ASCII ones set bits
  // ≥ 128 in `high`. Both are tested once after the loop.
  let check = 0;
  let high = 0;
  for (let i = 0; i < full; i += 4) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const c = text.charCodeAt(i + 2);
    const d = text.charCodeAt(i + 3);
    high |= a | b | c | d;
    const w = DECODE[a & 127] as number;
    const x = DECODE[b & 127] as number;
    const y = DECODE[c & 127] as number;
    const z = DECODE[d & 127] as number;
    check |= w | x | y | z;
    const v = (w << 18) | (x << 12) | (y << 6) | z;
    out[o] = v >>> 16;
    out[o + 1] = (v >>> 8) & 255;
    out[o + 2] = v & 255;
    o += 3;
  }
  if (check < 0 || high >= 128) throw new TypeError("invalid base64 character");
  if (pad > 0) {
    const c0 = sextet(text, full);
    const c1 = sextet(text, full + 1);
    const c2 = pad === 2 ? 0 : sextet(text, full + 2);
    const v = (c0 << 18) | (c1 << 12) | (c2 << 6);
    out[o++] = v >>> 16;
    if (pad === 1) out[o++] = (v >>> 8) & 0xff;
  }
  return out;
}

/** RFC 4648 §5 base64url without padding (ids, tokens, JWK fields). */
export function bytesToBase64url(bytes: Uint8Array): string {
  return bytesToBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes RFC 4648 §5 base64url, padded or not; throws `TypeError` on malformed input. */
export function base64urlToBytes(text: string): Uint8Array {
  const standard = text.replace(/=+$/, "").replaceAll("-", "+").replaceAll("_", "/");
  return base64ToBytes(standard + "=".repeat((4 - (standard.length % 4)) % 4));
}

function sextet(text: string, i: number): number {
  const code = text.charCodeAt(i);
  const v = code < 128 ? (DECODE[code] as number) : -1;
  if (v < 0) throw new TypeError(`invalid base64 character at ${i}`);
  return v;
}

/** Source of cryptographic randomness; injectable everywhere so tests are deterministic. */
export type RandomBytes = (length: number) => Uint8Array;

/** WebCrypto caps one `getRandomValues` call at 65,536 bytes (WebCrypto §10.1.1). */
const MAX_RANDOM_CHUNK = 65536;

/** The platform CSPRNG (browsers, workerd, node ≥ 19), in chunks of at most 64 KiB. */
export const systemRandomBytes: RandomBytes = (length) => {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += MAX_RANDOM_CHUNK) {
    crypto.getRandomValues(out.subarray(i, Math.min(length, i + MAX_RANDOM_CHUNK)));
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

/**
 * Compares two byte arrays, or two strings by their UTF-8 bytes (digests, tokens), in time
 * independent of where they differ. Only the length may leak.
 */
export function constantTimeEqual(a: Uint8Array | string, b: Uint8Array | string): boolean {
  if (typeof a === "string") a = utf8(a);
  if (typeof b === "string") b = utf8(b);
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
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  // encodeInto a buffer we own: UTF-8 needs at most 3 bytes per UTF-16 code unit.
  const out = new Uint8Array(text.length * 3);
  const { written } = new TextEncoder().encodeInto(text, out);
  return out.subarray(0, written);
}

/** 32-bit unsigned integer, little-endian. */
export function u32le(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, true);
  return out;
}

/** Whether typed arrays on this engine are little-endian (every engine in practice). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Little-endian 32-bit words as bytes (copying, so the result owns its buffer). */
export function wordsToBytes(words: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(words.slice().buffer);
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(i * 4, words[i] as number, true);
  return out;
}

/** Bytes as little-endian 32-bit words; the length must be a multiple of 4. */
export function bytesToWords(bytes: Uint8Array): Uint32Array {
  if (bytes.length % 4 !== 0) throw new RangeError(`words: ${bytes.length} bytes is not a multiple of 4`);
  if (LITTLE_ENDIAN) return new Uint32Array(bytes.slice().buffer);
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
