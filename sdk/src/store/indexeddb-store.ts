/**
 * The IndexedDB store (through idb). See `types.ts` for the layout and the multi-tab argument.
 * Opening can fail in many real ways: no `indexedDB` (old webviews), a SecurityError (opaque
 * origins, sandboxed frames, storage blocked by the user), an open that never completes
 * (blocked by another tab holding an older version, broken private modes). Each becomes a
 * `StorageError` with a stable code, within `openTimeoutMs`, so the profiler can fall back.
 */
import { type DBSchema, type IDBPDatabase, type IDBPObjectStore, openDB } from "idb";
import { StorageError, toError } from "../errors";
import type { StoredEvent } from "../events/schemas";
import { type FeatureState, isFeatureState } from "../features/state";
import type { CachedModel, FoldResult, MetaValues, OutboxItem, ProfileStore, RetentionLimits } from "./types";

/** Schema version of the database; bump it with a migration in `upgrade`. */
export const DB_VERSION = 2;

type MetaRecord = { [K in keyof MetaValues]: { key: K; value: MetaValues[K] } }[keyof MetaValues];

interface ProfileDb extends DBSchema {
  journal: { key: string; value: StoredEvent };
  events: { key: string; value: StoredEvent; indexes: { t: number } };
  state: { key: string; value: FeatureState };
  models: { key: string; value: CachedModel };
  outbox: { key: string; value: OutboxItem };
  meta: { key: string; value: MetaRecord };
}

const STORES = ["journal", "events", "state", "models", "outbox", "meta"] as const;
const STATE_KEY = "features";

/** Why an open IndexedDB connection went away underneath the store. */
export type LostReason = "versionchange" | "terminated";

/** Options of `openIndexedDbStore`. */
export interface IndexedDbStoreOptions {
  /** Database name. */
  name: string;
  /** Give up opening after this long (default 3000 ms). */
  openTimeoutMs?: number;
  /**
   * Called once if the connection goes away: another connection needs a version change or
   * deletion (`versionchange`, the store has closed itself), or the browser closed it because
   * storage was cleared (`terminated`).
   */
  onLost?: (reason: LostReason) => void;
  /** Called when the open had to create the database: none existed (a first visit, or evicted). */
  onCreate?: () => void;
}

function indexedDbOrThrow(): IDBFactory {
  try {
    if (typeof indexedDB !== "undefined" && indexedDB) return indexedDB;
  } catch (cause) {
    throw new StorageError("storage_unavailable", "IndexedDB access is denied here", { cause });
  }
  throw new StorageError("storage_unavailable", "IndexedDB is not available in this environment");
}

/** Opens (creating or upgrading) the profile database. Rejects with a `StorageError`. */
export async function openIndexedDbStore(options: IndexedDbStoreOptions): Promise<ProfileStore> {
  indexedDbOrThrow();
  let lost = false;
  const markLost = (reason: LostReason) => {
    if (lost) return;
    lost = true;
    options.onLost?.(reason);
  };
  let opened: Promise<IDBPDatabase<ProfileDb>>;
  let blocked = false;
  try {
    opened = openDB<ProfileDb>(options.name, DB_VERSION, {
      upgrade(db, oldVersion) {
        if (oldVersion === 0) options.onCreate?.();
        // Stores from an older layout (the walking skeleton's `events` had no index) are dropped.
        for (const name of [...db.objectStoreNames]) db.deleteObjectStore(name);
        db.createObjectStore("journal", { keyPath: "id" });
        db.createObjectStore("events", { keyPath: "id" }).createIndex("t", "t");
        db.createObjectStore("state");
        db.createObjectStore("models", { keyPath: "modelId" });
        db.createObjectStore("outbox", { keyPath: "id" });
        db.createObjectStore("meta", { keyPath: "key" });
      },
      blocked() {
        blocked = true;
      },
      blocking() {
        // Let the other connection (a newer version, or forget() deleting the database) proceed.
        db?.close();
        markLost("versionchange");
      },
      terminated() {
        markLost("terminated");
      },
    });
  } catch (cause) {
    throw new StorageError("storage_unavailable", `IndexedDB cannot be opened: ${toError(cause).message}`, {
      cause,
    });
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // If it opens after all, close it so it blocks nobody.
      opened.then((late) => late.close()).catch(() => {});
      reject(
        blocked
          ? new StorageError("storage_blocked", "IndexedDB open is blocked by another tab's connection")
          : new StorageError("storage_unavailable", "IndexedDB open did not complete"),
      );
    }, options.openTimeoutMs ?? 3000);
  });
  let db: IDBPDatabase<ProfileDb> | undefined;
  try {
    db = await Promise.race([opened, timeout]);
  } catch (cause) {
    if (cause instanceof StorageError) throw cause;
    throw new StorageError("storage_unavailable", `IndexedDB cannot be opened: ${toError(cause).message}`, {
      cause,
    });
  } finally {
    clearTimeout(timer);
  }
  return wrapDatabase(db, options.name);
}

type LogStore = IDBPObjectStore<ProfileDb, ArrayLike<"journal" | "events" | "state">, "events", "readwrite">;

