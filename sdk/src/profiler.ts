/**
 * `createProfiler`: the SDK's entry point. The page calls `track()`; the device keeps its
 * events and profile locally (`getProfile()`), and `sync()` takes part in federated rounds,
 * sending only a round vector, never an event.
 *
 * `track()` does three cheap things on the main thread (validate, fold into the in-memory
 * accumulators, queue) and returns; IndexedDB writes are batched by the store manager.
 * The network code (sync, model pull) is loaded with `import()` on first use, so the tracking
 * core stays small.
 */
import type { ModelVersion } from "@fedprofile/protocol/wire";
import {
  type ConsentChoice,
  type ConsentState,
  detectGpc,
  detectTcfApi,
  resolveConsent,
  type TcfApi,
  type TcfStorageDecision,
  watchTcf,
} from "./consent";
import { FedprofileError, InvalidEventError, type StorageErrorCode, toError } from "./errors";
import { parseEvent, type StoredEvent } from "./events/schemas";
import {
  assignTags,
  computeFeatures,
  DEFAULT_TAG_THRESHOLDS,
  type Features,
  type ProfileConfig,
  summarise,
  type Tag,
  type TagThresholds,
} from "./features/features";
import { DEFAULT_FEATURE_CONFIG } from "./features/state";
import { profileVector } from "./features/vector";
import { createStoreManager } from "./store/store-manager";
import { type CachedModel, DEFAULT_RETENTION } from "./store/types";
import type { CoordinatorClient } from "./sync/coordinator-client";
import type { RoundOutcome } from "./sync/plain-round";

/** Options of `createProfiler`. Only `endpoint` and `apiKey` are needed, and only for sync. */
export interface ProfilerOptions {
  /** Coordinator base URL (needed by `sync()` and `pullModel()`). */
  endpoint?: string;
  /** The tenant's publishable key (`fp_pub_…`). */
  apiKey?: string;
  /** `indexeddb` (default) or `memory` (nothing is ever written to the device). */
  storage?: "indexeddb" | "memory";
  /** IndexedDB database name (default `fedprofile`). */
  dbName?: string;
  fetch?: typeof fetch;
  /** Clock, epoch ms (injectable for tests and replays). */
  now?: () => number;
  /** Randomness for the tab id (default `crypto.getRandomValues`). */
  randomBytes?: (length: number) => Uint8Array;
  /** Initial explicit consent. */
  consent?: ConsentChoice;
  /** Overrides `navigator.globalPrivacyControl`. */
  gpc?: boolean;
  /** Overrides `window.__tcfapi` detection; `null` means no CMP. */
  tcfApi?: TcfApi | null;
  /** How long `ready` waits for a CMP's first decision (default 500 ms). */
  tcfTimeoutMs?: number;
  /** Feature parameters (half-lives, weights, top K, price bands). */
  features?: Partial<ProfileConfig>;
  /** Tag thresholds (a global model may replace them later with `setTagThresholds`). */
  tagThresholds?: Partial<TagThresholds>;
  /** Raw event retention (default 1,000 events, 90 days); features keep everything. */
  retention?: { maxEvents?: number; maxAgeDays?: number };
  /**
   * Longest time an event waits in memory before it is written (default 0: the next task).
   * Writes are batched either way: everything tracked before the timer fires, and everything
   * tracked while a write is in flight, goes in one batch; 0 keeps the unwritten window, and
   * the delay before other tabs see an event, as short as possible.
   */
  flushIntervalMs?: number;
  /** Write as soon as this many events are waiting (default 50). */
  maxBatch?: number;
  /** Give up opening IndexedDB after this long (default 3000 ms). */
  openTimeoutMs?: number;
}

/** When an event happened, if not now. */
export interface TrackOptions {
  timestamp?: number | string | Date;
}

