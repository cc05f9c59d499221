/**
 * In-process implementations of the storage ports, for node tests and the node simulator.
 * They follow the same contracts as the D1 / Durable Object implementations in `edge/`.
 */

import { type RandomBytes, systemRandomBytes } from "@fedprofile/protocol/bytes";
import { DEVELOPMENT_PRIVACY_POLICY, type PrivacyPolicy } from "@fedprofile/protocol/dp";
import type { ModelDeclaration, ModelVersion, RoundInfo, TrainingRound } from "@fedprofile/protocol/wire";
import { WIRE_VERSION } from "@fedprofile/protocol/wire";
import { MemoryAdmissionIssuerStore, MemorySpentTokens } from "../admission/redeem";
import type { ApiKeyKind } from "../api-keys";
import { NotFoundError } from "../errors";
import { type LedgerSigner, signerFromSeed } from "../ledger/chain";
import { isReleaseEntry, type LedgerCheckpoint, type LedgerEntry } from "../ledger/schema";
import { type LedgerScope, MemoryLedgerStore } from "../ledger/store";
import { createTrainerHost, type TrainerHost, type TrainerState } from "../models/trainer";
import type {
  ApiKeyRecord,
  AuditLedgerStore,
  BudgetReservation,
  Clock,
  ModelDraft,
  ModelStore,
  PrivacyBudget,
  PrivacyBudgetStore,
  RoundIndex,
  RoundStateStore,
  Tenant,
  TenantStore,
  TrainingStore,
} from "../ports";
import { type AnyRoundHost, type AnyRoundState, createAnyRoundHost } from "../rounds/any-round-host";
import { createRoundPrivacy, type RoundPrivacy } from "../rounds/round-privacy";
import { createRoundService, type RoundService } from "../rounds/round-service";
import {
  type AggregatorHost,
  type AggregatorState,
  createAggregatorHost,
  type NodeStore,
} from "../rounds/secagg-aggregator-host";
import { createSecAggShardHost, type EntryStore, type SecAggShardHost } from "../rounds/secagg-shard-host";
import { CHUNK_BYTES, chunkEntries, joinChunks, parentOf } from "../rounds/shard-tree";
import { createStageListeners, type StageListeners, withStageNotify } from "../rounds/stage-notify";

export class MemoryTenantStore implements TenantStore {
  readonly tenants = new Map<string, Tenant>();
  readonly keys = new Map<string, ApiKeyRecord>();

  addTenant(tenant: Tenant, keys: Partial<Record<ApiKeyKind, { keyHash: string }>>): void {
    this.tenants.set(tenant.id, tenant);
    for (const [kind, value] of Object.entries(keys)) {
      this.keys.set(`${tenant.id}/${value.keyHash}`, {
        tenantId: tenant.id,
        kind: kind as ApiKeyKind,
        revokedAt: null,
      });
    }
  }

  async findTenant(tenantId: string): Promise<Tenant | null> {
    return this.tenants.get(tenantId) ?? null;
  }

  async findApiKey(tenantId: string, keyHash: string): Promise<ApiKeyRecord | null> {
    return this.keys.get(`${tenantId}/${keyHash}`) ?? null;
  }
}

export class MemoryModelStore implements ModelStore {
  private readonly versions = new Map<string, ModelVersion[]>();

  async publish(tenantId: string, draft: ModelDraft, publishedAt: number): Promise<ModelVersion> {
    const key = `${tenantId}/${draft.modelId}`;
    const list = this.versions.get(key) ?? [];
    const existing = list.find((m) => m.roundId === draft.roundId);
    if (existing) return existing;
    const version: ModelVersion = {
      v: WIRE_VERSION,
      ...draft,
      version: list.length + 1,
      publishedAt: new Date(publishedAt).toISOString(),
    };
    list.push(version);
    this.versions.set(key, list);
    return version;
  }

  async latest(tenantId: string, modelId: string): Promise<ModelVersion | null> {
    return this.versions.get(`${tenantId}/${modelId}`)?.at(-1) ?? null;
  }

  async get(tenantId: string, modelId: string, version: number): Promise<ModelVersion | null> {
    return this.versions.get(`${tenantId}/${modelId}`)?.find((m) => m.version === version) ?? null;
  }

