/**
 * The SecAgg+ neighbour graph (Bell et al. CCS 2020 §3-4): each device shares its secrets with,
 * and masks against, only its k neighbours instead of all n - 1 peers, cutting per-device work
 * from O(n) to O(k) with k = O(log n).
 *
 * The graph is a Harary graph H_{k,N} (a circulant ring where each node links to the k/2
 * nearest on each side) over a pseudorandom permutation of the members, as Bell et al. suggest
 * and Flower implements. Because the permutation is uniform, each node's neighbourhood is a
 * uniformly random k-subset of the others, which is exactly what the hypergeometric analysis in
 * `params.ts` assumes. The permutation comes from a public round seed, so every device derives
 * the same graph and can check the server's routing.
 *
 * Members are the devices that advertised keys (U1), not the whole cohort: a device that drops
 * before advertising costs its would-be neighbours nothing. With N - 1 ≤ k the graph is complete
 * (plain Bonawitz et al. 2017).
 */
import { blake3 } from "@noble/hashes/blake3.js";
import { concatBytes, u32le, utf8 } from "../bytes";
import { LABELS, SIZES } from "./constants";

/** A neighbour graph over a set of slots. */
export interface NeighbourGraph {
  /** The member slots, ascending. */
  readonly members: readonly number[];
  /** Degree parameter k the graph was built with. */
  readonly k: number;
  /** True when every member neighbours every other (N - 1 ≤ k). */
  readonly complete: boolean;
  /** Whether `slot` is a member. */
  has(slot: number): boolean;
  /** The neighbours of a member, ascending; empty for a non-member. */
  neighbours(slot: number): number[];
  /** Whether u and v are distinct neighbours. */
  adjacent(u: number, v: number): boolean;
}

/** Checks the degree parameter: a positive even integer (the ring takes k/2 per side). */
export function checkDegree(k: number): void {
  if (!Number.isInteger(k) || k < 2 || k % 2 !== 0)
    throw new RangeError(`degree k must be an even integer ≥ 2, got ${k}`);
}

/**
 * Deterministic uniform integers from the round seed: BLAKE3 keyed XOF (the graph is public, so
 * speed matters more than anything; any PRF would do). Refills by extending the output length.
 */
class SeededIntegers {
  private buffer: Uint8Array = new Uint8Array(0);
  private offset = 0;
  private produced = 0;

  constructor(
    private readonly seed: Uint8Array,
    private readonly context: Uint8Array,
  ) {}

  private word(): number {
    if (this.offset + 4 > this.buffer.length) {
      const next = this.produced + 4096;
      this.buffer = blake3(this.context, { key: this.seed, dkLen: next }).subarray(this.produced);
      this.produced = next;
      this.offset = 0;
    }
    const b = this.buffer;
    const o = this.offset;
    this.offset += 4;
    return (
      ((b[o] as number) |
        ((b[o + 1] as number) << 8) |
        ((b[o + 2] as number) << 16) |
        ((b[o + 3] as number) << 24)) >>>
      0
    );
  }

  /** Uniform integer in [0, bound) by rejection (no modulo bias). */
  below(bound: number): number {
    const limit = 2 ** 32 - (2 ** 32 % bound);
    for (;;) {
      const w = this.word();
      if (w < limit) return w % bound;
    }
  }
}

/**
 * Builds the neighbour graph of `members` (distinct slots) from the public 32-byte round seed.
 * Pure and deterministic: the server and every client compute the same graph.
 */
export function buildNeighbourGraph(seed: Uint8Array, members: readonly number[], k: number): NeighbourGraph {
  checkDegree(k);
  if (seed.length !== SIZES.seed)
    throw new RangeError(`graph seed must be ${SIZES.seed} bytes, got ${seed.length}`);
  const sorted = [...members].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new RangeError(`graph member ${sorted[i]} repeated`);
  }
  const n = sorted.length;
  const memberSet = new Set(sorted);
  const complete = n - 1 <= k;
  if (complete) {
    return {
      members: sorted,
      k,
      complete,
      has: (slot) => memberSet.has(slot),
      neighbours: (slot) => (memberSet.has(slot) ? sorted.filter((s) => s !== slot) : []),
      adjacent: (u, v) => u !== v && memberSet.has(u) && memberSet.has(v),
    };
  }
  // Fisher-Yates over the sorted members (Knuth, TAOCP vol. 2, Algorithm P).
  const ring = [...sorted];
  const ints = new SeededIntegers(seed, concatBytes(utf8(LABELS.graph), u32le(n), u32le(k)));
  for (let i = n - 1; i > 0; i--) {
    const j = ints.below(i + 1);
    const tmp = ring[i] as number;
    ring[i] = ring[j] as number;
    ring[j] = tmp;
  }
  const position = new Map<number, number>();
  for (const [i, slot] of ring.entries()) position.set(slot, i);
  const half = k / 2;
  const neighbours = (slot: number): number[] => {
    const p = position.get(slot);
    if (p === undefined) return [];
    const out: number[] = [];
    for (let d = 1; d <= half; d++) {
      out.push(ring[(p + d) % n] as number, ring[(p - d + n) % n] as number);
    }
    return out.sort((a, b) => a - b);
  };
  const adjacent = (u: number, v: number): boolean => {
    const pu = position.get(u);
    const pv = position.get(v);
    if (pu === undefined || pv === undefined || u === v) return false;
    const d = Math.abs(pu - pv);
    return Math.min(d, n - d) <= half;
  };
  return { members: sorted, k, complete, has: (slot) => position.has(slot), neighbours, adjacent };
}