/** The profile: features, tags, a readable summary and the standardised vector. */
export interface Profile {
  /** Valid events tracked on this device. */
  eventCount: number;
  asOf: number;
  features: Features;
  tags: Tag[];
  summary: string;
  /** Standardised numeric vector for clustering (see `features/vector.ts`). */
  vector: number[];
  /** Where the profile is kept right now. */
  storage: "indexeddb" | "memory";
}

/** What `sync()` did. `no-consent`: sync consent is missing, nothing was sent. */
export type SyncOutcome = RoundOutcome | { status: "no-consent" };

/** Events a profiler emits. */
export type ProfilerEvent =
  | { type: "error"; error: Error }
  | { type: "sync"; modelId: string; outcome: SyncOutcome }
  | {
      type: "storage";
      kind: "indexeddb" | "memory";
      reason: string;
      code?: StorageErrorCode;
      error?: Error;
    }
  | { type: "consent"; consent: ConsentState }
  | { type: "flush"; folded: number }
  | { type: "forget"; origin: "this-tab" | "other-tab" };

/** The profiler. */
export interface Profiler {
  /** Resolves once storage is decided and open (never rejects). */
  readonly ready: Promise<void>;
  /**
   * Records an event. Resolves once it is accepted (validated, in the profile, queued for
   * storage); rejects with `InvalidEventError` (and emits `error`) if it is invalid.
   */
  track(name: string, properties?: Record<string, unknown>, options?: TrackOptions): Promise<void>;
  /** The profile at `asOf` (default now). */
  getProfile(options?: { asOf?: number }): Promise<Profile>;
  /** Writes everything queued to the store. */
  flush(): Promise<void>;
  /** The vector this device contributes to `modelId`'s round. */
  roundVector(modelId: string, dimension: number): Promise<Float64Array>;
  /** Takes part in the open round of `modelId`, if any, and if sync consent allows. */
  sync(modelId?: string): Promise<SyncOutcome>;
  /** The latest published version of `modelId` (cached on the device with storage consent). */
  pullModel(modelId?: string): Promise<ModelVersion | null>;
  /** The cached version of `modelId`, without network. */
  cachedModel(modelId: string): Promise<ModelVersion | null>;
  /** Records explicit consent choices and applies them; resolves to the effective consent. */
  consent(choice: ConsentChoice): Promise<ConsentState>;
  /** Effective consent now. */
  consentState(): ConsentState;
  /** Replaces tag thresholds (e.g. from a global model). */
  setTagThresholds(thresholds: Partial<TagThresholds>): void;
  /** Erases every store and all in-memory state; leaves nothing in IndexedDB. */
  forget(): Promise<void>;
  /** Flushes and releases storage, channels and listeners; `track()` rejects afterwards. */
  close(): Promise<void>;
  on(listener: (event: ProfilerEvent) => void): () => void;
}

/** The walking skeleton's model: `[1, eventCount]`, summed over devices. */
export const ACTIVITY_MODEL = "activity";

/** Default read-out parameters. */
export const DEFAULT_PROFILE_CONFIG: ProfileConfig = {
  ...DEFAULT_FEATURE_CONFIG,
  topK: 5,
  priceBands: [10, 50],
};

const MAX_REMEMBERED_ROUNDS = 64;

function defaultRandomBytes(length: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(length));
}

function eventTime(name: string, value: TrackOptions["timestamp"], now: () => number): number {
  if (value === undefined) return now();
  const t = value instanceof Date ? value.getTime() : typeof value === "string" ? Date.parse(value) : value;
  if (typeof t !== "number" || !Number.isFinite(t)) {
    throw new InvalidEventError(name, "timestamp", "must be a finite epoch-ms number, an ISO date or a Date");
  }
  return t;
}

