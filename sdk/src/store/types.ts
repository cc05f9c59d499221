/**
 * The device store: one interface, two implementations (IndexedDB through idb, and memory),
 * both run through one shared contract suite (`store-contract.ts`) in node (fake-indexeddb)
 * and in Chromium (real IndexedDB).
 *
 * Layout (object stores):
 * - `journal`: events written but not yet folded. Writes are blind puts keyed by event id, so
 *   they need no read and can complete during `pagehide`.
 * - `events`: the raw event log, bounded by age and count; everything in it is already folded.
 * - `state`: the feature accumulators (one record).
 * - `models`: the model cache. `outbox`: anything waiting to sync. `meta`: consent choices and
 *   rounds already contributed to.
 *
 * Multi-tab correctness: `fold` runs in one readwrite transaction over journal, log and state,
 * and IndexedDB serialises readwrite transactions with overlapping scopes, so a fold is atomic
 * across tabs. Each journaled event moves into the log and into the accumulators exactly once:
 * whichever tab folds it first, and an id already in the log is skipped (idempotent).
 *
 * Ordering contract: `append` and `fold` create their transaction before they return, so
 * their relative order is the order of the calls (the profiler relies on this to know which
 * appends a fold has seen).
 */
import type { ModelVersion } from "@fedprofile/protocol/wire";
import type { StoredEvent } from "../events/schemas";
import type { FeatureState } from "../features/state";

/** How long raw events are kept before only their accumulated features remain. */
export interface RetentionLimits {
  /** At most this many raw events are kept (oldest dropped first). */
  maxEvents: number;
  /** Raw events older than this (relative to `now`) are dropped. */
  maxAgeMs: number;
  /** The current time, epoch ms. */
  now: number;
}

/** Folds new events into the accumulator record (or into an empty one). */
export type FoldReducer = (base: FeatureState | null, events: readonly StoredEvent[]) => FeatureState;

/** What a fold did. `state` belongs to the caller, who may mutate it. */
export interface FoldResult {
  state: FeatureState;
  /** Journaled events newly folded (0 when the journal was empty or held only duplicates). */
  folded: number;
}

/** A model version kept on the device. */
export interface CachedModel {
  modelId: string;
  storedAt: number;
  model: ModelVersion;
}

/** Something waiting to be sent (a contribution to retry, a published profile, ...). */
export interface OutboxItem {
  id: string;
  kind: string;
  createdAt: number;
  /** Opaque to the store; the sender validates it when it reads it back. */
  body: unknown;
}

/** Consent choices the user made explicitly (stored so they outlive the page). */
export interface StoredConsent {
  sync?: boolean;
  publish?: boolean;
}

/** Typed meta records. */
export interface MetaValues {
  consent: StoredConsent;
  /** Round ids this device has contributed to (bounded, newest last). */
  rounds: string[];
}

/** The device store. */
export interface ProfileStore {
  readonly kind: "indexeddb" | "memory";
  /** Puts events into the journal (blind writes; no reads; committed as soon as possible). */
  append(events: readonly StoredEvent[]): Promise<void>;
  /** Atomically folds every journaled event into the accumulators, then prunes the log. */
  fold(reduce: FoldReducer, limits: RetentionLimits): Promise<FoldResult>;
  /**
   * Takes over a profile computed elsewhere (memory, while storage consent was withdrawn): if the
   * store holds no accumulators yet, writes `state` and puts `events` in the log as folded, in one
   * transaction, and resolves true; otherwise changes nothing and resolves false.
   */
  adopt(state: FeatureState, events: readonly StoredEvent[]): Promise<boolean>;
  /** The raw events still kept: the folded log (oldest first) then the unfolded journal. */
  events(): Promise<StoredEvent[]>;
  /** Frees space without losing features: drops the raw log and the model cache. */
  compact(): Promise<void>;
  putModel(model: CachedModel): Promise<void>;
  getModel(modelId: string): Promise<CachedModel | undefined>;
  enqueue(item: OutboxItem): Promise<void>;
  outbox(): Promise<OutboxItem[]>;
  dequeue(ids: readonly string[]): Promise<void>;
  getMeta<K extends keyof MetaValues>(key: K): Promise<MetaValues[K] | undefined>;
  setMeta<K extends keyof MetaValues>(key: K, value: MetaValues[K]): Promise<void>;
  /** Empties every store. */
  clear(): Promise<void>;
  /** Erases everything, the database itself included, and closes the store. */
  destroy(): Promise<void>;
  close(): void;
}

/** Retention defaults: 1,000 raw events, 90 days. */
export const DEFAULT_RETENTION = { maxEvents: 1000, maxAgeDays: 90 } as const;
