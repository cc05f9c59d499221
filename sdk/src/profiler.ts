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

import type { ModelVersion, RoundInfo } from "@fedprofile/protocol/wire";
import {
  type ConsentChoice,
  type ConsentSignals,
  type ConsentState,
  decideUse,
  detectGpc,
  resolveConsent,
  type TcfApi,
  type TcfPurposes,
  type TcfSignal,
  tcfPurposes,
  watchCmp,
} from "./consent";
import { FedprofileError, type StorageErrorCode, toError } from "./errors";
import type { UnusedEventName } from "./events/catalogue";
import type { DecimalSeparator } from "./events/coerce";
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
import type { RateTable } from "./features/money";
import { DEFAULT_FEATURE_CONFIG, type FeatureState } from "./features/state";
import { profileVector } from "./features/vector";
import { assignSegment, type SegmentAssignment } from "./models/segment";
import type { PrivacyPolicyOption } from "./privacy-policy";
import { createStoreManager } from "./store/store-manager";
import { type CachedModel, DEFAULT_RETENTION } from "./store/types";
import type { AdmissionOptions } from "./sync/admission";
import type { CoordinatorClient, RetryOptions } from "./sync/coordinator-client";
import type { RoundOutcome } from "./sync/plain-round";
import {
  countDrop,
  type DroppedCounts,
  type IntakeContext,
  intake,
  strictError,
  type TrackCallback,
  type TrackOptions,
  type TrackResult,
  type TrackWarning,
  trackArguments,
} from "./track";

export type { TrackOptions } from "./track";

/** One recommendation (`recommend()`): a product id, its score, its category and the reason. */
export interface Recommendation {
  productId: string;
  score: number;
  category: string | null;
  reason: { kind: "similar"; productId: string; text: string } | { kind: "popular"; text: string };
}

/** Options of `recommend()`. */
export interface RecommendOptions {
  /** Only products in these categories. */
  categories?: readonly string[];
  /** Also leave out products the visitor carted or viewed (default: only what it bought). */
  excludeTouched?: boolean;
}

