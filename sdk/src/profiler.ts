/**
 * `createProfiler`: the SDK's entry point. The page calls `track()`; the device keeps its
 * events and profile locally, and `sync()` takes part in federated rounds, sending only a
 * round vector, never an event.
 */
import type { ModelVersion } from "@fedprofile/coordinator/wire";
import {
  createIndexedDbEventStore,
  createMemoryEventStore,
  type EventStore,
  type StoredEvent,
} from "./store/event-store";
import { type CoordinatorClient, createCoordinatorClient } from "./sync/coordinator-client";
import { participateInPlainRound, type RoundOutcome } from "./sync/plain-round";

export interface ProfilerOptions {
  /** Coordinator base URL. */
  endpoint: string;
  /** The tenant's publishable key (`fp_pub_…`). */
  apiKey: string;
  /** `indexeddb` (default in browsers) or `memory`. */
  storage?: "indexeddb" | "memory";
  /** IndexedDB database name (default `fedprofile`). */
  dbName?: string;
  fetch?: typeof fetch;
  now?: () => number;
}

export interface Profile {
  eventCount: number;
}

export type ProfilerEvent =
  | { type: "error"; error: Error }
  | { type: "sync"; modelId: string; outcome: RoundOutcome }
  | { type: "storage"; kind: "indexeddb" | "memory"; reason: string };

export interface Profiler {
  /** Resolves when storage is open. */
  readonly ready: Promise<void>;
  track(name: string, properties?: Record<string, unknown>): Promise<void>;
  getProfile(): Promise<Profile>;
  /** The vector this device contributes to `modelId`'s round. */
  roundVector(modelId: string, dimension: number): Promise<Float64Array>;
  /** Takes part in the open round of `modelId`, if any. */
  sync(modelId?: string): Promise<RoundOutcome>;
  /** The latest published version of `modelId`. */
  pullModel(modelId?: string): Promise<ModelVersion | null>;
  forget(): Promise<void>;
  on(listener: (event: ProfilerEvent) => void): () => void;
}

/** The walking skeleton's one model: `[1, eventCount]`, summed over devices. */
export const ACTIVITY_MODEL = "activity";

export function createProfiler(options: ProfilerOptions): Profiler {
  const now = options.now ?? Date.now;
  const listeners = new Set<(event: ProfilerEvent) => void>();
  const emit = (event: ProfilerEvent) => {
    for (const listener of listeners) listener(event);
  };
  const contributedRounds = new Set<string>();
  const client: CoordinatorClient = createCoordinatorClient({
    endpoint: options.endpoint,
    apiKey: options.apiKey,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });

  let store: EventStore = createMemoryEventStore();
  const wantsIndexedDb = (options.storage ?? "indexeddb") === "indexeddb";
  const ready = (async () => {
    if (!wantsIndexedDb) return;
    if (typeof indexedDB === "undefined") {
      emit({ type: "storage", kind: "memory", reason: "IndexedDB is not available" });
      return;
    }
    try {
      store = await createIndexedDbEventStore(options.dbName ?? "fedprofile");
    } catch (cause) {
      emit({ type: "storage", kind: "memory", reason: `IndexedDB could not be opened: ${String(cause)}` });
    }
  })();

  const profile = async (): Promise<Profile> => {
    await ready;
    return { eventCount: await store.count() };
  };

  return {
    ready,
    async track(name, properties = {}) {
      if (typeof name !== "string" || name.length === 0) {
        const error = new TypeError("track: event name must be a non-empty string");
        emit({ type: "error", error });
        throw error;
      }
      await ready;
      const event: StoredEvent = { name, properties, timestamp: now() };
      await store.append([event]);
    },
    getProfile: profile,
    async roundVector(modelId, dimension) {
      if (modelId !== ACTIVITY_MODEL || dimension !== 2) {
        throw new RangeError(`no round vector for model ${modelId} with dimension ${dimension}`);
      }
      const { eventCount } = await profile();
      return Float64Array.of(1, eventCount);
    },
    async sync(modelId = ACTIVITY_MODEL) {
      try {
        const outcome = await participateInPlainRound(
          client,
          modelId,
          (dimension) => this.roundVector(modelId, dimension),
          (roundId) => contributedRounds.has(roundId),
        );
        if (outcome.status === "contributed") contributedRounds.add(outcome.roundId);
        emit({ type: "sync", modelId, outcome });
        return outcome;
      } catch (error) {
        emit({ type: "error", error: error instanceof Error ? error : new Error(String(error)) });
        throw error;
      }
    },
    pullModel: (modelId = ACTIVITY_MODEL) => client.latestModel(modelId),
    async forget() {
      await ready;
      await store.clear();
      contributedRounds.clear();
    },
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