  async list(tenantId: string, modelId: string, page: { limit: number; cursor: string | null }) {
    const all = [...(this.versions.get(`${tenantId}/${modelId}`) ?? [])].reverse();
    const before = page.cursor === null ? Number.POSITIVE_INFINITY : Number(page.cursor);
    const items = all.filter((m) => m.version < before).slice(0, page.limit);
    const last = items.at(-1);
    const more = last !== undefined && all.some((m) => m.version < last.version);
    return {
      v: WIRE_VERSION,
      items: items.map(({ weights: _weights, params: _params, ...summary }) => summary),
      nextCursor: more && last ? String(last.version) : null,
    };
  }
}

export class MemoryRoundIndex implements RoundIndex {
  private readonly rounds = new Map<string, RoundInfo>();

  async insert(tenantId: string, info: RoundInfo): Promise<void> {
    this.rounds.set(`${tenantId}/${info.roundId}`, info);
  }

  async findOpen(tenantId: string, modelId: string, now: number): Promise<RoundInfo | null> {
    let newest: RoundInfo | null = null;
    for (const [key, info] of this.rounds) {
      if (!key.startsWith(`${tenantId}/`) || info.modelId !== modelId) continue;
      if (info.stage !== "collecting" || info.closesAt <= now) continue;
      if (!newest || info.openedAt > newest.openedAt) newest = info;
    }
    return newest;
  }

  async countOpen(tenantId: string, modelId: string): Promise<number> {
    let open = 0;
    for (const [key, info] of this.rounds)
      if (key.startsWith(`${tenantId}/`) && info.modelId === modelId && info.stage === "collecting") open++;
    return open;
  }

  private readonly places = new Map<string, { modelId: string; expiresAt: number }>();

  async reserveOpen(
    tenantId: string,
    modelId: string,
    roundId: string,
    limit: number,
    now: number,
    expiresAt: number,
  ) {
    // No await between the count and the insert: atomic in one event loop, as one SQL statement is in D1.
    let taken = 0;
    for (const [key, place] of this.places) {
      if (
        key.startsWith(`${tenantId}/`) &&
        place.modelId === modelId &&
        place.expiresAt > now &&
        !this.rounds.has(key)
      )
        taken++;
    }
    let open = 0;
    for (const [key, info] of this.rounds)
      if (key.startsWith(`${tenantId}/`) && info.modelId === modelId && info.stage === "collecting") open++;
    if (open + taken >= limit) return false;
    this.places.set(`${tenantId}/${roundId}`, { modelId, expiresAt });
    return true;
  }

  async releaseOpen(tenantId: string, roundId: string): Promise<void> {
    this.places.delete(`${tenantId}/${roundId}`);
  }

  async get(tenantId: string, roundId: string): Promise<RoundInfo | null> {
    return this.rounds.get(`${tenantId}/${roundId}`) ?? null;
  }

  async markEnded(tenantId: string, roundId: string, stage: RoundInfo["stage"]): Promise<void> {
    const info = this.rounds.get(`${tenantId}/${roundId}`);
    if (!info) throw new NotFoundError(`round ${roundId} not found`);
    this.rounds.set(`${tenantId}/${roundId}`, { ...info, stage });
  }
}

export class MemoryPrivacyBudgetStore implements PrivacyBudgetStore {
  private readonly budgets = new Map<string, PrivacyBudget>();
  private readonly reserved = new Map<string, Map<string, BudgetReservation>>();

