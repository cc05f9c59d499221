/**
 * The aggregation tree of a SecAgg round (issue 16): shards at the leaves, an optional tier of
 * aggregators, the root on top. Hierarchical aggregation as in Bell et al. 2020 §5 and TFF's
 * hierarchical secure sum: a node adds (or robustly combines) its children's sums and passes one
 * sum up, so no node holds more than `FAN_OUT` sums and no stored value holds more than a chunk.
 *
 * - Up to `FAN_OUT` shards report to the root directly.
 * - Above that, shard `s` reports to aggregator `floor(s / FAN_OUT)` and the aggregators report
 *   to the root: `FAN_OUT`² = 1,024 shards, 10^6 devices in shards of 1,000.
 * - Only a node over shards keeps its children's sums (at most `FAN_OUT`), because the robust
 *   combine (`./shard-combine.ts`) needs each shard's own sum. The root over aggregators folds
 *   each aggregator's sum into a running total on arrival.
 *
 * Sums are stored as bytes in chunks of {@link CHUNK_BYTES}, each its own value, never inside
 * the node's state value (a Durable Object value holds at most 2 MB; workerd refused 1,998,893 B).
 */

import { addModular, type DpRoundConfig } from "@fedprofile/protocol/dp";
import type { ShardOutcome } from "./secagg-shard-host";
import { combineShardSums, type ShardSum } from "./shard-combine";

/** Children per node: each node keeps at most this many sums, and the root at most this many rows. */
export const FAN_OUT = 32;

/** Bytes per stored chunk of a sum: a quarter of the 2 MB value limit. */
export const CHUNK_BYTES = 512 * 1024;

/** Aggregators a round of `shards` shards needs: none up to {@link FAN_OUT}, else one per group. */
export function aggregatorCount(shards: number): number {
  return shards > FAN_OUT ? Math.ceil(shards / FAN_OUT) : 0;
}

/** Where shard `shard` of a round of `shards` shards reports: the root, or its aggregator. */
export function parentOf(
  shard: number,
  shards: number,
): { kind: "root" } | { kind: "aggregator"; index: number } {
  return shards > FAN_OUT ? { kind: "aggregator", index: Math.floor(shard / FAN_OUT) } : { kind: "root" };
}

/** The shards under aggregator `index`: [first, end). */
export function shardsOf(index: number, shards: number): { first: number; end: number } {
  return { first: index * FAN_OUT, end: Math.min(shards, (index + 1) * FAN_OUT) };
}

/**
 * A child's report to its parent: a shard's outcome, or an aggregator's, which adds what the
 * ledger and the decoder need about the shard sums below it.
 */
export interface ChildOutcome extends ShardOutcome {
  /** Aggregators: the contributors of each shard sum revealed below (each is one release). */
  revealed?: number[];
  /** Aggregators: devices in `sum` after the range check (the decoder's survivors). */
  survivors?: number;
  /** How `sum` is encoded: u32 words (default; mod 2^32), or float64 (a fixed-point total). */
  sumKind?: "u32" | "f64";
  /** Aggregators: the shards below that aborted, as `shard s: code`. */
  aborts?: string[];
}

/** A child outcome's row in its parent's state: everything but the sum, which is stored apart. */
export type ChildRow = Omit<ChildOutcome, "sum"> & { sum: null; hasSum: boolean };

export function rowOf(outcome: ChildOutcome): ChildRow {
  return { ...outcome, sum: null, hasSum: outcome.sum !== null && outcome.contributors > 0 };
}

/** The shard sums revealed to the coordinator under a child: one entry per sum, its contributors. */
export function revealedBy(row: ChildRow): number[] {
  if (row.revealed) return row.revealed;
  return row.hasSum ? [row.contributors] : [];
}

/**
 * Chunked byte values next to a node's small state (Durable Object storage, or memory). `save`
 * writes the state and the given sums in one atomic step, so a crash never leaves a sum counted
 * without its row or a row without its sum.
 */
