/**
 * No database on a device request's hot path (issue 16): the tenant, the API key and a round's
 * index row are read from D1 once per isolate and kept for a short TTL. Issue 16's model found
 * 3 D1 queries per device request; D1 serves about 1,000 queries/s, and a round of 10^5 devices
 * polling makes several thousand. Only found rows are cached, so a new tenant, key or round is
 * seen at once. A revoked key, or a round that ended, is seen within the TTL; the shard refuses
 * a device whose round has moved on in any case.
 */

import type { RoundInfo } from "@fedprofile/protocol/wire";
import type { ApiKeyRecord, Clock, ModelStore, RoundIndex, Tenant, TenantStore } from "../ports";

export interface HotPathCacheOptions {
  /** How long a found row is served from memory (default 5 s for rounds, 30 s for keys). */
  ttlMs?: number;
  /** Entries kept per cache (oldest dropped first). */
  maxEntries?: number;
  clock?: Clock;
}

/** A TTL cache of found values (and misses, with `keepMisses`), bounded in size, in-flight reads shared. */
function ttlCache<T>(ttlMs: number, maxEntries: number, clock: Clock, keepMisses = false) {
  const entries = new Map<string, { at: number; value: Promise<T | null> }>();
  return {
    get(key: string, load: () => Promise<T | null>): Promise<T | null> {
      const hit = entries.get(key);
      if (hit && clock() - hit.at < ttlMs) return hit.value;
      const value = load();
      entries.set(key, { at: clock(), value });
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
      // A miss or a failure is not kept: the next request asks the database again.
      value.then(
        (found) => {
          if (found === null && !keepMisses && entries.get(key)?.value === value) entries.delete(key);
        },
        () => {
          if (entries.get(key)?.value === value) entries.delete(key);
        },
      );
      return value;
    },
    drop(key: string) {
      entries.delete(key);
    },
  };
}

/** `inner` with tenants and keys cached for `ttlMs` (default 30 s). */
export function cachedTenantStore(inner: TenantStore, options: HotPathCacheOptions = {}): TenantStore {
  const clock = options.clock ?? Date.now;
  const ttl = options.ttlMs ?? 30_000;
  const max = options.maxEntries ?? 10_000;
  const tenants = ttlCache<Tenant>(ttl, max, clock);
  const keys = ttlCache<ApiKeyRecord>(ttl, max, clock);
  return {
    findTenant: (tenantId) => tenants.get(tenantId, () => inner.findTenant(tenantId)),
    findApiKey: (tenantId, keyHash) =>
      keys.get(`${tenantId}/${keyHash}`, () => inner.findApiKey(tenantId, keyHash)),
  };
}

/** `inner` with `get` cached for `ttlMs` (default 5 s); writes through this index drop the entry. */
export function cachedRoundIndex(inner: RoundIndex, options: HotPathCacheOptions = {}): RoundIndex {
  const clock = options.clock ?? Date.now;
  const rounds = ttlCache<RoundInfo>(options.ttlMs ?? 5_000, options.maxEntries ?? 10_000, clock);
  return {
    insert: async (tenantId, info) => {
      await inner.insert(tenantId, info);
      rounds.drop(`${tenantId}/${info.roundId}`);
    },
    // Not cached: a round that ended early (every shard reported) would be served for the TTL,
    // and devices would join a round that has moved on (the training workers test caught it).
    findOpen: (tenantId, modelId, now) => inner.findOpen(tenantId, modelId, now),
    countOpen: (tenantId, modelId) => inner.countOpen(tenantId, modelId),
    reserveOpen: (...args) => inner.reserveOpen(...args),
    releaseOpen: (tenantId, roundId) => inner.releaseOpen(tenantId, roundId),
    get: (tenantId, roundId) => rounds.get(`${tenantId}/${roundId}`, () => inner.get(tenantId, roundId)),
    markEnded: async (tenantId, roundId, stage, modelVersion) => {
      await inner.markEnded(tenantId, roundId, stage, modelVersion);
      rounds.drop(`${tenantId}/${roundId}`);
    },
  };
}

/**
 * `inner` with check-in's `latestVersion` cached for `ttlMs` (default 5 s), "none yet" too, so a
 * check-in reads neither D1 nor a model row; a publish through this store drops the entry.
 */
export function cachedModelVersions(inner: ModelStore, options: HotPathCacheOptions = {}): ModelStore {
  const clock = options.clock ?? Date.now;
  const versions = ttlCache<number>(options.ttlMs ?? 5_000, options.maxEntries ?? 10_000, clock, true);
  const read = (tenantId: string, modelId: string) =>
    inner.latestVersion
      ? inner.latestVersion(tenantId, modelId)
      : inner.latest(tenantId, modelId).then((m) => m?.version ?? null);
  return {
    publish: async (tenantId, draft, publishedAt) => {
      const published = await inner.publish(tenantId, draft, publishedAt);
      versions.drop(`${tenantId}/${draft.modelId}`);
      return published;
    },
    latest: (tenantId, modelId) => inner.latest(tenantId, modelId),
    latestVersion: (tenantId, modelId) =>
      versions.get(`${tenantId}/${modelId}`, () => read(tenantId, modelId)),
    get: (tenantId, modelId, version) => inner.get(tenantId, modelId, version),
    list: (tenantId, modelId, page) => inner.list(tenantId, modelId, page),
    ...(inner.weights ? { weights: inner.weights.bind(inner) } : {}),
  };
}