  async get(tenantId: string, modelId: string): Promise<PrivacyBudget | null> {
    const budget = this.budgets.get(`${tenantId}/${modelId}`);
    return budget ? { ...budget } : null;
  }
  async set(tenantId: string, modelId: string, budget: Omit<PrivacyBudget, "version">): Promise<void> {
    const version = (this.budgets.get(`${tenantId}/${modelId}`)?.version ?? 0) + 1;
    this.budgets.set(`${tenantId}/${modelId}`, { ...budget, version });
  }
  async reservations(tenantId: string, modelId: string, now: number): Promise<BudgetReservation[]> {
    const all = this.reserved.get(`${tenantId}/${modelId}`) ?? new Map();
    return [...all.values()].filter((r) => r.expiresAt > now).map((r) => structuredClone(r));
  }
  async reserve(tenantId: string, modelId: string, expectedVersion: number, reservation: BudgetReservation) {
    const key = `${tenantId}/${modelId}`;
    const budget = this.budgets.get(key);
    if (!budget || budget.version !== expectedVersion) return false;
    this.budgets.set(key, { ...budget, version: budget.version + 1 });
    const all = this.reserved.get(key) ?? new Map<string, BudgetReservation>();
    all.set(reservation.roundId, structuredClone(reservation));
    this.reserved.set(key, all);
    return true;
  }
  async release(tenantId: string, modelId: string, roundId: string): Promise<void> {
    this.reserved.get(`${tenantId}/${modelId}`)?.delete(roundId);
  }
}

/** The ledger in memory, with the auditor's raw pages in (model, seq) order like D1's. */
export class MemoryAuditLedgerStore extends MemoryLedgerStore implements AuditLedgerStore {
  private readonly models = new Map<string, Set<string>>();
  private readonly published = new Map<string, LedgerCheckpoint[]>();

  override async append(entry: Parameters<MemoryLedgerStore["append"]>[0]): Promise<void> {
    await super.append(entry);
    const models = this.models.get(entry.tenant) ?? new Set();
    models.add(entry.model);
    this.models.set(entry.tenant, models);
  }

  async roundEntry(scope: LedgerScope, roundId: string): Promise<LedgerEntry | null> {
    const entries = await this.list(scope, { limit: Number.MAX_SAFE_INTEGER });
    return entries.find((entry) => isReleaseEntry(entry) && entry.roundId === roundId) ?? null;
  }

  async rows(tenantId: string, query: { model?: string; cursor: string | null; limit: number }) {
    const [afterModel = "", afterSeq = "-1"] = query.cursor?.split(":") ?? [];
    const models = [...(this.models.get(tenantId) ?? [])]
      .filter((m) => (query.model === undefined || m === query.model) && m >= afterModel)
      .sort();
    const rows: unknown[] = [];
    let last: { model: string; seq: number } | null = null;
    for (const model of models) {
      const after = model === afterModel ? Number(afterSeq) : -1;
      const page = await this.list({ tenant: tenantId, model }, { afterSeq: after, limit: query.limit + 1 });
      for (const entry of page) {
        if (rows.length === query.limit)
          return { rows, nextCursor: last ? `${last.model}:${last.seq}` : null };
        rows.push(structuredClone(entry));
        last = { model, seq: entry.seq };
      }
    }
    return { rows, nextCursor: null };
  }

  async scopes(): Promise<LedgerScope[]> {
    return [...this.models.keys()]
      .sort()
      .flatMap((tenant) => [...(this.models.get(tenant) ?? [])].sort().map((model) => ({ tenant, model })));
  }

  async putCheckpoint(checkpoint: LedgerCheckpoint): Promise<void> {
    const key = `${checkpoint.tenant}/${checkpoint.model}`;
    const kept = this.published.get(key) ?? [];
    if (!kept.some((c) => c.seq === checkpoint.seq && c.timestamp === checkpoint.timestamp))
      kept.push(structuredClone(checkpoint));
    this.published.set(key, kept);
  }

  async checkpoints(scope: LedgerScope, limit: number): Promise<LedgerCheckpoint[]> {
    return structuredClone((this.published.get(`${scope.tenant}/${scope.model}`) ?? []).slice(-limit));
  }
}

/** Declared models and their training history, in memory. */
export class MemoryTrainingStore implements TrainingStore {
  private readonly declarations = new Map<string, ModelDeclaration>();
  private readonly history = new Map<string, TrainingRound[]>();

