/**
 * Where a node of a SecAgg round's aggregation tree lives (`coordinator/src/rounds/shard-tree.ts`):
 * the stub of a shard's parent (the root, or its aggregator), an aggregator's handle, and the
 * chunked storage every node above the shards uses.
 */
import {
  type AggregatorHandle,
  type ChildOutcome,
  chunkEntries,
  chunkKeys,
  joinChunks,
  type NodeStore,
  parentOf,
  type SecAggRootHandle,
  type ShardMeta,
} from "@fedprofile/coordinator";
import type { Env } from "./env";
import { roundStub, unwrap } from "./rpc";

const STATE_KEY = "round";

/**
 * A node's state as one small value, its sums chunked beside it; `save` is one `put` of at most
 * 128 entries, which Durable Object storage applies atomically.
 */
export function nodeStore<State>(storage: DurableObjectStorage): NodeStore<State> {
  return {
    load: async () => (await storage.get<State>(STATE_KEY)) ?? null,
    save: async (state, sums = {}) => {
      const entries: Record<string, unknown> = { [STATE_KEY]: state };
      for (const [key, bytes] of Object.entries(sums)) Object.assign(entries, chunkEntries(key, bytes));
      const all = Object.entries(entries);
      // A put takes at most 128 entries: the state goes in the last batch, after every chunk.
      for (let i = 0; i < all.length; i += 128) {
        const batch = all.length - i > 128 ? all.slice(i, i + 128) : all.slice(i);
        await storage.put(Object.fromEntries(batch));
      }
    },
    sum: (key) => joinChunks(key, (k) => storage.get(k)),
    deleteSums: async (keys) => {
      for (const key of keys) {
        const header = await storage.get<{ chunks: number }>(key);
        if (header) await storage.delete(chunkKeys(key, header.chunks));
      }
    },
    setAlarm: (at) => storage.setAlarm(at),
    deleteAlarm: () => storage.deleteAlarm(),
    deleteAll: async () => {
      await storage.deleteAlarm();
      await storage.deleteAll();
    },
  };
}

/** The aggregator `index` of a round. */
export function aggregatorHandle(
  env: Env,
  tenantId: string,
  roundId: string,
  index: number,
): AggregatorHandle {
  const stub = env.AGGREGATOR.get(env.AGGREGATOR.idFromName(`${tenantId}/${roundId}/agg/${index}`));
  return {
    open: async (config) => unwrap(await stub.open(config)),
    shardFinished: async (outcome) => unwrap(await stub.shardFinished(outcome)),
    close: async () => unwrap(await stub.close()),
    registerShard: async (meta, config) => unwrap(await stub.registerShard(meta, config)),
  };
}

/** Where shard `meta.shard` reports: its aggregator in a round of many shards, else the root. */
export function parentHandle(env: Env, meta: ShardMeta): SecAggRootHandle {
  const parent = parentOf(meta.shard, meta.shards ?? 0);
  if (parent.kind === "aggregator") return aggregatorHandle(env, meta.tenantId, meta.roundId, parent.index);
  const root = roundStub(env, meta.tenantId, meta.roundId);
  return {
    shardFinished: async (outcome: ChildOutcome) => unwrap(await root.shardFinished(outcome)),
    registerShard: async (shardMeta) => unwrap(await root.registerShard(shardMeta)),
  };
}

/** Delivers a shard's report to its parent, as the shard itself would (tests, synthetic reports). */
export function reportTo(env: Env, meta: ShardMeta, shards: number, outcome: ChildOutcome): Promise<void> {
  return parentHandle(env, { ...meta, shards }).shardFinished(outcome);
}

/** Registers a shard with its parent, as its first join would (tests, synthetic reports). */
export function registerAt(env: Env, meta: ShardMeta, shards: number): Promise<unknown> {
  const full = { ...meta, shards };
  return parentHandle(env, full).registerShard(full);
}