/** Options of `createProfiler`. Only `endpoint` and `apiKey` are needed, and only for sync. */
export interface ProfilerOptions {
  /** Coordinator base URL (needed by `sync()` and `pullModel()`). */
  endpoint?: string;
  /**
   * The weakest round this device takes part in (default: the production floors of
   * `@fedprofile/protocol/dp`). `"development"` allows plain-sum and tiny cohorts, for local
   * demos only. A round below the policy is refused before anything is sent.
   */
  privacyPolicy?: PrivacyPolicyOption;
  /**
   * Where this device gets the single-use Privacy Pass token a round may require to join (one
   * device, one contribution): the storefront's issuer directory, and `credentials: "include"` so
   * a logged-in customer's session counts. A round that needs a token and cannot get one ends in
   * the outcome `not-admitted`; nothing about the device is sent.
   */
  admission?: AdmissionOptions;
  /** The tenant's publishable key (`fp_pub_…`). */
  apiKey?: string;
  /** `indexeddb` (default) or `memory` (nothing is ever written to the device). */
  storage?: "indexeddb" | "memory";
  /** IndexedDB database name (default `fedprofile`). */
  dbName?: string;
  fetch?: typeof fetch;
  /**
   * How `sync()` and `pullModel()` retry a call that got no answer, a 429 or a 5xx (default
   * `SYNC_RETRY`: full-jitter backoff for 90 s, so a coordinator restart does not fail a sync).
   * `{ windowMs: 0 }` turns retries off.
   */
  syncRetry?: RetryOptions;
  /** Per-request timeout of `sync()` and `pullModel()` in ms (default 30,000). */
  syncTimeoutMs?: number;
  /** Clock, epoch ms (injectable for tests and replays). */
  now?: () => number;
  /** Randomness for the tab id (default `crypto.getRandomValues`). */
  randomBytes?: (length: number) => Uint8Array;
  /** Initial explicit consent. */
  consent?: ConsentChoice;
  /** Overrides `navigator.globalPrivacyControl`. */
  gpc?: boolean;
  /**
   * Overrides CMP discovery (`window.__tcfapi`, or a `__tcfapiLocator` frame above); `null`
   * means the page has no CMP, so storage need not wait for one.
   */
  tcfApi?: TcfApi | null;
  /**
   * How long storage and `ready` wait for a CMP to appear and decide (default 500 ms); with no
   * CMP by then, the page is taken to have none.
   */
  tcfTimeoutMs?: number;
  /**
   * How long, in all, to keep looking for a CMP that loads even later (default 10 s); a late
   * CMP's refusal erases what was stored meanwhile.
   */
  tcfDiscoveryMs?: number;
  /** TCF purposes each use needs (default `DEFAULT_TCF_PURPOSES`; `sync: []` lets sync ignore TCF). */
  tcfPurposes?: Partial<TcfPurposes>;
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
  /**
   * The k-means model whose segments `getProfile().segment` reports, and whose published DP
   * quantiles replace the default tag thresholds (default `segments`).
   */
  segmentModel?: string;
  /** The fcf model `recommend()` scores with (default `recommendations`). */
  recommendationModel?: string;
  /** tfjs backend of the recommendation math (default `wasm`; `cpu` where WASM cannot start). */
  tfBackend?: "wasm" | "cpu" | "webgl";
  /** Where the page serves tfjs-backend-wasm's `.wasm` files (e.g. `/wasm/`; default: beside the script). */
  tfWasmPath?: string;
  /**
   * The storefront's currency, ISO 4217 (default `USD`). Amounts without a `currency` are in
   * it; amounts in another are converted through `rates`, or kept out of monetary features.
   */
  currency?: string;
  /** Units of `currency` per unit of another currency, e.g. `{ JPY: 0.0061 }` for a euro shop. */
  rates?: Record<string, number>;
  /** Decimal separator of numeric strings such as `"1.234,50"` (default `.`). */
  decimal?: DecimalSeparator;
  /**
   * Reject `track()` on bad input (unknown event name, a field or event that cannot be read)
   * with an `InvalidEventError`, for tests. Default `false`: `track()` always resolves.
   */
  strict?: boolean;
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
  /** This device's segment under the newest k-means model it holds (`segmentModel`), if any. */
  segment: SegmentAssignment | null;
  /** Where the profile is kept right now. */
  storage: "indexeddb" | "memory";
  /** Events `track()` did not keep since this profiler was created, by reason. */
  dropped: DroppedCounts;
}

/**
 * What `sync()` did; it rejects only on a bug (a refused request other than these, an answer the
 * wire schemas reject). `no-consent`: sync consent is missing, nothing was sent. `round-full`,
 * `unreachable` (after `syncRetry`'s window) and `refused-by-policy` come from the round or, for
 * `unreachable` and `refused-by-policy`, from `sync()` as a whole. `synced`: what `sync()` without
 * a model id did for each declared model with an open round.
 */
export type SyncOutcome =
  | RoundOutcome
  | { status: "no-consent" }
  | { status: "synced"; outcomes: Array<{ modelId: string; outcome: RoundOutcome }> };

/** Events a profiler emits. */
export type ProfilerEvent =
  | { type: "error"; error: Error }
  | { type: "warning"; warning: TrackWarning }
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
  /** A newer version of a model arrived (and, for the segment model, the segment may change). */
  | { type: "model"; modelId: string; version: number }
  | { type: "forget"; origin: "this-tab" | "other-tab" };