  async putDeclaration(tenantId: string, modelId: string, declaration: ModelDeclaration): Promise<void> {
    this.declarations.set(`${tenantId}/${modelId}`, structuredClone(declaration));
  }
  async getDeclaration(tenantId: string, modelId: string): Promise<ModelDeclaration | null> {
    const found = this.declarations.get(`${tenantId}/${modelId}`);
    return found ? structuredClone(found) : null;
  }
  async listModels(tenantId: string): Promise<string[]> {
    return [...this.declarations.keys()]
      .filter((key) => key.startsWith(`${tenantId}/`))
      .map((key) => key.slice(tenantId.length + 1))
      .sort();
  }
  async appendRound(tenantId: string, modelId: string, round: TrainingRound): Promise<void> {
    const list = this.history.get(`${tenantId}/${modelId}`) ?? [];
    if (!list.some((r) => r.roundId === round.roundId)) list.push(structuredClone(round));
    this.history.set(`${tenantId}/${modelId}`, list);
  }
  async rounds(tenantId: string, modelId: string, limit: number): Promise<TrainingRound[]> {
    return [...(this.history.get(`${tenantId}/${modelId}`) ?? [])].reverse().slice(0, limit);
  }
}

/**
 * A round state store in memory, with alarms a test fires by hand (or by `fireDueAlarms`). Sums
 * are chunked as in a Durable Object, and no stored value may exceed `maxValueBytes` (the state's
 * structured-clone size is estimated as its JSON length).
 */
export class MemoryRoundStateStore<State> implements RoundStateStore<State>, NodeStore<State> {
  state: State | null = null;
  alarmAt: number | null = null;
  readonly sums = new Map<string, unknown>();

  /** `maxValueBytes`: refuse a state larger than this, as workerd's SQLite does (default: no check). */
  constructor(readonly maxValueBytes = Number.POSITIVE_INFINITY) {}

  async load(): Promise<State | null> {
    return this.state === null ? null : structuredClone(this.state);
  }
  async save(state: State, sums: Record<string, Uint8Array> = {}): Promise<void> {
    const bytes = Number.isFinite(this.maxValueBytes) ? JSON.stringify(state).length : 0;
    if (bytes > this.maxValueBytes) throw new Error(`state value of ${bytes} bytes: SQLITE_TOOBIG`);
    const entries = Object.entries(sums).flatMap(([key, value]) => Object.entries(chunkEntries(key, value)));
    for (const [, value] of entries)
      if (value instanceof Uint8Array && value.length > CHUNK_BYTES) throw new Error("chunk too large");
    this.state = structuredClone(state);
    for (const [key, value] of entries) this.sums.set(key, structuredClone(value));
  }
  async sum(key: string): Promise<Uint8Array | null> {
    return joinChunks(key, async (k) => this.sums.get(k));
  }
  async deleteSums(keys: string[]): Promise<void> {
    for (const key of [...this.sums.keys()])
      if (keys.some((k) => key === k || key.startsWith(`${k}#`))) this.sums.delete(key);
  }
  async setAlarm(at: number): Promise<void> {
    this.alarmAt = at;
  }
  async deleteAlarm(): Promise<void> {
    this.alarmAt = null;
  }
  async deleteAll(): Promise<void> {
    this.state = null;
    this.sums.clear();
    this.alarmAt = null;
  }
}

/** An entry store in memory, with an alarm a test fires by hand. */
export class MemoryEntryStore implements EntryStore {
  readonly entries = new Map<string, unknown>();
  alarmAt: number | null = null;

  async list(): Promise<Map<string, unknown>> {
    return new Map([...this.entries].map(([key, value]) => [key, structuredClone(value)]));
  }
  async put(entries: Record<string, unknown>): Promise<void> {
    for (const [key, value] of Object.entries(entries)) this.entries.set(key, structuredClone(value));
  }
  async setAlarm(at: number): Promise<void> {
    this.alarmAt = at;
  }
  async deleteAlarm(): Promise<void> {
    this.alarmAt = null;
  }
  async delete(keys: string[]): Promise<void> {
    for (const key of keys) this.entries.delete(key);
  }
  async deleteAll(): Promise<void> {
    this.entries.clear();
    this.alarmAt = null;
  }
}

