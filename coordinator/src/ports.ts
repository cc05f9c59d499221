/**
 * Storage ports: the coordinator core talks to persistence only through these interfaces.
 * `edge/` implements them on D1 and Durable Objects; `memory/` implements them in-process
 * for tests and the node simulator. Nothing here knows which runtime it runs on.
 */

import type { DpEvent } from "@fedprofile/protocol/dp";
import type {
  ContributionRequest,
  ContributionResponse,
  JoinResponse,
  ModelDeclaration,
  ModelKind,
  ModelParams,
  ModelVersion,
  ModelVersionPage,
  OpenRoundRequest,
  RoundInfo,
  RoundStage,
  RoundStatus,
  RoundTask,
  TrainingRound,
} from "@fedprofile/protocol/wire";
import type { ApiKeyKind } from "./api-keys";
import type { LedgerCheckpoint, LedgerEntry } from "./ledger/schema";
import type { LedgerScope, LedgerStore } from "./ledger/store";
import type { RoundResult } from "./models/trainer";

export interface Tenant {
  id: string;
  name: string;
  createdAt: number;
}

export interface ApiKeyRecord {
  tenantId: string;
  kind: ApiKeyKind;
  revokedAt: number | null;
}

/** Tenants and their API keys (keys stored only as SHA-256 digests). */
export interface TenantStore {
  findTenant(tenantId: string): Promise<Tenant | null>;
  findApiKey(tenantId: string, keyHash: string): Promise<ApiKeyRecord | null>;
}

/** What a round hands over to be published as the next model version. */
export interface ModelDraft {
  modelId: string;
  roundId: string;
  dimension: number;
  contributions: number;
  aggregation: string;
  /** base64 of little-endian float64 weights */
  weights: string;
  /** A trainer's model: its kind and the kind's published parameters (e.g. k-means segments). */
  kind?: ModelKind;
  params?: ModelParams;
}

import type { ModelBlob } from "./models/model-blobs";

/** Versioned models: each closed round publishes the next version. */
export interface ModelStore {
  /** Stores `draft` as version latest+1 and returns it; idempotent per `roundId`. */
  publish(tenantId: string, draft: ModelDraft, publishedAt: number): Promise<ModelVersion>;
  latest(tenantId: string, modelId: string): Promise<ModelVersion | null>;
  /** The newest version number alone, without reading weights (check-in); optional. */
  latestVersion?(tenantId: string, modelId: string): Promise<number | null>;
  /**
   * A version's weights as bytes with their ETag (a blob store's; `../models/model-blobs.ts`), or
   * null unless that version was published by round `roundId`; optional.
   */
  weights?(tenantId: string, modelId: string, version: number, roundId: string): Promise<ModelBlob | null>;
  get(tenantId: string, modelId: string, version: number): Promise<ModelVersion | null>;
  /** Newest first; `cursor` is opaque and comes from the previous page. */
  list(
    tenantId: string,
    modelId: string,
    page: { limit: number; cursor: string | null },
  ): Promise<ModelVersionPage>;
}

/** The index of rounds per tenant and model, so check-in can find the open round. */
export interface RoundIndex {
  insert(tenantId: string, info: RoundInfo): Promise<void>;
  findOpen(tenantId: string, modelId: string, now: number): Promise<RoundInfo | null>;
  /** Rounds of the model still collecting (not yet closed or aborted). */
  countOpen(tenantId: string, modelId: string): Promise<number>;
  /**
   * Atomically takes a place for round `roundId` if the model's collecting rounds plus places
   * taken (unexpired, round not yet inserted) are below `limit`; false when they are not.
   */
  reserveOpen(
    tenantId: string,
    modelId: string,
    roundId: string,
    limit: number,
    now: number,
    expiresAt: number,
  ): Promise<boolean>;
  /** Gives a place back (the round is inserted, or failed to open). */
  releaseOpen(tenantId: string, roundId: string): Promise<void>;
  get(tenantId: string, roundId: string): Promise<RoundInfo | null>;
  markEnded(tenantId: string, roundId: string, stage: RoundStage, modelVersion: number | null): Promise<void>;
}

/**
 * One round's live state machine, wherever it lives (a Durable Object in production, an
 * in-process object in tests). Every method is serialised by the host.
 */
