/**
 * Shamir secret sharing (Shamir 1979) of 32-byte secrets over the prime field GF(p),
 * p = 2^26 - 5, as used for the self-mask seed b_u and the mask secret key s_u^SK
 * (Bonawitz et al. §4, round 1 "ShareKeys").
 *
 * Why such a small prime: every field element fits 26 bits, so a product of two fits 52 bits and
 * is exact in an IEEE double. Arithmetic is plain `number` math with no BigInt, which is what
 * makes reconstruction cheap (Flower's server spends most of a round in BigInt-style Shamir
 * reconstruction, DESIGN.md). A 32-byte secret is cut into 11 chunks of 24 bits (the last holds
 * 8 bits), each shared with its own independent random polynomial. Shamir's scheme is
 * information-theoretically hiding per chunk for any field larger than the number of shares,
 * so fewer than t shares reveal nothing about any chunk, hence nothing about the secret.
 */
import { type RandomBytes, wipe } from "../bytes";
import { packedLength, packWords, unpackWords } from "./encoding";

/** The field modulus: the largest prime below 2^26. */
export const FIELD_PRIME = 67_108_859;

/** Secret bytes carried per field element (24 bits < 26 bits of the field). */
const CHUNK_BYTES = 3;

/** Bits of one serialised field element: shares are bit-packed at 26 bits per element. */
const ELEMENT_BITS = 26;

/** Number of field elements that carry a secret of `secretBytes` bytes. */
export function chunkCount(secretBytes: number): number {
  return Math.ceil(secretBytes / CHUNK_BYTES);
}

/** Serialised size of one share of a `secretBytes`-byte secret (26-bit packed elements). */
export function shareSize(secretBytes: number): number {
  return packedLength(chunkCount(secretBytes), ELEMENT_BITS);
}

/** a·b mod p. Exact: a, b < 2^26, so a·b < 2^52 < 2^53. */
export function mulMod(a: number, b: number): number {
  return (a * b) % FIELD_PRIME;
}

/** a^e mod p by square-and-multiply. */
export function powMod(a: number, e: number): number {
  let result = 1;
  let base = a % FIELD_PRIME;
  let exp = e;
  while (exp > 0) {
    if (exp & 1) result = mulMod(result, base);
    base = mulMod(base, base);
    exp = Math.floor(exp / 2);
  }
  return result;
}

/** Multiplicative inverse by Fermat's little theorem: a^(p-2) mod p. */
export function invMod(a: number): number {
  if (a % FIELD_PRIME === 0) throw new RangeError("invMod: zero has no inverse");
  return powMod(a, FIELD_PRIME - 2);
}

/**
 * Uniform field elements by rejection sampling 26-bit draws (acceptance 1 - 5/2^26), so the
 * polynomial coefficients are exactly uniform; modular reduction of a wider draw would not be.
 */
function randomElements(count: number, randomBytes: RandomBytes): Uint32Array {
  const out = new Uint32Array(count);
  let filled = 0;
  while (filled < count) {
    const buf = randomBytes(4 * (count - filled) + 4);
    for (let i = 0; i + 4 <= buf.length && filled < count; i += 4) {
      const v =
        ((buf[i] as number) |
          ((buf[i + 1] as number) << 8) |
          ((buf[i + 2] as number) << 16) |
          ((buf[i + 3] as number) << 24)) &
        0x3ffffff;
      if (v < FIELD_PRIME) out[filled++] = v;
    }
    wipe(buf);
  }
  return out;
}

/** Splits secret bytes into 24-bit little-endian chunks. */
function toChunks(secret: Uint8Array): number[] {
  const chunks: number[] = [];
  for (let i = 0; i < secret.length; i += CHUNK_BYTES) {
    let v = 0;
    for (let j = CHUNK_BYTES - 1; j >= 0; j--)
      v = v * 256 + (i + j < secret.length ? (secret[i + j] as number) : 0);
    chunks.push(v);
  }
  return chunks;
}

/** A share: the evaluation point x and the polynomial values, one per chunk. */
export interface Share {
  /** Evaluation point in [1, p); in SecAgg it is the recipient's slot + 1. */
  x: number;
  /** f_j(x) for every chunk j. */
  y: Uint32Array;
}

/**
 * Shares `secret` with threshold `t` at the given distinct nonzero points: any t shares
 * reconstruct, any t-1 reveal nothing. Returns one share per point, in order.
 */