/** The profiler. */
export interface Profiler {
  /** Resolves once storage is decided and open (never rejects). */
  readonly ready: Promise<void>;
  /**
   * Records an event, analytics.js style: `track(name, properties?, options?, callback?)`, the
   * callback in any position after the name. Resolves (and calls back) with what was kept:
   * `{ kept: true }` once the event is in the profile and queued for storage, or
   * `{ kept: false, reason }`. Never rejects for bad input unless `strict`; each problem is in
   * `warnings` and emitted as a `warning` event (an unknown name, once per name).
   */
  track(
    name: string,
    properties?: Record<string, unknown> | TrackCallback,
    options?: TrackOptions | TrackCallback,
    callback?: TrackCallback,
  ): Promise<TrackResult>;
  /** The profile at `asOf` (default now). */
  getProfile(options?: { asOf?: number }): Promise<Profile>;
  /** Writes everything queued to the store. */
  flush(): Promise<void>;
  /** The walking skeleton's `activity` vector, `[1, eventCount]` (rounds opened by hand, no task). */
  roundVector(modelId: string, dimension: number): Promise<Float64Array>;
  /**
   * Takes part in federated training, if sync consent allows: without `modelId`, in the open
   * round of every declared model (and pulls every newer model version); with it, in that model's
   * open round only. A full round, a coordinator unreachable for the whole `syncRetry` window and
   * a policy refusal are outcomes (`round-full`, `unreachable`, `refused-by-policy`), not rejections.
   */
  sync(modelId?: string): Promise<SyncOutcome>;
  /** The latest published version of `modelId` (cached on the device with storage consent). */
  pullModel(modelId?: string): Promise<ModelVersion | null>;
  /**
   * The top `n` products for this visitor, scored on the device under the newest recommendation
   * model it holds (`recommendationModel`; `pullModel` or `sync` fetch it): without what it
   * bought, within `options.categories`, each with its score and a reason (the nearest of its
   * own items in factor space, or "popular" from the model's DP counts for a new visitor).
   * Resolves to `[]` while the device holds no such model. Nothing is sent.
   */
  recommend(n?: number, options?: RecommendOptions): Promise<Recommendation[]>;
  /** The cached version of `modelId`, without network. */
  cachedModel(modelId: string): Promise<ModelVersion | null>;
  /** Records explicit consent choices and applies them; resolves to the effective consent. */
  consent(choice: ConsentChoice): Promise<ConsentState>;
  /** Effective consent now (false while a CMP has not decided). */
  consentState(): ConsentState;
  /** Replaces tag thresholds (e.g. from a global model). */
  setTagThresholds(thresholds: Partial<TagThresholds>): void;
  /** Erases every store and all in-memory state; leaves nothing in IndexedDB. */
  forget(): Promise<void>;
  /** Flushes and releases storage, channels and listeners; `track()` rejects afterwards. */
  close(): Promise<void>;
  /**
   * Listens to every event, or to one type. A new listener that takes `consent` events gets the
   * current consent at once (in a microtask), so one attached after a CMP answered misses nothing.
   */
  on(listener: (event: ProfilerEvent) => void): () => void;
  on<T extends ProfilerEvent["type"]>(
    type: T,
    listener: (event: Extract<ProfilerEvent, { type: T }>) => void,
  ): () => void;
}

/** The walking skeleton's model: `[1, eventCount]`, summed over devices. */
export const ACTIVITY_MODEL = "activity";

/** The default fcf model of `recommend()`. */
export const RECOMMENDATION_MODEL = "recommendations";

/** The default k-means model of `getProfile().segment`. */
export const SEGMENT_MODEL = "segments";

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

/** The storefront currency and rate table, with the entries that cannot be used set aside. */
function moneyOptions(options: ProfilerOptions): { currency: string; rates: RateTable; ignored: string[] } {
  const ignored: string[] = [];
  const code = /^[A-Z]{3}$/;
  let currency = options.currency?.trim().toUpperCase() ?? DEFAULT_FEATURE_CONFIG.currency;
  if (!code.test(currency)) {
    ignored.push(
      `currency: expected a three-letter ISO 4217 code, got ${JSON.stringify(options.currency)}; USD is used`,
    );
    currency = DEFAULT_FEATURE_CONFIG.currency;
  }
  const rates: Record<string, number> = {};
  for (const [key, rate] of Object.entries(options.rates ?? {})) {
    const from = key.trim().toUpperCase();
    if (code.test(from) && typeof rate === "number" && Number.isFinite(rate) && rate > 0) rates[from] = rate;
    else
      ignored.push(`rates.${key}: expected a positive number for a three-letter code, got ${String(rate)}`);
  }
  return { currency, rates, ignored };
}

