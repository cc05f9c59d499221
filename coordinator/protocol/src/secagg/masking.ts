/**
 * Mask arithmetic over Z_(2^m) and the share-box payload, shared by the client and the server so
 * both sides compute byte-identical values (Bonawitz et al. §4, rounds 1-2 and 4).
 *
 * Device u sends y_u = x_u + PRG(b_u) + Σ_{v ∈ N(u) ∩ U2} Δ_{u,v} · PRG(s_{u,v})  (mod 2^m),
 * with Δ_{u,v} = +1 if u < v and -1 if u > v, so each pairwise mask appears once with each sign
 * and cancels in Σ y_u whenever both ends survive.
 */
import { SIZES } from "./constants";
import { MASK_PRG, type Prg } from "./prg";
import { decodeShareValues, encodeShareValues, type Share, shareSize } from "./shamir";

/** Size of one serialised share of the self-mask seed b_u. */
export const B_SHARE_BYTES = shareSize(SIZES.selfSeed);

/** Size of one serialised share of the mask secret key s_u^SK. */
export const S_SHARE_BYTES = shareSize(SIZES.key);

/** Plaintext of a share box: share of b_u ‖ share of s_u^SK. */
export const BOX_PLAINTEXT_BYTES = B_SHARE_BYTES + S_SHARE_BYTES;

/** Ciphertext of a share box (plaintext + Poly1305 tag). */
export const BOX_BYTES = BOX_PLAINTEXT_BYTES + SIZES.boxOverhead;

/** The sign Δ_{u,v} with which device u adds the mask it shares with v. */
export function pairwiseSign(u: number, v: number): 1 | -1 {
  return u < v ? 1 : -1;
}

/** acc ← acc + sign · mask (mod 2^m), in place. Words stay in [0, 2^m). */
export function addMaskInPlace(acc: Uint32Array, mask: Uint32Array, sign: 1 | -1, modulusBits: number): void {
  if (acc.length !== mask.length)
    throw new RangeError(`mask length ${mask.length} ≠ vector length ${acc.length}`);
  const n = acc.length;
  if (modulusBits === 32) {
    // Uint32Array stores reduce mod 2^32 (ToUint32), for sums and differences alike.
    if (sign === 1) for (let i = 0; i < n; i++) acc[i] = (acc[i] as number) + (mask[i] as number);
    else for (let i = 0; i < n; i++) acc[i] = (acc[i] as number) - (mask[i] as number);
    return;
  }
  // With m ≤ 31 both operands are < 2^31, so the int32 result of ± is exact and & reduces it.
  const m = 2 ** modulusBits - 1;
  if (sign === 1) for (let i = 0; i < n; i++) acc[i] = ((acc[i] as number) + (mask[i] as number)) & m;
  else for (let i = 0; i < n; i++) acc[i] = ((acc[i] as number) - (mask[i] as number)) & m;
}

/** One mask to add or remove: a PRG seed and a sign. */
export interface MaskJob {
  seed: Uint8Array;
  sign: 1 | -1;
}

/**
 * Expands every job's mask and adds it into `acc` (mod 2^m). Masks are accumulated as full 32-bit
 * words with wrapping int32 arithmetic and reduced once at the end: 2^m divides 2^32, so
 * (Σ mod 2^32) mod 2^m = Σ mod 2^m, and one reduction pass replaces one per mask. Expansions run
 * `concurrency` at a time: the AES-CTR PRG is asynchronous, and overlapping calls keeps WebCrypto's
 * worker threads busy.
 */
