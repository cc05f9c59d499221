/**
 * Join routing without the root (issue 16): the Worker that takes a join picks the shard itself,
 * so joins spread over the shard objects instead of queueing at the round's one root object
 * (issue 11's 1,000-device load run: join p50 69.6 s).
 *
 * `joinKey` is the admission token's nonce when the join carries one (the team's agreement with
 * the admission module: a double-spend always lands on the same shard, whose storage holds the
 * spent set), else fresh random bytes.
 */
import { sha256 } from "@noble/hashes/sha2.js";

/** The shard of `shardCount` a join with `joinKey` goes to: SHA-256(joinKey) as a 64-bit integer mod n. */
export function pickShard(joinKey: Uint8Array, shardCount: number): number {
  if (!Number.isInteger(shardCount) || shardCount < 1)
    throw new RangeError("shardCount must be a positive integer");
  const digest = sha256(joinKey);
  let value = 0n;
  for (let i = 0; i < 8; i++) value = (value << 8n) | BigInt(digest[i] as number);
  // The modulo bias is below shardCount / 2^64: negligible for any shard count.
  return Number(value % BigInt(shardCount));
}

/**
 * Whether a shard's refusal of a join means "try the next shard": it is full, or every device it
 * admitted has advertised keys and it has moved past advertise-keys while the round still takes
 * joins elsewhere (with lazy open, joins arrive spread out, so this is common).
 */
export function isShardClosedToJoins(code: string): boolean {
  return code === "round_full" || code === "round_not_collecting";
}
