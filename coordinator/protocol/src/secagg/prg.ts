/**
 * Pseudorandom generators that expand a 32-byte seed into a mask over Z_(2^m)
 * (Bonawitz et al. §3.2 "PRG"; Flower's seeded `numpy.random` is not cryptographic and is not
 * copied). Three candidates were measured side by side (`bench/prg.ts`):
 *
 * - WebCrypto AES-CTR: native AES (AES-NI on x86), async, in browsers, workerd and node;
 * - BLAKE3 in keyed XOF mode from @noble/hashes: pure JS, synchronous;
 * - the XSalsa20 keystream from tweetnacl: pure JS, synchronous.
 *
 * AES-CTR wins everywhere it matters. Medians on this 2-core machine (shared, heavily loaded,
 * so absolute numbers are pessimistic): node ~0.9 GB/s for AES-128-CTR against ~0.1 GB/s for
 * XSalsa20 and ~0.03 GB/s for BLAKE3; Chromium ~0.3-0.4 GB/s against ~0.07-0.24 and ~0.02
 * (`bench/results/prg.json`). The JS candidates are also synchronous, so they would block the
 * page or the Durable Object for the whole expansion. AES-128-CTR is therefore the mask PRG,
 * and every stage function that expands masks is async. The server regenerates one mask per
 * survivor and one per (dropped device, surviving neighbour) pair, so PRG throughput bounds
 * the round. A seed keys the PRG once, with a zero counter: every seed is derived for exactly one mask.
 */
import { blake3 } from "@noble/hashes/blake3.js";
import nacl from "tweetnacl";
import { SIZES } from "./constants";

/** A PRG that expands a seed into `length` pseudorandom bytes. */
export interface Prg {
  /** Short name for tables. */
  readonly name: string;
  /** Expands a 32-byte seed into `length` bytes. */
  expand(seed: Uint8Array, length: number): Promise<Uint8Array>;
}

function checkSeed(seed: Uint8Array): void {
  if (seed.length !== SIZES.seed)
    throw new RangeError(`PRG seed must be ${SIZES.seed} bytes, got ${seed.length}`);
}

/**
 * Keystream is requested in 64 KiB pieces, all in flight at once: measured in Chromium, one
 * 256 KiB `encrypt` runs at ~200 MB/s while 64 KiB pieces issued together reach well over
 * 1 GB/s (WebCrypto runs them on worker threads and the pieces stay in cache).
 */
const AES_CHUNK = 1 << 16;

/**
 * AES-CTR keystream (NIST SP 800-38A §6.5): encrypting zeros under key = seed[0..keyBytes) with
 * a zero initial counter block and a 64-bit block counter. 128-bit keys suffice for masks.
 * `pieceBytes` sets how much keystream one `encrypt` call produces (pieces run concurrently);
 * a single-piece output is returned without copying.
 */
export function aesCtrPrg(keyBits: 128 | 256 = 128, pieceBytes: number = AES_CHUNK): Prg {
  if (!Number.isInteger(pieceBytes) || pieceBytes < 16 || pieceBytes % 16 !== 0) {
    throw new RangeError(`pieceBytes must be a positive multiple of 16, got ${pieceBytes}`);
  }
  let zeros: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  const zeroPlaintext = (size: number): Uint8Array<ArrayBuffer> => {
    if (zeros.length < size) zeros = new Uint8Array(Math.max(size, Math.min(pieceBytes, 1 << 20)));
    return zeros.subarray(0, size);
  };
  return {
    name: pieceBytes === AES_CHUNK ? `aes-${keyBits}-ctr` : `aes-${keyBits}-ctr/${pieceBytes >> 10}k`,
    async expand(seed, length) {
      checkSeed(seed);
      const subtle = crypto.subtle;
      const key = await subtle.importKey("raw", seed.slice(0, keyBits / 8), { name: "AES-CTR" }, false, [
        "encrypt",
      ]);
      const piece = (offset: number, size: number): Promise<ArrayBuffer> => {
        // Counter block of this piece: its first block index (offset / 16) in the low 64 bits.
        const counter = new Uint8Array(16);
        new DataView(counter.buffer).setBigUint64(8, BigInt(offset / 16));
        return subtle.encrypt({ name: "AES-CTR", counter, length: 64 }, key, zeroPlaintext(size));
      };
      if (length <= pieceBytes) return new Uint8Array(await piece(0, length));
      const out = new Uint8Array(length);
      const pieces: Promise<void>[] = [];
      for (let offset = 0; offset < length; offset += pieceBytes) {
        pieces.push(
          piece(offset, Math.min(pieceBytes, length - offset)).then((block) =>
            out.set(new Uint8Array(block), offset),
          ),
        );
      }
      await Promise.all(pieces);
      return out;
    },
  };
}