export interface MemoryCoordinator {
  tenants: MemoryTenantStore;
  models: MemoryModelStore;
  index: MemoryRoundIndex;
  rounds: RoundService;
  hosts: Map<string, { host: AnyRoundHost; store: MemoryRoundStateStore<AnyRoundState> }>;
  shards: Map<string, { host: SecAggShardHost; store: MemoryEntryStore }>;
  /** Every shard's stage changes (the in-process `StageNotifier`; the Worker pushes them on sockets). */
  stages: StageListeners;
  aggregators: Map<string, { host: AggregatorHost; store: MemoryRoundStateStore<AggregatorState> }>;
  /** Aggregator `index` of a round (created on first use, like a Durable Object). */
  aggregatorFor(tenantId: string, roundId: string, index: number): AggregatorHost;
  /** Shard `shard` of a round (created on first use, like a Durable Object). */
  shardFor(tenantId: string, roundId: string, shard: number): SecAggShardHost;
  budgets: MemoryPrivacyBudgetStore;
  ledger: MemoryAuditLedgerStore;
  privacy: RoundPrivacy;
  /** Tenants' registered token issuers. */
  admission: MemoryAdmissionIssuerStore;
  /** Each round object's spent tokens (kept across `restartAll`, like its state). */
  spentTokens: Map<string, MemorySpentTokens>;
  training: MemoryTrainingStore;
  trainers: Map<string, { host: TrainerHost; store: MemoryRoundStateStore<TrainerState> }>;
  /** The trainer of a model (created on first use, like a Durable Object). */
  trainerFor(tenantId: string, modelId: string): TrainerHost;
  /** Runs the alarm of every round and shard whose deadline has passed at `clock()`. */
  fireDueAlarms(): Promise<void>;
  /** Simulates a restart: every host is dropped and rebuilt from its stored state on next use. */
  restartAll(): void;
}