/**
 * What a profiler derives from its options before it starts: the money options, the feature
 * config, the tab id and the intake context (`track()`'s). Shared with the history import
 * (`history.ts`), so both read and fold events with the same settings.
 */
export function profilerSettings(options: ProfilerOptions, view: () => FeatureState) {
  const money = moneyOptions(options);
  const config: ProfileConfig = {
    ...DEFAULT_PROFILE_CONFIG,
    ...options.features,
    weights: { ...DEFAULT_PROFILE_CONFIG.weights, ...options.features?.weights },
    currency: money.currency,
  };
  const tabId = Array.from((options.randomBytes ?? defaultRandomBytes)(6), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
  let seq = 0;
  const intakeContext: IntakeContext = {
    currency: money.currency,
    rates: money.rates,
    decimal: options.decimal ?? ".",
    now: options.now ?? Date.now,
    nextId: () => `${tabId}.${(seq++).toString(36)}`,
    view,
  };
  return { money, config, tabId, intakeContext };
}

/** The profile read off accumulators at `asOf` (`getProfile()`'s, and the history import's). */
export function readProfile(
  view: FeatureState,
  asOf: number,
  config: ProfileConfig,
  thresholds: TagThresholds,
  segmentOf: (vector: number[]) => SegmentAssignment | null,
  storage: Profile["storage"],
  dropped: DroppedCounts,
): Profile {
  const features = computeFeatures(view, asOf, config);
  const tags = assignTags(features, thresholds);
  const vector = profileVector(features);
  return {
    eventCount: features.eventCount,
    asOf,
    features,
    tags,
    summary: summarise(features, tags),
    vector,
    segment: segmentOf(vector),
    storage,
    dropped: structuredClone(dropped),
  };
}

/**
 * Creates a profiler. Throws only on invalid options (`tcfPurposes`); storage problems are
 * reported as `storage` events.
 */
export function createProfiler(options: ProfilerOptions = {}): Profiler {
  const now = options.now ?? Date.now;
  const { money, config, tabId, intakeContext } = profilerSettings(options, () => manager.view);
  let thresholds: TagThresholds = { ...DEFAULT_TAG_THRESHOLDS, ...options.tagThresholds };

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
  const purposes = tcfPurposes(options.tcfPurposes);
  // Outside a browser no CMP can exist; `tcfApi: null` says the page has none.
  const lookForCmp = options.tcfApi === undefined ? typeof window !== "undefined" : options.tcfApi !== null;
  /** `null`: no CMP. Pending until the CMP decides, or the search times out. */
  let tcf: TcfSignal | null = lookForCmp ? { status: "pending" } : null;
  const signals = (): ConsentSignals => ({ explicit, gpc, tcf, purposes });
  const consentNow = () => resolveConsent(signals());
  /** The last consent emitted, replayed to new listeners. */
  let announced: ConsentState | undefined;
  const announce = () => {
    const state = consentNow();
    if (announced && (["storage", "sync", "publish"] as const).every((k) => announced?.[k] === state[k])) {
      return;
    }
    announced = state;
    emit({ type: "consent", consent: state });
  };

  const rounds = new Set<string>();
  let closed = false;
  const segmentModel = options.segmentModel ?? SEGMENT_MODEL;
  /** The newest version of each model this device holds (memory; IndexedDB with storage consent). */
  const heldModels = new Map<string, ModelVersion>();
  const segmentOf = (vector: number[]): SegmentAssignment | null => {
    const model = heldModels.get(segmentModel);
    return model?.params?.kind === "kmeans"
      ? assignSegment({ ...model.params, modelId: model.modelId, version: model.version }, vector)
      : null;
  };
  const manager = createStoreManager({
    dbName: options.dbName ?? "fedprofile",
    wantsIndexedDb: (options.storage ?? "indexeddb") === "indexeddb",
    storageConsent: () => decideUse(signals(), "storage"),
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
    const [remembered, contributed, cachedSegments, cachedRecommendations] = await Promise.all([
      store.getMeta("consent"),
      store.getMeta("rounds"),
      store.getModel(segmentModel),
      store.getModel(options.recommendationModel ?? RECOMMENDATION_MODEL),
    ]);
    if (remembered) explicit = { ...remembered, ...explicit };
    for (const round of contributed ?? []) rounds.add(round);
    if (cachedSegments) hold(cachedSegments.model);
    if (cachedRecommendations) hold(cachedRecommendations.model);
  }

  let stopCmp = () => {};
  const ready = (async () => {
    try {
      if (lookForCmp) {
        await new Promise<void>((resolve) => {
          let found = false;
          const timer = setTimeout(() => {
            // No CMP in time: the page is taken to have none (a later one is still heard).
            if (!found) apply(null);
            resolve();
          }, options.tcfTimeoutMs ?? 500);
          /** A decision (or the CMP's absence) is known; "pending" never undoes one. */
          let settled = false;
          const apply = (next: TcfSignal | null) => {
            if (next?.status !== "pending") {
              settled = true;
              clearTimeout(timer);
              resolve();
            }
            tcf = next;
            announce();
            void manager.reconcile();
          };
          const injected = options.tcfApi;
          stopCmp = watchCmp({
            ...(injected ? { find: () => ({ api: injected, dispose() {} }) } : {}),
            timeoutMs: options.tcfTimeoutMs ?? 500,
            discoveryMs: options.tcfDiscoveryMs ?? 10_000,
            // A banner shown again carries its TC string, so it is a decision, not "pending".
            onSignal: (signal) => {
              if (signal.status !== "pending" || !settled) apply(signal);
            },
            onFound: () => {
              found = true;
            },
          });
        });
      }
      await manager.reconcile();
      await manager.run(loadRemembered);
      announce();
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
      ...(options.syncRetry ? { retry: options.syncRetry } : {}),
      ...(options.syncTimeoutMs ? { timeoutMs: options.syncTimeoutMs } : {}),
    });
    return client;
  }

  /** Keeps `model` if it is newer than what this device holds; the segment model sets tag thresholds. */
  function hold(model: ModelVersion): boolean {
    const held = heldModels.get(model.modelId);
    if (held && held.version >= model.version) return false;
    heldModels.set(model.modelId, model);
    if (model.modelId === segmentModel && model.params?.kind === "kmeans") {
      thresholds = { ...thresholds, ...model.params.tagThresholds };
    }
    return true;
  }

  /** Holds and caches a fetched model version; emits `model` when it is new. */
  async function received(model: ModelVersion | null): Promise<void> {
    if (!model || !hold(model)) return;
    emit({ type: "model", modelId: model.modelId, version: model.version });
    if (!consentNow().storage) return;
    const cached: CachedModel = { modelId: model.modelId, storedAt: now(), model };
    await manager
      .run(() => manager.store.putModel(cached))
      .catch((error) => emit({ type: "error", error: toError(error) }));
  }

  /** The base model a round's task improves on: held, else fetched by version (ETag). */
  async function baseModel(api: CoordinatorClient, modelId: string, version: number): Promise<ModelVersion> {
    const held = heldModels.get(modelId);
    if (held?.version === version) return held;
    const fetched = await api.model(modelId, version, held ?? null);
    if (!fetched || fetched.version !== version) {
      throw new FedprofileError("model_unavailable", `model ${modelId} has no version ${version}`);
    }
    await received(fetched);
    return fetched;
  }

  /** This device's vector for `round`: its model kind's contribution, or the skeleton's activity vector. */
  async function contributionFor(api: CoordinatorClient, round: RoundInfo): Promise<Float64Array> {
    await ready;
    const task = round.task;
    if (!task) return profiler.roundVector(round.modelId, round.dimension);
    if (task.kind === "fcf") {
      const base = await baseModel(api, round.modelId, task.baseVersion);
      if (base.params?.kind !== "fcf") {
        throw new FedprofileError("model_unavailable", `round ${round.roundId} names no fcf base model`);
      }
      const recs = await import("./sync/recs");
      await recs.ensureTfBackend(options.tfBackend, options.tfWasmPath);
      const model = recs.fcfModelOf({ ...base, params: base.params });
      const events = await manager.run(() => manager.store.events());
      const touched = recs.touchedItems(task.spec, model, recs.itemSignals(events));
      return recs.contributeFcf(task.spec, task.block, model, touched);
    }
    const z = profileVector(computeFeatures(manager.view, now(), config));
    const base = task.baseVersion === null ? null : await baseModel(api, round.modelId, task.baseVersion);
    const params = base?.params?.kind === "kmeans" ? base.params : null;
    if (task.phase === "lloyd" && !params) {
      throw new FedprofileError("model_unavailable", `round ${round.roundId} names no base model`);
    }
    const { contributeKMeans } = await import("./sync/model-tasks");
    return contributeKMeans(task.spec, task.phase, params, z);
  }

  async function participate(
    api: CoordinatorClient,
    modelId: string,
    open?: RoundInfo,
  ): Promise<RoundOutcome> {
    const [{ participateInRound }, { createOutboxSessionStore }] = await Promise.all([
      import("./sync/plain-round"),
      import("./sync/session-store"),
    ]);
    const outcome = await participateInRound(
      api,
      modelId,
      (_dimension, round) => contributionFor(api, round),
      {
        alreadyContributed: (roundId) => rounds.has(roundId),
        sessions: createOutboxSessionStore(() => manager.store, now),
        ...(open ? { round: open } : {}),
        ...(options.privacyPolicy ? { policy: options.privacyPolicy } : {}),
        ...(options.admission ? { admission: options.admission } : {}),
      },
    );
    if (outcome.status === "contributed") await manager.run(() => rememberRound(outcome.roundId));
    emit({ type: "sync", modelId, outcome });
    return outcome;
  }

  async function rememberRound(roundId: string) {
    rounds.add(roundId);
    const store = manager.store;
    if (store.kind === "indexeddb") await store.setMeta("rounds", [...rounds].slice(-MAX_REMEMBERED_ROUNDS));
  }

  const dropped: DroppedCounts = { total: 0, byReason: {}, unusedEvents: {} };
  const reportedUnknown = new Set<string>();
  // Reported once listeners had a chance to subscribe (right after createProfiler returns).
  queueMicrotask(() => {
    for (const message of money.ignored) {
      emit({ type: "warning", warning: { code: "invalid_option", event: "createProfiler", message } });
    }
  });

  /** Emits the warnings (an unknown name once), counts a drop, settles the callback. */
  function settle(
    result: TrackResult,
    callback: TrackCallback | undefined,
    unused?: UnusedEventName,
  ): Promise<TrackResult> {
    for (const warning of result.warnings) {
      if (warning.code === "unknown_event") {
        if (reportedUnknown.has(warning.event) || reportedUnknown.size >= 256) continue;
        reportedUnknown.add(warning.event);
      }
      emit({ type: "warning", warning });
    }
    countDrop(dropped, result, unused);
    try {
      callback?.(result);
    } catch (error) {
      emit({ type: "error", error: toError(error) });
    }
    const error = options.strict ? strictError(result) : undefined;
    return error ? Promise.reject(error) : Promise.resolve(result);
  }

  const profiler: Profiler = {
    ready,
    track(name, properties, trackOptions, callback) {
      const args = trackArguments(properties, trackOptions, callback);
      if (closed) return settle({ kept: false, reason: "closed", warnings: [] }, args.callback);
      const { stored, result, unused } = intake(name, args.properties, args.timestamp, intakeContext);
      if (stored) manager.add(stored);
      return settle(result, args.callback, unused);
    },
    async getProfile(profileOptions) {
      await ready;
      const asOf = profileOptions?.asOf ?? now();
      return readProfile(manager.view, asOf, config, thresholds, segmentOf, manager.store.kind, dropped);
    },
    flush: () => manager.flush(),
    async roundVector(modelId, dimension) {
      if (modelId !== ACTIVITY_MODEL || dimension !== 2) {
        throw new RangeError(`no round vector for model ${modelId} with dimension ${dimension}`);
      }
      await ready;
      return Float64Array.of(1, manager.view.eventCount);
    },
    async sync(modelId) {
      await ready;
      if (!consentNow().sync) {
        const outcome: SyncOutcome = { status: "no-consent" };
        emit({ type: "sync", modelId: modelId ?? "*", outcome });
        return outcome;
      }
      try {
        const api = await coordinator();
        if (modelId !== undefined) return await participate(api, modelId);
        const listed = await api.tasks().catch(async (error: unknown) => {
          const { failureOutcome } = await import("./sync/plain-round");
          const outcome = failureOutcome(error);
          if (!outcome) throw error;
          return outcome;
        });
        if (!("tasks" in listed)) {
          emit({ type: "sync", modelId: "*", outcome: listed });
          return listed;
        }
        const { tasks } = listed;
        const outcomes: Array<{ modelId: string; outcome: RoundOutcome }> = [];
        for (const task of tasks) {
          if (task.round)
            outcomes.push({
              modelId: task.modelId,
              outcome: await participate(api, task.modelId, task.round),
            });
          const held = heldModels.get(task.modelId) ?? null;
          if (task.latestVersion !== null && (held?.version ?? 0) < task.latestVersion) {
            await received(await api.model(task.modelId, "latest", held));
          }
        }
        return { status: "synced", outcomes };
      } catch (error) {
        // The device's own policy refused before anything was sent (`PolicyRefusedError`).
        if (error instanceof FedprofileError && error.code === "refused_by_policy") {
          const outcome: SyncOutcome = { status: "refused-by-policy", roundId: null, reason: error.message };
          emit({ type: "sync", modelId: modelId ?? "*", outcome });
          return outcome;
        }
        emit({ type: "error", error: toError(error) });
        throw error;
      }
    },
    async pullModel(modelId = ACTIVITY_MODEL) {
      await ready;
      const held = heldModels.get(modelId) ?? null;
      const model = await (await coordinator()).model(modelId, "latest", held);
      await received(model);
      return model;
    },
    async recommend(n = 10, recommendOptions = {}) {
      await ready;
      const held = heldModels.get(options.recommendationModel ?? RECOMMENDATION_MODEL);
      if (held?.params?.kind !== "fcf") return [];
      const params = held.params;
      const recs = await import("./sync/recs");
      await recs.ensureTfBackend(options.tfBackend, options.tfWasmPath);
      const model = recs.fcfModelOf({ ...held, params });
      const events = await manager.run(() => manager.store.events());
      // The user solve uses the confidences and λ the model was trained with.
      const spec = params.spec;
      const touched = recs.touchedItems(spec, model, recs.itemSignals(events));
      return recs.recommendItems(spec, model, touched, n, recommendOptions);
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
      announce();
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
      stopCmp();
      await ready;
      await manager.close();
    },
    on(
      typeOrListener: ProfilerEvent["type"] | ((event: ProfilerEvent) => void),
      typed?: (event: ProfilerEvent) => void,
    ) {
      const type = typeof typeOrListener === "string" ? typeOrListener : undefined;
      const listener = typeof typeOrListener === "function" ? typeOrListener : typed;
      if (!listener) throw new TypeError("on: listener must be a function");
      let sawConsent = false;
      const wrapped = (event: ProfilerEvent) => {
        if (type !== undefined && event.type !== type) return;
        if (event.type === "consent") sawConsent = true;
        listener(event);
      };
      listeners.add(wrapped);
      if (type === undefined || type === "consent") {
        queueMicrotask(() => {
          if (!announced || sawConsent || !listeners.has(wrapped)) return;
          try {
            wrapped({ type: "consent", consent: announced });
          } catch {
            // as in emit: a failing listener breaks nothing
          }
        });
      }
      return () => listeners.delete(wrapped);
    },
  };
  return profiler;
}
