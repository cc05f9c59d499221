/**
 * No database on a device request's hot path (issue 16): the tenant, the API key and a round's
 * index row are read from D1 once per isolate and kept for a short TTL. Issue 16's model found
 * 3 D1 queries per device request; D1 serves about 1,000 queries/s, and a round of 10^5 devices
 * polling makes several thousand. Only found rows are cached, so a new tenant, key or round is
 * seen at once. A revoked key, or a round that ended, is seen within the TTL; the shard refuses
 * a device whose round has moved on in any case.
 *
 * Check-in's open round and model version are kept too, "none" included, and dropped in this
 * isolate whenever this isolate opens, ends or publishes one of the tenant's rounds (a tenant
 * generation, below). Elsewhere (another isolate) such a change is seen within the TTL.
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

/**
 * Per tenant, how many times this isolate has opened, ended or published one of its rounds. It is
 * module state, so shared by the Worker's app and the Durable Objects in the same isolate: a
 * cached open round or model version read before the tenant's latest change is not served.
 */
const tenantGenerations = new Map<string, number>();
const generationOf = (tenantId: string) => tenantGenerations.get(tenantId) ?? 0;
/** Drops, in this isolate, every cached open round and model version of `tenantId`. */
function roundsChanged(tenantId: string): void {
  tenantGenerations.set(tenantId, generationOf(tenantId) + 1);
}

/**
 * A TTL cache of found values (and misses, with `keepMisses`), bounded in size, in-flight reads
 * shared. With `generation`, an entry read under an older generation of its tenant is a miss.
 */
function ttlCache<T>(
  ttlMs: number,
  maxEntries: number,
  clock: Clock,
  keepMisses = false,
  generation?: (key: string) => number,
) {
  const entries = new Map<string, { at: number; generation: number; value: Promise<T | null> }>();
  return {
    get(key: string, load: () => Promise<T | null>): Promise<T | null> {
      const hit = entries.get(key);
      const current = generation?.(key) ?? 0;
      if (hit && clock() - hit.at < ttlMs && hit.generation === current) return hit.value;
      const value = load();
      entries.delete(key);
      entries.set(key, { at: clock(), generation: current, value });
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

const tenantOfKey = (key: string) => key.slice(0, key.indexOf("/"));

/**
 * `inner` that tells this isolate's caches when a round of a tenant opens or ends through it:
 * the index of a Durable Object that opens or ends rounds (RoundDO, TrainerDO) is wrapped in it,
 * so a check-in in the same isolate right after sees the change.
 */
export function noticingRoundIndex(inner: RoundIndex): RoundIndex {
  return {
    insert: async (tenantId, info) => {
      await inner.insert(tenantId, info);
      roundsChanged(tenantId);
    },
    findOpen: (tenantId, modelId, now) => inner.findOpen(tenantId, modelId, now),
    countOpen: (tenantId, modelId) => inner.countOpen(tenantId, modelId),
    reserveOpen: (...args) => inner.reserveOpen(...args),
    // The Worker's open gives its place back once the round is open (in the index): seen from now.
    releaseOpen: async (tenantId, roundId) => {
      await inner.releaseOpen(tenantId, roundId);
      roundsChanged(tenantId);
    },
    get: (tenantId, roundId) => inner.get(tenantId, roundId),
    markEnded: async (tenantId, roundId, stage, modelVersion) => {
      await inner.markEnded(tenantId, roundId, stage, modelVersion);
      roundsChanged(tenantId);
    },
  };
}

/**
 * `inner` with `get` and check-in's `findOpen` cached for `ttlMs` (default 5 s; `openTtlMs`, 3 s,
 * for the open round). `findOpen` keeps "no open round" too, so check-ins while nothing is open
 * read no D1 either; an open, end or publish in this isolate drops it (see `noticingRoundIndex`).
 */
export function cachedRoundIndex(
  inner: RoundIndex,
  options: HotPathCacheOptions & { openTtlMs?: number } = {},
): RoundIndex {
  const clock = options.clock ?? Date.now;
  const max = options.maxEntries ?? 10_000;
  const rounds = ttlCache<RoundInfo>(options.ttlMs ?? 5_000, max, clock);
  const open = ttlCache<RoundInfo>(options.openTtlMs ?? 3_000, max, clock, true, (key) =>
    generationOf(tenantOfKey(key)),
  );
  const noticing = noticingRoundIndex(inner);
  return {
    ...noticing,
    insert: async (tenantId, info) => {
      await noticing.insert(tenantId, info);
      rounds.drop(`${tenantId}/${info.roundId}`);
    },
    findOpen: async (tenantId, modelId, now) => {
      const found = await open.get(`${tenantId}/${modelId}`, () => inner.findOpen(tenantId, modelId, now));
      // A cached round past its join window is not served (the query asks `closes_at > now`).
      return found && found.stage === "collecting" && found.closesAt > now ? found : null;
    },
    get: (tenantId, roundId) => rounds.get(`${tenantId}/${roundId}`, () => inner.get(tenantId, roundId)),
    markEnded: async (tenantId, roundId, stage, modelVersion) => {
      await noticing.markEnded(tenantId, roundId, stage, modelVersion);
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
  // A round that closes with a model in this isolate bumps the tenant's generation: seen at once.
  const versions = ttlCache<number>(
    options.ttlMs ?? 5_000,
    options.maxEntries ?? 10_000,
    clock,
    true,
    (key) => generationOf(tenantOfKey(key)),
  );
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