export async function applyMasks(
  acc: Uint32Array,
  jobs: readonly MaskJob[],
  modulusBits: number,
  prg: Prg = MASK_PRG,
  concurrency = 8,
): Promise<void> {
  const d = acc.length;
  const a = new Int32Array(acc.buffer, acc.byteOffset, d);
  for (let i = 0; i < jobs.length; i += concurrency) {
    const batch = jobs.slice(i, i + concurrency);
    const streams = await Promise.all(batch.map((job) => prg.expand(job.seed, 4 * d)));
    const plus: Int32Array[] = [];
    const minus: Int32Array[] = [];
    for (const [j, bytes] of streams.entries())
      ((batch[j] as MaskJob).sign === 1 ? plus : minus).push(maskWords(bytes, d));
    accumulate(a, plus, minus);
  }
  if (modulusBits < 32) {
    const m = 2 ** modulusBits - 1;
    for (let x = 0; x < d; x++) a[x] = (a[x] as number) & m;
  }
}

/**
 * a += Σ plus - Σ minus (mod 2^32), up to four masks per pass so `a` is loaded and stored once
 * per four masks. Intermediate sums of at most five int32 values stay below 2^53, so the double
 * arithmetic is exact before `| 0` reduces it mod 2^32.
 */
function accumulate(a: Int32Array, plus: Int32Array[], minus: Int32Array[]): void {
  const d = a.length;
  const all = [...plus.map((w) => [w, 1] as const), ...minus.map((w) => [w, -1] as const)];
  for (let i = 0; i < all.length; i += 4) {
    const group = all.slice(i, i + 4);
    if (group.length === 4 && group.every(([, s]) => s === 1)) {
      const [w0, w1, w2, w3] = group.map(([w]) => w) as [Int32Array, Int32Array, Int32Array, Int32Array];
      for (let x = 0; x < d; x++)
        a[x] =
          ((a[x] as number) + (w0[x] as number) + (w1[x] as number) + (w2[x] as number) + (w3[x] as number)) |
          0;
    } else if (group.length === 4 && group.every(([, s]) => s === -1)) {
      const [w0, w1, w2, w3] = group.map(([w]) => w) as [Int32Array, Int32Array, Int32Array, Int32Array];
      for (let x = 0; x < d; x++)
        a[x] =
          ((a[x] as number) - (w0[x] as number) - (w1[x] as number) - (w2[x] as number) - (w3[x] as number)) |
          0;
    } else {
      for (const [w, s] of group) {
        if (s === 1) for (let x = 0; x < d; x++) a[x] = ((a[x] as number) + (w[x] as number)) | 0;
        else for (let x = 0; x < d; x++) a[x] = ((a[x] as number) - (w[x] as number)) | 0;
      }
    }
  }
}

/** PRG bytes as little-endian 32-bit words (an aligned view where possible, as `expandMask`). */
function maskWords(bytes: Uint8Array, d: number): Int32Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Int32Array(bytes.buffer, bytes.byteOffset, d);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Int32Array(d);
  for (let i = 0; i < d; i++) out[i] = view.getInt32(4 * i, true);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Serialises the share-box plaintext for one neighbour. */
export function encodeBoxPlaintext(bShare: Share, sShare: Share): Uint8Array {
  const out = new Uint8Array(BOX_PLAINTEXT_BYTES);
  out.set(encodeShareValues(bShare), 0);
  out.set(encodeShareValues(sShare), B_SHARE_BYTES);
  return out;
}

/** Parses a share-box plaintext received by device `holder` (its share point is holder + 1). */
export function decodeBoxPlaintext(holder: number, plaintext: Uint8Array): { bShare: Share; sShare: Share } {
  if (plaintext.length !== BOX_PLAINTEXT_BYTES) {
    throw new RangeError(`share box: expected ${BOX_PLAINTEXT_BYTES} bytes, got ${plaintext.length}`);
  }
  return {
    bShare: decodeShareValues(sharePoint(holder), plaintext.subarray(0, B_SHARE_BYTES), SIZES.selfSeed),
    sShare: decodeShareValues(sharePoint(holder), plaintext.subarray(B_SHARE_BYTES), SIZES.key),
  };
}

/** The Shamir evaluation point of the share held by `slot`: slot + 1 (never zero). */
export function sharePoint(slot: number): number {
  return slot + 1;
}