export interface SumStore<State> {
  save(state: State, sums?: Record<string, Uint8Array>): Promise<void>;
  sum(key: string): Promise<Uint8Array | null>;
  deleteSums(keys: string[]): Promise<void>;
}

/** Splits bytes into storage entries: `key` → chunk count, `key#i` → chunk i. */
export function chunkEntries(key: string, bytes: Uint8Array): Record<string, unknown> {
  const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));
  const entries: Record<string, unknown> = { [key]: { chunks, bytes: bytes.length } };
  for (let i = 0; i < chunks; i++)
    entries[`${key}#${i}`] = bytes.slice(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES);
  return entries;
}

/** Joins chunks read back by {@link chunkEntries}'s keys; null when any is missing. */
export async function joinChunks(
  key: string,
  get: (key: string) => Promise<unknown>,
): Promise<Uint8Array | null> {
  const header = (await get(key)) as { chunks: number; bytes: number } | undefined;
  if (!header) return null;
  const out = new Uint8Array(header.bytes);
  for (let i = 0; i < header.chunks; i++) {
    const chunk = await get(`${key}#${i}`);
    if (!(chunk instanceof Uint8Array)) return null;
    out.set(chunk, i * CHUNK_BYTES);
  }
  return out;
}

/** Keys {@link chunkEntries} writes for `key` with `chunks` chunks. */
export function chunkKeys(key: string, chunks: number): string[] {
  return [key, ...Array.from({ length: chunks }, (_, i) => `${key}#${i}`)];
}

export const wordsOf = (bytes: Uint8Array) =>
  new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
export const doublesOf = (bytes: Uint8Array) =>
  new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
export const bytesOf = (view: Uint32Array | Float64Array) =>
  new Uint8Array(view.buffer, view.byteOffset, view.byteLength);

/** What a node over shards makes of their sums: one sum to pass up, and the devices in it. */
export interface CombinedChildren {
  sum: Uint8Array;
  sumKind: "u32" | "f64";
  survivors: number;
  rejected: number[];
}

/**
 * Combines the sums of the shards under one node. Distributed DP: range check and trimmed mean
 * of shard means (`combineShardSums`), per node, so a lying device still spoils at most its shard
 * and a tree of nodes composes by exact addition of the nodes' combined sums. Central DP: the
 * modular sum. Fixed point: the exact sum as doubles (shard sums are below 2^32, totals below 2^53).
 */
export function combineChildren(
  dp: DpRoundConfig | undefined,
  dim: number,
  shards: ReadonlyArray<ShardSum>,
): CombinedChildren {
  if (dp?.mechanism === "distributed_discrete_gaussian") {
    const combined = combineShardSums(dp, shards, dim);
    return {
      sum: bytesOf(combined.total),
      sumKind: "u32",
      survivors: combined.survivors,
      rejected: combined.rejected.map((r) => r.shard),
    };
  }
  const survivors = shards.reduce((n, s) => n + s.contributors, 0);
  if (dp) {
    const total = new Uint32Array(dim);
    for (const s of shards) addModular(total, s.words);
    return { sum: bytesOf(total), sumKind: "u32", survivors, rejected: [] };
  }
  const total = new Float64Array(dim);
  for (const s of shards)
    for (let i = 0; i < dim; i++) total[i] = (total[i] as number) + (s.words[i] as number);
  return { sum: bytesOf(total), sumKind: "f64", survivors, rejected: [] };
}

/** Adds a child's sum into a running total of the same kind (mod 2^32 words, or doubles). */
export function foldInto(
  total: Uint8Array | null,
  sum: Uint8Array,
  kind: "u32" | "f64",
  dim: number,
): Uint8Array {
  if (kind === "u32") {
    const acc = total ? wordsOf(total) : new Uint32Array(dim);
    addModular(acc, wordsOf(sum));
    return bytesOf(acc);
  }
  const acc = total ? doublesOf(total) : new Float64Array(dim);
  const add = doublesOf(sum);
  for (let i = 0; i < dim; i++) acc[i] = (acc[i] as number) + (add[i] as number);
  return bytesOf(acc);
}