export function splitSecret(
  secret: Uint8Array,
  t: number,
  xs: readonly number[],
  randomBytes: RandomBytes,
): Share[] {
  if (!Number.isInteger(t) || t < 1) throw new RangeError(`threshold t must be a positive integer, got ${t}`);
  if (xs.length < t) throw new RangeError(`need at least t=${t} share points, got ${xs.length}`);
  const seen = new Set<number>();
  for (const x of xs) {
    if (!Number.isInteger(x) || x <= 0 || x >= FIELD_PRIME)
      throw new RangeError(`share point ${x} outside [1, p)`);
    if (seen.has(x)) throw new RangeError(`share point ${x} repeated`);
    seen.add(x);
  }
  const chunks = toChunks(secret);
  const shares: Share[] = xs.map((x) => ({ x, y: new Uint32Array(chunks.length) }));
  for (let j = 0; j < chunks.length; j++) {
    // f_j(X) = chunk_j + c_1 X + ... + c_{t-1} X^{t-1}, evaluated by Horner's rule.
    const coeffs = randomElements(t - 1, randomBytes);
    for (const share of shares) {
      let acc = 0;
      for (let c = t - 2; c >= 0; c--) acc = (mulMod(acc, share.x) + (coeffs[c] as number)) % FIELD_PRIME;
      share.y[j] = (mulMod(acc, share.x) + (chunks[j] as number)) % FIELD_PRIME;
    }
    coeffs.fill(0);
  }
  chunks.fill(0);
  return shares;
}

/**
 * Lagrange basis values at zero, λ_i = Π_{j≠i} x_j / (x_j - x_i) (mod p), for distinct
 * points. One inversion per point; O(t²) multiplications, all in doubles.
 */
export function lagrangeAtZero(xs: readonly number[]): number[] {
  return xs.map((xi, i) => {
    let num = 1;
    let den = 1;
    for (let j = 0; j < xs.length; j++) {
      if (j === i) continue;
      const xj = xs[j] as number;
      num = mulMod(num, xj);
      den = mulMod(den, (xj - xi + FIELD_PRIME) % FIELD_PRIME);
    }
    return mulMod(num, invMod(den));
  });
}

/**
 * Reconstructs a `secretBytes`-byte secret from exactly the given shares (pass t of them).
 * Throws `RangeError` if the points repeat or a chunk decodes past 24 bits, which is how a
 * wrong or insufficient share set usually shows itself.
 */
export function combineShares(shares: readonly Share[], secretBytes: number): Uint8Array {
  const chunks = chunkCount(secretBytes);
  const xs = shares.map((s) => s.x);
  if (new Set(xs).size !== xs.length) throw new RangeError("combineShares: repeated share point");
  for (const s of shares) {
    if (s.y.length !== chunks)
      throw new RangeError(`combineShares: share has ${s.y.length} chunks, expected ${chunks}`);
  }
  const lambda = lagrangeAtZero(xs);
  const out = new Uint8Array(secretBytes);
  for (let j = 0; j < chunks; j++) {
    let acc = 0;
    for (let i = 0; i < shares.length; i++) {
      acc = (acc + mulMod(lambda[i] as number, (shares[i] as Share).y[j] as number)) % FIELD_PRIME;
    }
    if (acc >= 1 << (8 * CHUNK_BYTES)) throw new RangeError("combineShares: shares are inconsistent");
    for (let b = 0; b < CHUNK_BYTES; b++) {
      const index = j * CHUNK_BYTES + b;
      const byte = acc % 256;
      acc = Math.floor(acc / 256);
      if (index < secretBytes) out[index] = byte;
      else if (byte !== 0) throw new RangeError("combineShares: shares are inconsistent");
    }
  }
  return out;
}

/** Serialises a share's values, bit-packed at 26 bits each (the point travels separately). */
export function encodeShareValues(share: Share): Uint8Array {
  return packWords(share.y, ELEMENT_BITS);
}

/** Parses share values, checking the length and that every value is a field element. */
export function decodeShareValues(x: number, bytes: Uint8Array, secretBytes: number): Share {
  const chunks = chunkCount(secretBytes);
  let y: Uint32Array;
  try {
    y = unpackWords(bytes, chunks, ELEMENT_BITS);
  } catch (cause) {
    throw new RangeError(`share: expected ${shareSize(secretBytes)} bytes of packed field elements`, {
      cause,
    });
  }
  for (const v of y) if (v >= FIELD_PRIME) throw new RangeError(`share: value ${v} is not a field element`);
  return { x, y };
}
