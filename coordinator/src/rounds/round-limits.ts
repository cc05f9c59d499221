/**
 * Bounds checked when a round is opened, before any Durable Object exists (issue 11, finding 2
 * and 3): a round whose state could never be stored, or whose shards would take the runtime
 * down while opening, is refused with a 4xx that names the limit.
 *
 * Sizes are those of a SQLite-backed Durable Object: one stored value holds at most 2 MB
 * (Cloudflare, "Durable Objects limits"); the budget keeps a margin under it. The estimates are upper bounds of the structured-clone
 * encoding: a double takes 9 bytes, a base64 string one byte per character.
 */

import type { OpenRoundRequest } from "@fedprofile/protocol/wire";
import { ConflictError, InvalidRequestError } from "../errors";
import { aggregatorCount, FAN_OUT } from "./shard-tree";

/** The limits a coordinator enforces at open; each is named in the error that refuses a round. */
export interface RoundLimits {
  /** Shards (Durable Objects) one SecAgg round may open. */
  maxShards: number;
  /** Rounds of one model that may be collecting at once. */
  maxOpenRoundsPerModel: number;
  /** Bytes one stored value may take (a Durable Object value: 2 MB). */
  maxStateValueBytes: number;
}

export const DEFAULT_ROUND_LIMITS: RoundLimits = {
  // Shards open lazily on their first join (./lazy-shards.ts), so a round's open costs O(1)
  // subrequests whatever this is: 10^7 devices (the schema's cap) in shards of 1,000 (the default)
  // is 10,000 shards under 313 aggregators, whose rows the root keeps (313 x 512 B).
  maxShards: 10_000,
  // A trainer runs one round at a time; a few more leave room for an operator's own rounds.
  maxOpenRoundsPerModel: 4,
  // Under the documented 2 MB: workerd's SQLite refused a 1,998,893-byte value (SQLITE_TOOBIG).
  maxStateValueBytes: 1_500_000,
};

/** Bytes of the base64 text of `words` little-endian u32 words (how a SecAgg sum is stored). */
function sumBytes(words: number): number {
  return 4 * Math.ceil((4 * words) / 3);
}

const nextPowerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
/** A plain-sum participant: its id, its token's SHA-256 hex and a flag, with the keys. */
const PLAIN_PARTICIPANT_BYTES = 160;
/**
 * A child's row in the root's state (its sum is stored apart, chunked: `./shard-tree.ts`), with
 * an aggregator's list of the contributors of up to FAN_OUT shard sums.
 */
const OUTCOME_BYTES = 512;

/** Throws {@link InvalidRequestError} (400) naming the limit a round's parameters exceed. */
export function assertRoundFits(request: OpenRoundRequest, limits: RoundLimits = DEFAULT_ROUND_LIMITS): void {
  const max = limits.maxStateValueBytes;
  if (request.aggregation === "plain-sum") {
    // The whole round (running float64 sum and every participant) is one stored value.
    const bytes = 9 * request.dimension + PLAIN_PARTICIPANT_BYTES * 2 * request.maxContributions;
    if (bytes > max) {
      const most = Math.floor((max - PLAIN_PARTICIPANT_BYTES * 2 * request.maxContributions) / 9);
      throw new InvalidRequestError(
        `dimension: a plain-sum round of ${request.dimension} values for up to ${request.maxContributions} devices needs about ${bytes} bytes of round state, over the limit of ${max} bytes a Durable Object value holds (at most ${Math.max(0, most)} values at this cohort); use aggregation "secagg"`,
        { code: "round_state_too_large" },
      );
    }
    return;
  }
  const secagg = request.secagg;
  if (!secagg) return;
  const shards = Math.ceil(request.maxContributions / secagg.maxShardSize);
  if (shards > limits.maxShards) {
    throw new InvalidRequestError(
      `secagg.maxShardSize: ${request.maxContributions} devices in shards of at most ${secagg.maxShardSize} make ${shards} shards, over the limit of ${limits.maxShards} shards per round; raise maxShardSize to at least ${Math.ceil(request.maxContributions / limits.maxShards)}`,
      { code: "too_many_shards" },
    );
  }
  // DP rounds sum the rotated vector padded to a power of two (plus the clip indicator).
  const words = request.dp ? nextPowerOfTwo(request.dimension + 1) : request.dimension;
  // A shard keeps its running sum as one value; nodes above it keep only rows and chunked sums.
  const shardSum = sumBytes(words);
  // The root keeps one row per child and each shard's size (9 B a double).
  const children = shards > FAN_OUT ? aggregatorCount(shards) : shards;
  const rootState = children * OUTCOME_BYTES + 9 * shards;
  if (shardSum > max || rootState > max) {
    throw new InvalidRequestError(
      `dimension: ${request.dimension} values (${words} words summed) need ${shardSum} bytes for a shard's sum, over the limit of ${max} bytes a Durable Object value holds; use a smaller dimension (at most about ${Math.floor((3 * max) / 16)} words)`,
      { code: "round_state_too_large" },
    );
  }
}

/** Throws {@link ConflictError} (409) when the model already has `open` rounds at the limit. */
export function assertOpenRoundsBelowLimit(
  modelId: string,
  open: number,
  limits: RoundLimits = DEFAULT_ROUND_LIMITS,
): void {
  if (open >= limits.maxOpenRoundsPerModel) {
    throw new ConflictError(
      "too_many_open_rounds",
      `model ${modelId} has ${open} rounds opening or collecting, the limit of open rounds per model is ${limits.maxOpenRoundsPerModel}; wait for one to end`,
    );
  }
}
