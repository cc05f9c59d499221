/**
 * Keeps the in-memory profile and the device store in step, across tabs, through failures.
 *
 * In memory:
 * - `view`: the accumulators this tab shows, i.e. what the store held at the last fold plus
 *   every event tracked here since. `add()` folds an event into it in O(1).
 * - `pending`: events not yet handed to the store.
 *
 * Writing: a flush appends `pending` to the journal (blind puts), then folds the journal into
 * the stored accumulators in one atomic transaction and rebuilds `view` from the result plus
 * whatever was tracked meanwhile. Flushes are batched (`flushIntervalMs`, `maxBatch`) and run
 * one at a time. On `visibilitychange` to hidden and on `pagehide` the pending events are
 * appended immediately, without waiting for a running flush: blind writes need no read, so
 * they can commit while the page is being torn down, and the next fold (in this tab after a
 * back/forward restore, in another tab, or on the next visit) folds them. A transaction that
 * has to wait for another tab's (say, one folding at that moment) is aborted when the
 * document goes away, though, so the same batch is also written synchronously to
 * localStorage (one key per tab and batch) and the key is removed once IndexedDB has it; the
 * next page load ingests any leftover key. Ingesting a batch IndexedDB also got is harmless:
 * folding skips event ids it has already folded. Before IndexedDB is open (the CMP wait, a slow
 * or blocked open) the events live in memory only; with storage consent, a page that goes away
 * then spills every one of them (`unsaved`) to localStorage the same way, so the next page
 * load that opens IndexedDB stores them.
 *
 * Several tabs: every fold folds every tab's journaled events, once (see `types.ts`), then
 * posts `changed` on a BroadcastChannel; other tabs fold too, which refreshes their view.
 * Event ids are `<random tab id>.<sequence>`, unique across tabs and reloads.
 *
 * Degradation: a QuotaExceededError first compacts the store (drops the raw log and the
 * model cache; features survive) and retries; if that fails too, or IndexedDB is unavailable,
 * blocked, or its connection is lost (storage cleared, another tab deleting it), the manager
 * falls back to a memory store seeded with `view`, so nothing tracked so far is lost from the
 * profile, and reports it through `onStorage`. Nothing here throws into the page.
 *
 * Consent (`reconcile`): a grant opens IndexedDB and moves the memory profile over (`adopt`:
 * state and log in one transaction when the database holds no profile, else the raw events,
 * which folding deduplicates); a refusal erases the database, and any left by an earlier visit,
 * but keeps `view` in memory, so a later grant loses nothing; undecided changes nothing.
 */
import type { ConsentDecision } from "../consent";
import { isQuotaError, StorageError, type StorageErrorCode, toError } from "../errors";
import { restoreEvent, type StoredEvent } from "../events/schemas";
import { applyEvent, emptyFeatureState, type FeatureConfig, type FeatureState } from "../features/state";
import { deleteDatabase, openIndexedDbStore } from "./indexeddb-store";
import { clearStoreMarker, hasStoreMarker, setStoreMarker } from "./marker";
import { createMemoryStore } from "./memory-store";
import type { FoldReducer, ProfileStore, RetentionLimits } from "./types";

/** A change of storage backend or a storage problem, as reported to the page. */
export interface StorageNotice {
  kind: "indexeddb" | "memory";
  reason: string;
  code?: StorageErrorCode;
  error?: Error;
}

/** Options of `createStoreManager`. */
export interface StoreManagerOptions {
  dbName: string;
  /** False when the page asked for memory storage: IndexedDB is never touched. */
  wantsIndexedDb: boolean;
  /** Current storage consent (read on every reconcile). */
  storageConsent: () => ConsentDecision;
  config: FeatureConfig;
  retention: { maxEvents: number; maxAgeDays: number };
  now: () => number;
  tabId: string;
  flushIntervalMs: number;
  maxBatch: number;
  openTimeoutMs: number;
  /** Listen to page lifecycle events (when a document exists). */
  lifecycle: boolean;
  onStorage: (notice: StorageNotice) => void;
  onError: (error: Error) => void;
  /** Called after a fold changed the profile (own or other tabs' events). */
  onFlush?: (folded: number) => void;
  /** Called when another tab erased the profile. */
  onRemoteForget?: () => void;
}

