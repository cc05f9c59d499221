/**
 * Fixed-point encoding of float vectors into Z_(2^m) and bit-packing of m-bit words.
 *
 * A value x is clipped to [-c, c] and mapped affinely onto [0, 2^b - 1] (b = value bits), then
 * rounded stochastically so the encoding is unbiased: E[q] = (x + c)/(2c) · (2^b - 1)
 * (stochastic rounding as in Gupta et al. 2015; Bonawitz et al. §2 assume inputs in Z_R).
 *
 * Overflow is impossible by construction. Every encoded value satisfies 0 ≤ q ≤ 2^b - 1, and at
 * most n devices contribute, so the true integer sum S obeys
 *     0 ≤ S ≤ n (2^b - 1) < 2^⌈log2 n⌉ · 2^b ≤ 2^(b + ⌈log2 n⌉ + margin) = 2^m.
 * The masked sum is computed mod 2^m, and since 0 ≤ S < 2^m the residue *is* S: no wrap-around
 * can happen, whatever the masks. `encodeFixedPoint` guarantees q ≤ 2^b - 1 (the clip makes the
 * scaled value at most 2^b - 1, and rounding up only happens below it), and the client stage
 * rejects any input word ≥ 2^b, so the premise holds for every accepted input.
 */
import { type RandomBytes, systemRandomBytes } from "../bytes";

/** Largest modulus: masks are expanded as 32-bit words and reduced mod 2^m. */
export const MAX_MODULUS_BITS = 32;

/** How floats become integers. */
export interface FixedPointSpec {
  /** Values are clipped to [-clip, clip] before scaling. */
  clip: number;
  /** Bits per encoded value, b: values land in [0, 2^b - 1]. */
  valueBits: number;
}

/**
 * m = b + ⌈log2 n⌉ + margin: the smallest modulus in which the sum of n b-bit values cannot
 * wrap (see the module comment). `margin` leaves headroom for e.g. distributed-DP noise.
 */
export function modulusBitsFor(valueBits: number, maxContributors: number, marginBits = 0): number {
  if (!Number.isInteger(valueBits) || valueBits < 1)
    throw new RangeError(`valueBits must be ≥ 1, got ${valueBits}`);
  if (!Number.isInteger(maxContributors) || maxContributors < 1) {
    throw new RangeError(`maxContributors must be ≥ 1, got ${maxContributors}`);
  }
  if (!Number.isInteger(marginBits) || marginBits < 0)
    throw new RangeError(`marginBits must be ≥ 0, got ${marginBits}`);
  const m = valueBits + Math.ceil(Math.log2(maxContributors)) + marginBits;
  if (m > MAX_MODULUS_BITS) {
    throw new RangeError(
      `modulus bits ${m} exceed ${MAX_MODULUS_BITS}: lower valueBits, margin or the shard size`,
    );
  }
  return m;
}

function checkSpec(spec: FixedPointSpec): void {
  if (!(spec.clip > 0) || !Number.isFinite(spec.clip))
    throw new RangeError(`clip must be finite and > 0, got ${spec.clip}`);
  if (!Number.isInteger(spec.valueBits) || spec.valueBits < 1 || spec.valueBits > 31) {
    throw new RangeError(`valueBits must be an integer in [1, 31], got ${spec.valueBits}`);
  }
}

/**
 * Encodes floats as integers in [0, 2^b - 1] with clipping and unbiased stochastic rounding.
 * `randomBytes` supplies the rounding coins (4 bytes per value), so tests can fix them.
 */
export function encodeFixedPoint(
  values: ArrayLike<number>,
  spec: FixedPointSpec,
  randomBytes: RandomBytes = systemRandomBytes,
): Uint32Array {
  checkSpec(spec);
  const top = 2 ** spec.valueBits - 1;
  const coins = randomBytes(values.length * 4);
  const view = new DataView(coins.buffer, coins.byteOffset, coins.byteLength);
  const out = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i] as number;
    if (Number.isNaN(x)) throw new RangeError(`values[${i}] is NaN`);
    const clipped = Math.min(spec.clip, Math.max(-spec.clip, x));
    // (clipped + c) ≤ 2c and division is monotone, so scaled ≤ top exactly in IEEE arithmetic.
    const scaled = ((clipped + spec.clip) / (2 * spec.clip)) * top;
    const floor = Math.floor(scaled);
    const u = view.getUint32(i * 4, true) / 2 ** 32;
    out[i] = Math.min(top, floor + (u < scaled - floor ? 1 : 0));
  }
  return out;
}

/**
 * Decodes the integer sum of `contributors` encoded vectors back to the float sum:
 * Σx ≈ S · 2c/(2^b - 1) - contributors · c.
 */
export function decodeFixedPointSum(
  sum: Uint32Array,
  contributors: number,
  spec: FixedPointSpec,
): Float64Array {
  checkSpec(spec);
  const step = (2 * spec.clip) / (2 ** spec.valueBits - 1);
  const out = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) out[i] = (sum[i] as number) * step - contributors * spec.clip;
  return out;
}