export interface RoundHostHandle {
  /** Opens the round; `task` marks a trainer's round, whose result goes to the trainer. */
  open(tenantId: string, roundId: string, request: OpenRoundRequest, task?: RoundTask): Promise<RoundStatus>;
  /** Admits a device; `token` is its Privacy Pass token when the round admits by token. */
  join(token?: string): Promise<JoinResponse>;
  contribute(request: ContributionRequest): Promise<ContributionResponse>;
  status(): Promise<RoundStatus | null>;
  /** A trainer's round once it has ended (null before, and for rounds without a task). */
  result(): Promise<RoundResult | null>;
}

/** Durable storage for one round's serialisable state, plus its deadline alarm. */
export interface RoundStateStore<State> {
  load(): Promise<State | null>;
  save(state: State): Promise<void>;
  /** Schedules the host's `alarm()` at `at` (ms since epoch), replacing any earlier one. */
  setAlarm(at: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** A clock, injectable so tests control deadlines. */
export type Clock = () => number;

/** A model's privacy budget, as the operator set it. */
export interface PrivacyBudget {
  epsilonCap: number;
  delta: number;
  population: number | null;
  updatedAt: number;
  /** Bumped by every change and every reservation (optimistic concurrency). */
  version: number;
}

/** The planned privacy event of a DP round that is open and not yet in the ledger. */
export interface BudgetReservation {
  roundId: string;
  event: DpEvent;
  /** When the round gives up at the latest; an expired reservation no longer counts. */
  expiresAt: number;
}

/**
 * Per-(tenant, model) budget caps, and the reservations of open DP rounds, so that rounds open at
 * the same time cannot together pass the cap.
 */
export interface PrivacyBudgetStore {
  get(tenantId: string, modelId: string): Promise<PrivacyBudget | null>;
  /** Creates or replaces the budget (its `version` is the store's to bump). */
  set(tenantId: string, modelId: string, budget: Omit<PrivacyBudget, "version">): Promise<void>;
  /** Reservations that have not expired at `now`. */
  reservations(tenantId: string, modelId: string, now: number): Promise<BudgetReservation[]>;
  /**
   * Stores `reservation` and bumps the version, atomically, if the budget is still at
   * `expectedVersion`; returns false (and stores nothing) if it moved on.
   */
  reserve(
    tenantId: string,
    modelId: string,
    expectedVersion: number,
    reservation: BudgetReservation,
  ): Promise<boolean>;
  release(tenantId: string, modelId: string, roundId: string): Promise<void>;
}

/**
 * The append-only ledger table. Besides the chain operations the ledger itself uses, auditors
 * page through a tenant's rows *as stored*: a row that was tampered with must reach the verifier
 * unparsed, so it can be named.
 */
export interface AuditLedgerStore extends LedgerStore {
  /**
   * The first entry of the chain recorded for `roundId`, or null: a round's release is appended
   * at most once, however often its end is retried after a crash.
   */
  roundEntry(scope: LedgerScope, roundId: string): Promise<LedgerEntry | null>;
  /** Rows in (model, seq) order after `cursor` (`<model>:<seq>`, from the previous page). */
  rows(
    tenantId: string,
    query: { model?: string; cursor: string | null; limit: number },
  ): Promise<{ rows: unknown[]; nextCursor: string | null }>;
  /** Every chain that holds an entry, in (tenant, model) order. */
  scopes(): Promise<LedgerScope[]>;
  /** Keeps a published checkpoint (ledger SPEC.md §8.2); one per (chain, seq, timestamp). */
  putCheckpoint(checkpoint: LedgerCheckpoint): Promise<void>;
  /** The chain's newest published checkpoints, at most `limit`, oldest first. */
  checkpoints(scope: LedgerScope, limit: number): Promise<LedgerCheckpoint[]>;
}

/** Declared models and their training history (D1 in production). */
export interface TrainingStore {
  putDeclaration(tenantId: string, modelId: string, declaration: ModelDeclaration, at: number): Promise<void>;
  getDeclaration(tenantId: string, modelId: string): Promise<ModelDeclaration | null>;
  /** The tenant's declared model ids, in name order. */
  listModels(tenantId: string): Promise<string[]>;
  /** Records an ended round; idempotent per round id. */
  appendRound(tenantId: string, modelId: string, round: TrainingRound): Promise<void>;
  /** The newest `limit` rounds, newest first. */
  rounds(tenantId: string, modelId: string, limit: number): Promise<TrainingRound[]>;
}