async function prune(log: LogStore, limits: RetentionLimits): Promise<void> {
  const byTime = log.index("t");
  let cursor = await byTime.openCursor(IDBKeyRange.upperBound(limits.now - limits.maxAgeMs, true));
  while (cursor) {
    cursor.delete();
    cursor = await cursor.continue();
  }
  let excess = (await log.count()) - limits.maxEvents;
  if (excess <= 0) return;
  cursor = await byTime.openCursor();
  while (cursor && excess > 0) {
    cursor.delete();
    excess -= 1;
    cursor = await cursor.continue();
  }
}

function wrapDatabase(db: IDBPDatabase<ProfileDb>, name: string): ProfileStore {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    db.close();
  };
  return {
    kind: "indexeddb",
    async append(events) {
      const tx = db.transaction("journal", "readwrite", { durability: "relaxed" });
      for (const event of events) tx.store.put(event);
      // Commit now rather than when the event loop next turns: this is what lets a write
      // issued from `pagehide` reach disk before the document is torn down.
      tx.commit();
      await tx.done;
    },
    fold(reduce, limits): Promise<FoldResult> {
      const tx = db.transaction(["journal", "events", "state"], "readwrite");
      return (async () => {
        const journal = tx.objectStore("journal");
        const log = tx.objectStore("events");
        const stateStore = tx.objectStore("state");
        const [pending, stored] = await Promise.all([journal.getAll(), stateStore.get(STATE_KEY)]);
        const seen = await Promise.all(pending.map((event) => log.getKey(event.id)));
        const fresh = pending.filter((_, i) => seen[i] === undefined);
        const base = isFeatureState(stored) ? stored : null;
        let state = base;
        if (fresh.length > 0 || state === null) {
          state = reduce(base, fresh);
          stateStore.put(state, STATE_KEY);
        }
        if (pending.length > 0) journal.clear();
        for (const event of fresh) log.put(event);
        if (fresh.length > 0) await prune(log, limits);
        await tx.done;
        return { state, folded: fresh.length };
      })();
    },
    async adopt(state, events) {
      const tx = db.transaction(["events", "state"], "readwrite");
      const stateStore = tx.objectStore("state");
      if (isFeatureState(await stateStore.get(STATE_KEY))) {
        await tx.done;
        return false;
      }
      stateStore.put(state, STATE_KEY);
      const log = tx.objectStore("events");
      for (const event of events) log.put(event);
      await tx.done;
      return true;
    },
    async events() {
      const tx = db.transaction(["events", "journal"], "readonly");
      const [log, journal] = await Promise.all([
        tx.objectStore("events").index("t").getAll(),
        tx.objectStore("journal").getAll(),
      ]);
      await tx.done;
      return [...log, ...journal];
    },
    async compact() {
      const tx = db.transaction(["events", "models"], "readwrite");
      tx.objectStore("events").clear();
      tx.objectStore("models").clear();
      await tx.done;
    },
    async putModel(model) {
      await db.put("models", model);
    },
    getModel: (modelId) => db.get("models", modelId),
    async enqueue(item) {
      await db.put("outbox", item);
    },
    outbox: () => db.getAll("outbox"),
    async dequeue(ids) {
      const tx = db.transaction("outbox", "readwrite");
      for (const id of ids) tx.store.delete(id);
      await tx.done;
    },
    async getMeta<K extends keyof MetaValues>(key: K): Promise<MetaValues[K] | undefined> {
      const record = await db.get("meta", key);
      return record ? META_READERS[key](record) : undefined;
    },
    async setMeta(key, value) {
      await db.put("meta", metaRecord(key, value));
    },
    async clear() {
      const tx = db.transaction([...STORES], "readwrite");
      for (const store of STORES) tx.objectStore(store).clear();
      await tx.done;
    },
    async destroy() {
      close();
      await deleteDatabase(name);
    },
    close,
  };
}

const META_READERS: { [P in keyof MetaValues]: (record: MetaRecord) => MetaValues[P] | undefined } = {
  consent: (record) => (record.key === "consent" ? record.value : undefined),
  rounds: (record) => (record.key === "rounds" ? record.value : undefined),
};

function metaRecord<K extends keyof MetaValues>(key: K, value: MetaValues[K]): MetaRecord {
  const records: { [P in keyof MetaValues]: (v: MetaValues[P]) => MetaRecord } = {
    consent: (v) => ({ key: "consent", value: v }),
    rounds: (v) => ({ key: "rounds", value: v }),
  };
  return records[key](value);
}

/**
 * Deletes the database `name`. Other tabs' connections close themselves on `versionchange`
 * (see `blocking` above); if one does not within `timeoutMs`, this rejects.
 */
export function deleteDatabase(name: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let factory: IDBFactory;
    try {
      factory = indexedDbOrThrow();
    } catch {
      resolve(); // nothing can be stored where IndexedDB does not exist
      return;
    }
    const timer = setTimeout(
      () => reject(new StorageError("storage_blocked", `deleting ${name} is blocked by another connection`)),
      timeoutMs,
    );
    try {
      const request = factory.deleteDatabase(name);
      request.onsuccess = () => {
        clearTimeout(timer);
        resolve();
      };
      request.onerror = () => {
        clearTimeout(timer);
        reject(new StorageError("storage_failed", `deleting ${name} failed`, { cause: request.error }));
      };
    } catch (cause) {
      clearTimeout(timer);
      reject(new StorageError("storage_unavailable", `deleting ${name} failed`, { cause }));
    }
  });
}