/** See the module comment. */
export interface StoreManager {
  /** The current accumulators (do not mutate). */
  readonly view: FeatureState;
  /** The current backend. */
  readonly store: ProfileStore;
  /** Records a validated event: folds it into `view` and queues it for the store. */
  add(event: StoredEvent): void;
  /** Writes and folds everything pending; resolves when done (never rejects). */
  flush(): Promise<void>;
  /** Runs `op` after every queued store operation. */
  run<T>(op: () => Promise<T>): Promise<T>;
  /** Re-evaluates storage consent: opens IndexedDB, or erases it and moves to memory (never rejects). */
  reconcile(): Promise<void>;
  /** Erases every store and all in-memory state, here and in other tabs. */
  forget(): Promise<void>;
  /** Flushes, then releases the database, the channel and the listeners. */
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;
/** A BroadcastChannel message from another tab of this origin (checked by hand: see `readChannelMessage`). */
interface ChannelMessage {
  type: "changed" | "forget";
  from: string;
}

/** Reads a channel message, or `null`. Hand-written: a zod schema here costs the core's budget. */
function readChannelMessage(data: unknown): ChannelMessage | null {
  if (typeof data !== "object" || data === null || !("type" in data) || !("from" in data)) return null;
  const { type, from } = data;
  if ((type !== "changed" && type !== "forget") || typeof from !== "string") return null;
  return { type, from };
}

function unref(timer: unknown) {
  if (typeof timer === "object" && timer !== null && "unref" in timer && typeof timer.unref === "function") {
    timer.unref();
  }
}

/** Creates the manager. Call `reconcile()` once to open storage. */
export function createStoreManager(options: StoreManagerOptions): StoreManager {
  const { config, now } = options;
  let view = emptyFeatureState();
  let pending: StoredEvent[] = [];
  /** Appends made outside the queue (lifecycle), tagged with their transaction clock. */
  let bypassed: Array<{ clock: number; events: StoredEvent[] }> = [];
  /** Appends issued by flushes and not settled yet. */
  let inflight: Array<{ events: StoredEvent[]; done: Promise<void> }> = [];
  /** Events tracked since this tab last had IndexedDB open, while it still means to open it. */
  let unsaved: StoredEvent[] = [];
  let txClock = 0;
  let epoch = 0;
  let backend: ProfileStore = createMemoryStore();
  let indexedDbFailed = false;
  let reopenOnWrite = false;
  let closed = false;
  /** The database was erased since the last grant (a refusal erases once). */
  let erased = false;
  let notifiedUndecided = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const reduce: FoldReducer = (base, events) => {
    const state = base ?? emptyFeatureState();
    for (const event of events) applyEvent(state, event, config);
    return state;
  };
  const limits = (): RetentionLimits => ({
    maxEvents: options.retention.maxEvents,
    maxAgeMs: options.retention.maxAgeDays * DAY_MS,
    now: now(),
  });

  const run = <T>(op: () => Promise<T>): Promise<T> => {
    const result = queue.then(op, op);
    queue = result.catch(() => {});
    return result;
  };

  /** `view` = a fold's result + events that fold cannot have seen. */
  function rebuildView(base: FeatureState, foldClock: number) {
    const unseen = bypassed.filter((entry) => entry.clock > foldClock);
    for (const entry of unseen) for (const event of entry.events) applyEvent(base, event, config);
    for (const event of pending) applyEvent(base, event, config);
    bypassed = unseen;
    view = base;
  }

  function fallBackToMemory(code: StorageErrorCode, reason: string, error?: unknown) {
    const old = backend;
    // `view` holds every event tracked so far (flushed or not), so seeding with it loses nothing.
    backend = createMemoryStore(view);
    pending = [];
    bypassed = [];
    unsaved = [];
    indexedDbFailed = true;
    old.close();
    options.onStorage({
      kind: "memory",
      reason,
      code,
      ...(error === undefined ? {} : { error: toError(error) }),
    });
  }

  async function openIndexedDb(): Promise<void> {
    const previous = backend;
    const startEpoch = epoch;
    let store: ProfileStore | undefined;
    let created = false;
    try {
      store = await openIndexedDbStore({
        name: options.dbName,
        openTimeoutMs: options.openTimeoutMs,
        onCreate: () => {
          created = true;
        },
        onLost: (reason) => {
          if (!store || store !== backend) return;
          fallBackToMemory(
            "storage_wiped",
            reason === "versionchange"
              ? "IndexedDB was deleted or upgraded by another tab; continuing in memory"
              : "IndexedDB connection was closed by the browser (storage cleared?); continuing in memory",
          );
        },
      });
      // The memory profile (tracked before consent, or while it was withdrawn) moves over: whole
      // if the database has none, else as raw events. Then the batches other page loads left in
      // localStorage on their way out.
      const spilled = collectSpills();
      const kept = await previous.fold(reduce, limits());
      const keptEvents = await previous.events();
      const adopted = kept.state.eventCount > 0 && (await store.adopt(kept.state, keptEvents));
      const carried = [...(adopted ? [] : keptEvents), ...spilled.events];
      if (carried.length > 0) await store.append(carried);
      const clock = ++txClock;
      const result = await store.fold(reduce, limits());
      removeSpills(spilled.keys);
      if (startEpoch !== epoch) {
        // forget() ran meanwhile: this connection must not outlive the erasure.
        store.close();
        return;
      }
      const evicted = created && hasStoreMarker(options.dbName);
      setStoreMarker(options.dbName);
      backend = store;
      previous.close();
      // Adopted or folded above; what is still pending is IndexedDB's lifecycle flush's to spill.
      unsaved = [];
      rebuildView(result.state, clock);
      connectChannel();
      if (evicted)
        options.onStorage({
          kind: "indexeddb",
          reason:
            "the browser evicted the profile stored on an earlier visit (storage pressure, or Safari's 7-day limit); starting a fresh profile",
          code: "storage_evicted",
        });
      options.onStorage({ kind: "indexeddb", reason: "profile stored in IndexedDB" });
    } catch (error) {
      store?.close();
      indexedDbFailed = true;
      unsaved = [];
      const code = error instanceof StorageError ? error.code : "storage_unavailable";
      options.onStorage({
        kind: "memory",
        reason: `IndexedDB unavailable (${toError(error).message}); keeping the profile in memory`,
        code,
        error: toError(error),
      });
    }
  }

  async function writeAndFold(store: ProfileStore): Promise<void> {
    const batch = pending.splice(0);
    if (batch.length > 0) {
      const done = store.append(batch);
      const entry = { events: batch, done };
      inflight.push(entry);
      try {
        await done;
      } catch (error) {
        if (store === backend) pending.unshift(...batch);
        throw error;
      } finally {
        inflight = inflight.filter((e) => e !== entry);
      }
    }
    const clock = ++txClock;
    const startEpoch = epoch;
    const result = await store.fold(reduce, limits());
    if (store !== backend || startEpoch !== epoch) return;
    rebuildView(result.state, clock);
    if (result.folded > 0) {
      if (store.kind === "indexeddb") post("changed");
      options.onFlush?.(result.folded);
    }
  }

  async function flushOp(): Promise<void> {
    if (closed) return;
    if (reopenOnWrite && pending.length > 0) {
      reopenOnWrite = false;
      if (options.wantsIndexedDb && options.storageConsent() === "granted" && !indexedDbFailed) {
        await openIndexedDb();
      }
    }
    const store = backend;
    const startEpoch = epoch;
    try {
      await writeAndFold(store);
    } catch (error) {
      if (store !== backend || startEpoch !== epoch) return;
      if (isQuotaError(error) && store.kind === "indexeddb") {
        try {
          await store.compact();
          options.onStorage({
            kind: "indexeddb",
            reason: "storage quota exceeded: dropped the raw event log and model cache, kept features",
            code: "storage_quota",
            error: toError(error),
          });
          await writeAndFold(store);
          return;
        } catch (again) {
          if (store === backend)
            fallBackToMemory("storage_quota", "storage quota exceeded even after compaction", again);
          return;
        }
      }
      if (store.kind === "indexeddb") fallBackToMemory("storage_failed", "IndexedDB write failed", error);
      else options.onError(toError(error));
    }
  }

  let timerDue = Number.POSITIVE_INFINITY;
  /** Flushes after `delay` ms, or sooner if a flush is already due sooner. */
  function schedule(delay: number) {
    if (closed) return;
    const due = Date.now() + delay;
    if (timer !== undefined) {
      if (due >= timerDue) return;
      clearTimeout(timer);
    }
    timerDue = due;
    timer = setTimeout(() => {
      timer = undefined;
      timerDue = Number.POSITIVE_INFINITY;
      void manager.flush();
    }, delay);
    unref(timer);
  }

  const spillPrefix = `fedprofile:${options.dbName}:spill:`;
  function localStore(): Storage | null {
    try {
      return typeof localStorage === "undefined" ? null : localStorage;
    } catch {
      return null; // access denied (sandboxed frames, blocked site data)
    }
  }
  /** Writes a batch to localStorage synchronously; returns its key, or null if impossible. */
  function spill(events: StoredEvent[], clock: number | "opening"): string | null {
    const key = `${spillPrefix}${options.tabId}:${clock}`;
    try {
      localStore()?.setItem(key, JSON.stringify(events));
      return key;
    } catch {
      return null; // quota or no localStorage: the IndexedDB append is all there is
    }
  }
  function removeSpills(keys: readonly string[]) {
    const ls = localStore();
    for (const key of keys) {
      try {
        ls?.removeItem(key);
      } catch {
        // nothing to clean where localStorage is unusable
      }
    }
  }
  /** Leftover batches of tabs that went away before IndexedDB had them. */
  function collectSpills(): { keys: string[]; events: StoredEvent[] } {
    const ls = localStore();
    const keys: string[] = [];
    const events: StoredEvent[] = [];
    if (!ls) return { keys, events };
    try {
      for (let i = 0; i < ls.length; i++) {
        const key = ls.key(i);
        if (key?.startsWith(spillPrefix)) keys.push(key);
      }
      for (const key of keys) {
        let parsed: unknown = null;
        try {
          parsed = JSON.parse(ls.getItem(key) ?? "null");
        } catch {
          // a corrupt batch is dropped below with its key
        }
        if (!Array.isArray(parsed)) continue;
        for (const item of parsed) {
          const event = restoreEvent(item);
          if (event) events.push(event);
        }
      }
    } catch {
      return { keys: [], events: [] };
    }
    return { keys, events };
  }

  /**
   * Lifecycle flush: appends what is pending now, outside the queue, so the write is issued
   * before the page goes, and spills it, with any append still in flight, to localStorage.
   */
  function appendNow() {
    if (backend.kind !== "indexeddb") {
      // Not open yet: one key per tab, rewritten whole, so a page restored and hidden again
      // spills the same events once.
      if (unsaved.length > 0 && !indexedDbFailed && options.storageConsent() === "granted")
        spill(unsaved, "opening");
      return;
    }
    const store = backend;
    const batch = pending.splice(0);
    const unconfirmed = [...inflight.flatMap((entry) => entry.events), ...batch];
    if (unconfirmed.length === 0) return;
    const entry = { clock: ++txClock, events: batch };
    const key = spill(unconfirmed, entry.clock);
    if (batch.length > 0) bypassed.push(entry);
    const written = batch.length > 0 ? store.append(batch) : Promise.resolve();
    Promise.allSettled([written, ...inflight.map((e) => e.done)]).then(([own]) => {
      // Settled either way: committed, or back in `pending` (the page is alive) to be spilled again.
      if (key) removeSpills([key]);
      if (own?.status === "rejected" && store === backend) {
        bypassed = bypassed.filter((e) => e !== entry);
        pending.unshift(...batch);
      }
      schedule(0);
    });
  }

  const onVisibility = () => {
    if (typeof document !== "undefined" && document.visibilityState === "hidden") appendNow();
  };
  const onPageShow = (event: PageTransitionEvent) => {
    if (event.persisted) schedule(0);
  };
  const lifecycle =
    options.lifecycle && typeof document !== "undefined" && typeof addEventListener === "function";
  if (lifecycle) {
    document.addEventListener("visibilitychange", onVisibility);
    addEventListener("pagehide", appendNow);
    addEventListener("pageshow", onPageShow);
  }

  let channel: BroadcastChannel | null = null;
  function connectChannel() {
    if (channel || typeof BroadcastChannel === "undefined") return;
    channel = new BroadcastChannel(`fedprofile:${options.dbName}`);
    unref(channel);
    channel.onmessage = (message: MessageEvent) => {
      const parsed = readChannelMessage(message.data);
      if (!parsed || parsed.from === options.tabId || closed) return;
      if (parsed.type === "changed") {
        if (backend.kind === "indexeddb") schedule(0);
      } else {
        resetLocal(true);
        const old = backend;
        backend = createMemoryStore();
        old.close();
        options.onRemoteForget?.();
      }
    };
  }
  function post(type: "changed" | "forget") {
    try {
      channel?.postMessage({ type, from: options.tabId });
    } catch {
      // a closed channel only costs other tabs a refresh
    }
  }

  /** Drops all in-memory state; IndexedDB is reopened by the next write if `reopen`. */
  function resetLocal(reopen: boolean) {
    epoch += 1;
    view = emptyFeatureState();
    pending = [];
    bypassed = [];
    unsaved = [];
    indexedDbFailed = false;
    reopenOnWrite = reopen && options.wantsIndexedDb;
  }

  const manager: StoreManager = {
    get view() {
      return view;
    },
    get store() {
      return backend;
    },
    add(event) {
      applyEvent(view, event, config);
      pending.push(event);
      if (backend.kind === "memory" && options.wantsIndexedDb && !indexedDbFailed) {
        unsaved.push(event);
        // A bound for a page that never gets IndexedDB open (the CMP never answers).
        if (unsaved.length > 2 * options.retention.maxEvents)
          unsaved = unsaved.slice(-options.retention.maxEvents);
      }
      schedule(pending.length >= options.maxBatch ? 0 : options.flushIntervalMs);
    },
    flush() {
      clearTimeout(timer);
      timer = undefined;
      timerDue = Number.POSITIVE_INFINITY;
      return run(flushOp).catch((error) => options.onError(toError(error)));
    },
    run,
    reconcile() {
      return run(async () => {
        if (!options.wantsIndexedDb) return;
        const decision = options.storageConsent();
        if (decision === "granted") {
          erased = false;
          if (backend.kind === "memory" && !indexedDbFailed && !reopenOnWrite) await openIndexedDb();
        } else if (decision === "refused" && backend.kind === "indexeddb") {
          const old = backend;
          // `view` holds every event tracked so far; the memory store keeps it (and the events
          // not yet written) for this page, so a later grant stores it again, whole.
          backend = createMemoryStore(view);
          pending = [];
          bypassed = [];
          unsaved = [];
          removeSpills(collectSpills().keys);
          clearStoreMarker(options.dbName);
          erased = true;
          // Other tabs see the deletion as a versionchange and continue in memory.
          await old.destroy();
          options.onStorage({
            kind: "memory",
            reason: "no consent to device storage: stored profile erased",
          });
        } else if (decision === "refused" && !erased) {
          // A profile stored on an earlier visit, before the refusal, goes too.
          erased = true;
          unsaved = [];
          removeSpills(collectSpills().keys);
          clearStoreMarker(options.dbName);
          await deleteDatabase(options.dbName);
          options.onStorage({
            kind: "memory",
            reason: "no consent to device storage: keeping the profile in memory",
          });
        } else if (decision === "undecided" && backend.kind === "memory" && !notifiedUndecided) {
          notifiedUndecided = true;
          options.onStorage({
            kind: "memory",
            reason: "waiting for the consent platform: keeping the profile in memory",
          });
        }
      }).catch((error) => options.onError(toError(error)));
    },
    async forget() {
      post("forget");
      // No reopen until the database is gone, or a write queued meanwhile would be erased too.
      resetLocal(false);
      await run(async () => {
        const old = backend;
        backend = createMemoryStore();
        try {
          removeSpills(collectSpills().keys);
          clearStoreMarker(options.dbName);
          await old.destroy();
          // A database may exist even when this tab runs in memory (fallback, no consent yet).
          if (options.wantsIndexedDb && old.kind === "memory") await deleteDatabase(options.dbName);
        } finally {
          reopenOnWrite = options.wantsIndexedDb;
          if (pending.length > 0) schedule(0);
        }
      });
    },
    async close() {
      if (closed) return;
      await manager.flush();
      closed = true;
      clearTimeout(timer);
      if (lifecycle) {
        document.removeEventListener("visibilitychange", onVisibility);
        removeEventListener("pagehide", appendNow);
        removeEventListener("pageshow", onPageShow);
      }
      channel?.close();
      channel = null;
      backend.close();
    },
  };
  return manager;
}