/** Creates a profiler. Never throws; storage problems are reported as `storage` events. */
export function createProfiler(options: ProfilerOptions = {}): Profiler {
  const now = options.now ?? Date.now;
  const config: ProfileConfig = {
    ...DEFAULT_PROFILE_CONFIG,
    ...options.features,
    weights: { ...DEFAULT_PROFILE_CONFIG.weights, ...options.features?.weights },
  };
  let thresholds: TagThresholds = { ...DEFAULT_TAG_THRESHOLDS, ...options.tagThresholds };
  const tabId = Array.from((options.randomBytes ?? defaultRandomBytes)(6), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
  let seq = 0;

  const listeners = new Set<(event: ProfilerEvent) => void>();
  const emit = (event: ProfilerEvent) => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // a failing listener must not break tracking or other listeners
      }
    }
  };

  let explicit: ConsentChoice = { ...options.consent };
  const gpc = options.gpc ?? detectGpc();
  const tcfApi = options.tcfApi === undefined ? detectTcfApi() : options.tcfApi;
  let tcf: TcfStorageDecision | null = tcfApi ? "pending" : null;
  const consentNow = () => resolveConsent({ explicit, gpc, tcf });

  const rounds = new Set<string>();
  let closed = false;
  const manager = createStoreManager({
    dbName: options.dbName ?? "fedprofile",
    wantsIndexedDb: (options.storage ?? "indexeddb") === "indexeddb",
    storageAllowed: () => consentNow().storage,
    config,
    retention: {
      maxEvents: options.retention?.maxEvents ?? DEFAULT_RETENTION.maxEvents,
      maxAgeDays: options.retention?.maxAgeDays ?? DEFAULT_RETENTION.maxAgeDays,
    },
    now,
    tabId,
    flushIntervalMs: options.flushIntervalMs ?? 0,
    maxBatch: options.maxBatch ?? 50,
    openTimeoutMs: options.openTimeoutMs ?? 3000,
    lifecycle: true,
    onStorage: (notice) => emit({ type: "storage", ...notice }),
    onError: (error) => emit({ type: "error", error }),
    onFlush: (folded) => emit({ type: "flush", folded }),
    onRemoteForget: () => {
      rounds.clear();
      emit({ type: "forget", origin: "other-tab" });
    },
  });

  /** Loads choices remembered from an earlier visit (explicit ones made now win). */
  async function loadRemembered() {
    const store = manager.store;
    if (store.kind !== "indexeddb") return;
    const [remembered, contributed] = await Promise.all([store.getMeta("consent"), store.getMeta("rounds")]);
    if (remembered) explicit = { ...remembered, ...explicit };
    for (const round of contributed ?? []) rounds.add(round);
  }

  let stopTcf = () => {};
  const ready = (async () => {
    try {
      if (tcfApi) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.tcfTimeoutMs ?? 500);
          stopTcf = watchTcf(tcfApi, (decision) => {
            const changed = decision !== tcf;
            tcf = decision;
            if (decision !== "pending") {
              clearTimeout(timer);
              resolve();
            }
            if (changed) {
              emit({ type: "consent", consent: consentNow() });
              void manager.reconcile();
            }
          });
        });
      }
      await manager.reconcile();
      await manager.run(loadRemembered);
    } catch (error) {
      emit({ type: "error", error: toError(error) });
    }
  })();

  let client: CoordinatorClient | undefined;
  async function coordinator(): Promise<CoordinatorClient> {
    if (client) return client;
    if (!options.endpoint || !options.apiKey) {
      throw new FedprofileError("not_configured", "sync needs the endpoint and apiKey options");
    }
    const { createCoordinatorClient } = await import("./sync/coordinator-client");
    client = createCoordinatorClient({
      endpoint: options.endpoint,
      apiKey: options.apiKey,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    return client;
  }

  async function rememberRound(roundId: string) {
    rounds.add(roundId);
    const store = manager.store;
    if (store.kind === "indexeddb") await store.setMeta("rounds", [...rounds].slice(-MAX_REMEMBERED_ROUNDS));
  }

  const profiler: Profiler = {
    ready,
    track(name, properties, trackOptions) {
      try {
        if (closed) throw new FedprofileError("closed", "track: this profiler has been closed");
        const event = parseEvent(name, properties);
        const stored: StoredEvent = {
          id: `${tabId}.${(seq++).toString(36)}`,
          name: event.name,
          t: eventTime(event.name, trackOptions?.timestamp, now),
          p: event.properties,
        };
        manager.add(stored);
        return Promise.resolve();
      } catch (thrown) {
        const error = toError(thrown);
        emit({ type: "error", error });
        return Promise.reject(error);
      }
    },
    async getProfile(profileOptions) {
      await ready;
      const asOf = profileOptions?.asOf ?? now();
      const features = computeFeatures(manager.view, asOf, config);
      const tags = assignTags(features, thresholds);
      return {
        eventCount: features.eventCount,
        asOf,
        features,
        tags,
        summary: summarise(features, tags),
        vector: profileVector(features),
        storage: manager.store.kind,
      };
    },
    flush: () => manager.flush(),
    async roundVector(modelId, dimension) {
      if (modelId !== ACTIVITY_MODEL || dimension !== 2) {
        throw new RangeError(`no round vector for model ${modelId} with dimension ${dimension}`);
      }
      await ready;
      return Float64Array.of(1, manager.view.eventCount);
    },
    async sync(modelId = ACTIVITY_MODEL) {
      await ready;
      if (!consentNow().sync) {
        const outcome: SyncOutcome = { status: "no-consent" };
        emit({ type: "sync", modelId, outcome });
        return outcome;
      }
      try {
        const [api, { participateInRound }, { createOutboxSessionStore }] = await Promise.all([
          coordinator(),
          import("./sync/plain-round"),
          import("./sync/session-store"),
        ]);
        const outcome = await participateInRound(
          api,
          modelId,
          (dimension) => profiler.roundVector(modelId, dimension),
          {
            alreadyContributed: (roundId) => rounds.has(roundId),
            sessions: createOutboxSessionStore(() => manager.store, now),
          },
        );
        if (outcome.status === "contributed") await manager.run(() => rememberRound(outcome.roundId));
        emit({ type: "sync", modelId, outcome });
        return outcome;
      } catch (error) {
        emit({ type: "error", error: toError(error) });
        throw error;
      }
    },
    async pullModel(modelId = ACTIVITY_MODEL) {
      const model = await (await coordinator()).latestModel(modelId);
      if (model && consentNow().storage) {
        const cached: CachedModel = { modelId, storedAt: now(), model };
        await manager
          .run(() => manager.store.putModel(cached))
          .catch((error) => {
            emit({ type: "error", error: toError(error) });
          });
      }
      return model;
    },
    async cachedModel(modelId) {
      await ready;
      const cached = await manager.run(() => manager.store.getModel(modelId));
      return cached?.model ?? null;
    },
    async consent(choice) {
      for (const key of ["storage", "sync", "publish"] as const) {
        const value = choice[key];
        if (value !== undefined && typeof value !== "boolean") {
          const error = new TypeError(`consent.${key} must be a boolean`);
          emit({ type: "error", error });
          throw error;
        }
      }
      explicit = { ...explicit, ...choice };
      const state = consentNow();
      emit({ type: "consent", consent: state });
      await ready;
      await manager.reconcile();
      await manager.run(async () => {
        const store = manager.store;
        const { sync, publish } = explicit;
        if (store.kind === "indexeddb") {
          await store.setMeta("consent", {
            ...(sync === undefined ? {} : { sync }),
            ...(publish === undefined ? {} : { publish }),
          });
        }
      });
      return state;
    },
    consentState: consentNow,
    setTagThresholds(next) {
      thresholds = { ...thresholds, ...next };
    },
    async forget() {
      rounds.clear();
      try {
        await manager.forget();
      } catch (error) {
        emit({ type: "error", error: toError(error) });
        throw error;
      }
      emit({ type: "forget", origin: "this-tab" });
    },
    async close() {
      closed = true;
      stopTcf();
      await ready;
      await manager.close();
    },
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return profiler;
}