/** Bytes needed to pack `count` words of `bits` bits. */
export function packedLength(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

/**
 * Packs words of `bits` bits (1..32) into bytes, least significant bit first. Words must already
 * be < 2^bits; higher bits are rejected rather than silently dropped. Integer-only: each word is
 * OR-ed into the (at most five) bytes it straddles.
 */
export function packWords(words: Uint32Array, bits: number): Uint8Array {
  checkBits(bits);
  const length = packedLength(words.length, bits);
  const out = new Uint8Array(length + 8); // slack: the last word may touch 4 bytes past its end
  const limit = 2 ** bits;
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as number;
    if (w >= limit) throw new RangeError(`word ${i} = ${w} does not fit ${bits} bits`);
    const pos = i * bits;
    const b = pos >>> 3;
    const sh = pos & 7;
    out[b] = (out[b] as number) | ((w << sh) & 0xff);
    out[b + 1] = (out[b + 1] as number) | ((w >>> (8 - sh)) & 0xff);
    out[b + 2] = (out[b + 2] as number) | ((w >>> (16 - sh)) & 0xff);
    out[b + 3] = (out[b + 3] as number) | ((w >>> (24 - sh)) & 0xff);
    if (sh > 0) out[b + 4] = (out[b + 4] as number) | ((w >>> (32 - sh)) & 0xff);
  }
  return out.slice(0, length);
}

/** Inverse of `packWords`; rejects a wrong length or nonzero padding bits. */
export function unpackWords(bytes: Uint8Array, count: number, bits: number): Uint32Array {
  checkBits(bits);
  const length = packedLength(count, bits);
  if (bytes.length !== length) {
    throw new RangeError(`packed vector: expected ${length} bytes, got ${bytes.length}`);
  }
  const used = (count * bits) & 7;
  if (used !== 0 && (bytes[length - 1] as number) >>> used !== 0)
    throw new RangeError("packed vector: nonzero padding bits");
  const padded = new Uint8Array(length + 8);
  padded.set(bytes);
  const out = new Uint32Array(count);
  const mask = bits === 32 ? -1 : 2 ** bits - 1;
  for (let i = 0; i < count; i++) {
    const pos = i * bits;
    const b = pos >>> 3;
    const sh = pos & 7;
    const lo =
      (padded[b] as number) |
      ((padded[b + 1] as number) << 8) |
      ((padded[b + 2] as number) << 16) |
      ((padded[b + 3] as number) << 24);
    const v = sh === 0 ? lo : (lo >>> sh) | ((padded[b + 4] as number) << (32 - sh));
    out[i] = v & mask;
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** Aligned copy of the last packed input, reused: one 4 B-aligned buffer per isolate, grown as needed. */
let alignedScratch = new Uint32Array(0);

/**
 * Adds a packed vector (`packWords` layout) into `acc` mod 2^bits without unpacking it first:
 * the server's per-input step (Bonawitz §4 round 2, Σ y_u). The bytes are copied once into an
 * aligned scratch so that each word costs two 32-bit reads instead of five byte reads (about 1.9×
 * at d = 65,536, m = 26, interleaved A/B). Throws `RangeError` on a wrong length or nonzero
 * padding bits, before touching `acc`.
 */
export function addPackedInPlace(acc: Uint32Array, bytes: Uint8Array, bits: number): void {
  checkBits(bits);
  const count = acc.length;
  const length = packedLength(count, bits);
  if (bytes.length !== length) {
    throw new RangeError(`packed vector: expected ${length} bytes, got ${bytes.length}`);
  }
  const used = (count * bits) & 7;
  if (used !== 0 && (bytes[length - 1] as number) >>> used !== 0)
    throw new RangeError("packed vector: nonzero padding bits");
  if (!LITTLE_ENDIAN) {
    const words = unpackWords(bytes, count, bits);
    for (let i = 0; i < count; i++)
      acc[i] =
        bits === 32
          ? (acc[i] as number) + (words[i] as number)
          : ((acc[i] as number) + (words[i] as number)) % 2 ** bits;
    return;
  }
  // Two zero words past the end, so the last word's second read is always in bounds.
  const need = (length >>> 2) + 2;
  if (alignedScratch.length < need) alignedScratch = new Uint32Array(need);
  const words = alignedScratch;
  words[need - 2] = 0;
  words[need - 1] = 0;
  new Uint8Array(words.buffer, 0, length).set(bytes);
  // `& mask` with bits = 32 is `& -1`; the Uint32Array store then reduces mod 2^32.
  const mask = bits === 32 ? -1 : 2 ** bits - 1;
  for (let i = 0, pos = 0; i < count; i++, pos += bits) {
    const w = pos >>> 5;
    const sh = pos & 31;
    // (x << (31 - sh)) << 1 is x << (32 - sh), and 0 (not x) when sh = 0.
    const high = ((words[w + 1] as number) << (31 - sh)) << 1;
    acc[i] = ((acc[i] as number) + ((((words[w] as number) >>> sh) | high) & mask)) & mask;
  }
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > MAX_MODULUS_BITS) {
    throw new RangeError(`bits must be an integer in [1, ${MAX_MODULUS_BITS}], got ${bits}`);
  }
}
