/**
 * The memory store: the fallback when IndexedDB is missing, blocked, full, wiped or not
 * consented to, and the node default (replay). Same semantics as the IndexedDB store; every
 * operation does its work synchronously inside the call, which satisfies the ordering contract
 * of `ProfileStore`. Values are cloned on the way out (and on the way in, except immutable
 * events), so callers never share mutable state with the store, as with IndexedDB.
 */
import type { StoredEvent } from "../events/schemas";
import { cloneFeatureState, type FeatureState } from "../features/state";
import type { CachedModel, MetaValues, OutboxItem, ProfileStore } from "./types";

/** A memory store, optionally seeded with accumulators (when falling back from IndexedDB). */
export function createMemoryStore(seed?: FeatureState): ProfileStore {
  let journal = new Map<string, StoredEvent>();
  let log = new Map<string, StoredEvent>();
  let state: FeatureState | null = seed ? cloneFeatureState(seed) : null;
  let models = new Map<string, CachedModel>();
  let outbox = new Map<string, OutboxItem>();
  let meta: Partial<MetaValues> = {};

  const done = Promise.resolve();
  const run = <T>(work: () => T): Promise<T> => {
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(error);
    }
  };

  return {
    kind: "memory",
    append(events) {
      // Tracked events are immutable once created (the profiler builds them from the
      // validated copy, and nothing writes to them), so they are kept by reference here and
      // cloned only on the way out, in `events()`.
      for (const event of events) journal.set(event.id, event);
      return done;
    },
    fold(reduce, limits) {
      return run(() => {
        const fresh = [...journal.values()].filter((event) => !log.has(event.id));
        journal = new Map();
        state = fresh.length > 0 || state === null ? reduce(state, fresh) : state;
        for (const event of fresh) log.set(event.id, event);
        const cutoff = limits.now - limits.maxAgeMs;
        if (fresh.length > 0) {
          const kept = [...log.values()].filter((event) => event.t >= cutoff).sort((a, b) => a.t - b.t);
          log = new Map(kept.slice(Math.max(0, kept.length - limits.maxEvents)).map((e) => [e.id, e]));
        }
        return { state: cloneFeatureState(state), folded: fresh.length };
      });
    },
    adopt(seed, events) {
      return run(() => {
        if (state !== null) return false;
        state = cloneFeatureState(seed);
        for (const event of events) log.set(event.id, event);
        return true;
      });
    },
    events: () => run(() => structuredClone([...log.values(), ...journal.values()])),
    compact() {
      log = new Map();
      models = new Map();
      return done;
    },
    putModel(model) {
      models.set(model.modelId, structuredClone(model));
      return done;
    },
    getModel: (modelId) => run(() => structuredClone(models.get(modelId))),
    enqueue(item) {
      outbox.set(item.id, structuredClone(item));
      return done;
    },
    outbox: () => run(() => structuredClone([...outbox.values()])),
    dequeue(ids) {
      for (const id of ids) outbox.delete(id);
      return done;
    },
    getMeta: (key) => run(() => structuredClone(meta[key])),
    setMeta(key, value) {
      meta[key] = structuredClone(value);
      return done;
    },
    clear() {
      journal = new Map();
      log = new Map();
      state = null;
      models = new Map();
      outbox = new Map();
      meta = {};
      return done;
    },
    destroy() {
      return this.clear();
    },
    close() {},
  };
}