/** BLAKE3 keyed hash in XOF mode (BLAKE3 spec §2.6): output = BLAKE3_keyed(seed, "")[0..length). */
export function blake3Prg(): Prg {
  return {
    name: "blake3-xof",
    async expand(seed, length) {
      checkSeed(seed);
      return blake3(new Uint8Array(0), { key: seed, dkLen: length });
    },
  };
}

/** tweetnacl's low-level XSalsa20 keystream; not in its type declarations, so typed here. */
interface NaclLowLevel {
  crypto_stream(c: Uint8Array, cpos: number, d: number, n: Uint8Array, k: Uint8Array): number;
}

/** XSalsa20 keystream (Bernstein 2008) with the seed as key and an all-zero 24-byte nonce. */
export function xsalsa20Prg(): Prg {
  const lowlevel = (nacl as unknown as { lowlevel: NaclLowLevel }).lowlevel;
  return {
    name: "xsalsa20",
    async expand(seed, length) {
      checkSeed(seed);
      const out = new Uint8Array(length);
      lowlevel.crypto_stream(out, 0, length, new Uint8Array(24), seed);
      return out;
    },
  };
}

/** Every candidate, in the order the benchmark prints them. */
export function prgCandidates(): Prg[] {
  return [aesCtrPrg(128), aesCtrPrg(128, 1 << 20), aesCtrPrg(256), blake3Prg(), xsalsa20Prg()];
}

/** The mask PRG chosen by measurement (see the module comment). */
export const MASK_PRG: Prg = aesCtrPrg(128);

/**
 * The same keystream in 1 MiB pieces, for the server: in node one 256 KiB piece per mask costs
 * less CPU than four 64 KiB ones and needs no reassembly copy. Outputs are identical.
 */
export const SERVER_MASK_PRG: Prg = aesCtrPrg(128, 1 << 20);

/**
 * Expands a seed into `dimension` mask words uniform over Z_(2^m): 32-bit little-endian words
 * reduced mod 2^m. Reduction of a uniform 32-bit word mod a power of two ≤ 2^32 is exactly
 * uniform, since 2^m divides 2^32.
 */
export async function expandMask(
  seed: Uint8Array,
  dimension: number,
  modulusBits: number,
  prg: Prg = MASK_PRG,
): Promise<Uint32Array> {
  const bytes = await prg.expand(seed, dimension * 4);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, dimension);
  if (!LITTLE_ENDIAN) for (let i = 0; i < dimension; i++) words[i] = byteSwap(words[i] as number);
  if (modulusBits < 32) {
    const mask = 2 ** modulusBits - 1;
    for (let i = 0; i < dimension; i++) words[i] = (words[i] as number) & mask;
  }
  return words;
}

/** Whether typed arrays on this engine are little-endian (every engine in practice). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function byteSwap(w: number): number {
  return (((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24)) >>> 0;
}

/** One candidate's measured throughput. */
export interface PrgThroughput {
  prg: string;
  /** Median over runs, in 10^6 bytes per second. */
  mbPerSecond: number;
  runsMbPerSecond: number[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Measures every candidate the way the server uses it: fresh seeds expanded into
 * d = 65,536-word masks (256 KiB) until `bytesPerRun`, median MB/s of `runs` runs. Lives here,
 * not in `bench/`, because it must run unchanged in node and in a browser bundle.
 */
export async function measurePrgThroughput(runs: number, bytesPerRun: number): Promise<PrgThroughput[]> {
  const maskBytes = 65536 * 4;
  const calls = Math.max(1, Math.round(bytesPerRun / maskBytes));
  const rows: PrgThroughput[] = [];
  for (const prg of prgCandidates()) {
    const seed = new Uint8Array(SIZES.seed).map((_, i) => i);
    await prg.expand(seed, maskBytes); // warm-up: JIT and key-schedule paths
    const rates: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      for (let c = 0; c < calls; c++) {
        seed[0] = c & 0xff;
        seed[1] = r & 0xff;
        await prg.expand(seed, maskBytes);
      }
      rates.push((calls * maskBytes) / 1e6 / ((performance.now() - t0) / 1000));
    }
    rows.push({ prg: prg.name, mbPerSecond: median(rates), runsMbPerSecond: rates });
  }
  return rows;
}