/** Wires every port in memory: the same core the Worker runs, minus the runtime. */
export function createMemoryCoordinator(
  options: {
    clock?: Clock;
    randomBytes?: RandomBytes;
    signer?: LedgerSigner;
    /** Privacy floors rounds must meet (default: the development floors, for tests and demos). */
    floors?: PrivacyPolicy;
  } = {},
): MemoryCoordinator {
  const clock = options.clock ?? Date.now;
  const random = options.randomBytes ? { randomBytes: options.randomBytes } : {};
  const budgets = new MemoryPrivacyBudgetStore();
  const ledger = new MemoryAuditLedgerStore();
  const signer = options.signer ?? signerFromSeed((options.randomBytes ?? systemRandomBytes)(32));
  const floors = options.floors ?? DEVELOPMENT_PRIVACY_POLICY;
  const privacy = createRoundPrivacy({
    budgets,
    ledger,
    signer,
    clock,
    dailyEpsilonCap: floors.maxEpsilonPerModelPerDay,
  });
  const tenants = new MemoryTenantStore();
  const models = new MemoryModelStore();
  const index = new MemoryRoundIndex();
  const hosts: MemoryCoordinator["hosts"] = new Map();
  const shards: MemoryCoordinator["shards"] = new Map();
  const stages = createStageListeners();
  const roundStores = new Map<string, MemoryRoundStateStore<AnyRoundState>>();
  const admission = new MemoryAdmissionIssuerStore();
  const spentTokens = new Map<string, MemorySpentTokens>();
  const shardStores = new Map<string, MemoryEntryStore>();
  const aggregators: MemoryCoordinator["aggregators"] = new Map();
  const aggregatorStores = new Map<string, MemoryRoundStateStore<AggregatorState>>();

  // Like a Durable Object reset: after `restartAll`, an old host's in-flight work can no longer
  // touch storage, so only the host rebuilt from storage moves the round on.
  let generation = 0;
  const fence = <T extends object>(store: T, born: number): T =>
    new Proxy(store, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (born !== generation) return Promise.reject(new Error("object was reset; retry the request"));
          return Reflect.apply(value, target, args);
        };
      },
    });

  const shardFor = (tenantId: string, roundId: string, shard: number): SecAggShardHost => {
    const key = `${tenantId}/${roundId}/${shard}`;
    let entry = shards.get(key);
    if (!entry) {
      const store = shardStores.get(key) ?? new MemoryEntryStore();
      shardStores.set(key, store);
      const plain = createSecAggShardHost({
        store: fence(store, generation),
        clock,
        root: (meta) => {
          const parent = parentOf(meta.shard, meta.shards ?? 0);
          return parent.kind === "root"
            ? hostFor(meta.tenantId, meta.roundId)
            : aggregatorFor(meta.tenantId, meta.roundId, parent.index);
        },
      });
      const host = withStageNotify(plain, stages);
      entry = { host, store };
      shards.set(key, entry);
    }
    return entry.host;
  };
  const aggregatorFor = (tenantId: string, roundId: string, index: number): AggregatorHost => {
    const key = `${tenantId}/${roundId}/${index}`;
    let entry = aggregators.get(key);
    if (!entry) {
      const store = aggregatorStores.get(key) ?? new MemoryRoundStateStore<AggregatorState>();
      aggregatorStores.set(key, store);
      const host = createAggregatorHost({
        store: fence(store, generation),
        clock,
        root: (config) => hostFor(config.tenantId, config.roundId),
        shardFor,
      });
      entry = { host, store };
      aggregators.set(key, entry);
    }
    return entry.host;
  };
  const hostFor = (tenantId: string, roundId: string): AnyRoundHost => {
    const key = `${tenantId}/${roundId}`;
    let entry = hosts.get(key);
    if (!entry) {
      const store = roundStores.get(key) ?? new MemoryRoundStateStore<AnyRoundState>();
      roundStores.set(key, store);
      const spent = spentTokens.get(key) ?? new MemorySpentTokens();
      spentTokens.set(key, spent);
      const host = createAnyRoundHost({
        admission,
        spentTokens: fence(spent, generation),
        store: fence(store, generation),
        models,
        index,
        clock,
        shardFor,
        aggregatorFor,
        privacy,
        trainerFor: (t, m) => trainerFor(t, m),
        floors,
        ...random,
      });
      entry = { host, store };
      hosts.set(key, entry);
    }
    return entry.host;
  };
  const rounds = createRoundService({ index, hostFor, shardFor, clock, ...random });
  const training = new MemoryTrainingStore();
  const trainers: MemoryCoordinator["trainers"] = new Map();
  const trainerStores = new Map<string, MemoryRoundStateStore<TrainerState>>();
  function trainerFor(tenantId: string, modelId: string): TrainerHost {
    const key = `${tenantId}/${modelId}`;
    let entry = trainers.get(key);
    if (!entry) {
      const store = trainerStores.get(key) ?? new MemoryRoundStateStore<TrainerState>();
      trainerStores.set(key, store);
      const host = createTrainerHost({
        store: fence(store, generation),
        rounds,
        models,
        training,
        privacy,
        clock,
      });
      entry = { host, store };
      trainers.set(key, entry);
    }
    return entry.host;
  }
  return {
    tenants,
    models,
    index,
    rounds,
    hosts,
    shards,
    stages,
    aggregators,
    aggregatorFor,
    shardFor,
    budgets,
    ledger,
    privacy,
    admission,
    spentTokens,
    training,
    trainers,
    trainerFor,
    async fireDueAlarms() {
      // Like a Durable Object alarm, a due alarm wakes its object even when no host is live
      // (after `restartAll`): the host is rebuilt from its stored state.
      const due = (store: { alarmAt: number | null }) => store.alarmAt !== null && store.alarmAt <= clock();
      const parts = (key: string) => key.split("/");
      for (const [key, store] of [...shardStores]) {
        const [tenantId = "", roundId = "", shard = "0"] = parts(key);
        if (due(store)) await shardFor(tenantId, roundId, Number(shard)).alarm();
      }
      for (const [key, store] of [...aggregatorStores]) {
        const [tenantId = "", roundId = "", index = "0"] = parts(key);
        if (due(store)) await aggregatorFor(tenantId, roundId, Number(index)).alarm();
      }
      for (const [key, store] of [...roundStores]) {
        const [tenantId = "", roundId = ""] = parts(key);
        if (due(store)) await hostFor(tenantId, roundId).alarm();
      }
      for (const { host, store } of [...trainers.values()]) {
        if (store.alarmAt !== null && store.alarmAt <= clock()) await host.alarm();
      }
    },
    restartAll() {
      generation++;
      trainers.clear();
      hosts.clear();
      shards.clear();
      aggregators.clear();
    },
  };
}
