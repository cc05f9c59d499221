/**
 * Hosts one SecAgg+ shard: one instance of the protocol (`../secagg/server.ts`) over one part of
 * a round's cohort. It admits participants to slots, serves each device its stage view, applies
 * its messages, enforces stage deadlines through the alarm, and reports the shard's integer sum
 * (or abort) to the round's root once.
 *
 * State lives in storage entries (`toStorageEntries`: core, sum, device:<slot>) plus `shard`
 * (tenant, round, participants). After each step only the changed entries are written, so a
 * restarted host rebuilds everything from storage and loses nothing. Operations run one at a
 * time: the protocol handlers await WebCrypto, and a Durable Object's input gate does not hold
 * other requests during such awaits.
 */

import { constantTimeEqual } from "@fedprofile/protocol/bytes";
import type { SecAggAck, SecAggServerView } from "@fedprofile/protocol/wire";
import { ConflictError, FedprofileError, NotFoundError } from "../errors";
import type { Clock } from "../ports";
import {
  abortRound,
  type CreateRoundOptions,
  createRoundState,
  fromStorageEntries,
  handleReceived,
  onDeadline,
  receiveFrame,
  type ServerRoundState,
  type Stage,
  storageEntry,
  toStorageEntries,
  type UnmaskOptions,
  viewFor,
} from "../secagg/index";
import type { LazyShardConfig } from "./lazy-shards";
import { createSerialQueue } from "./serial-queue";

/** A per-object key-value store with one alarm (Durable Object storage, or memory). */
export interface EntryStore {
  list(): Promise<Map<string, unknown>>;
  put(entries: Record<string, unknown>): Promise<void>;
  setAlarm(at: number): Promise<void>;
  deleteAlarm(): Promise<void>;
  /** Removes these entries. */
  delete(keys: string[]): Promise<void>;
  /** Removes every entry and the alarm (an orphan shard erases itself). */
  deleteAll(): Promise<void>;
}

/** What a shard tells the root when it ends. */
export interface ShardOutcome {
  shard: number;
  /** The exact integer sum of the shard's contributors (little-endian u32 words, base64), or null. */
  sum: string | null;
  contributors: number;
  abort: { code: string; stage: string; reason: string } | null;
  /** Devices the shard admitted (joins go to shards directly, so the root counts them from here). */
  admitted?: number;
}

/** The root (or its aggregator) as a shard sees it. */
export interface SecAggRootHandle {
  shardFinished(outcome: ShardOutcome): Promise<void>;
  /** A lazily opened shard's first touch: registers it, answers its options (`./lazy-shards.ts`). */
  registerShard(meta: ShardMeta): Promise<LazyShardConfig>;
}

/** One shard, wherever it lives; every method is serialised by the host. */
export interface SecAggShardHandle {
  open(meta: ShardMeta, options: CreateRoundOptions): Promise<void>;
  /**
   * Admits a participant (by its token's digest) to the next free slot. With `meta`, a shard that
   * does not exist yet opens first, with the options its parent gives it (lazy open), or with
   * `config` when the parent already registered it.
   */
  admit(
    participantId: string,
    tokenHash: string,
    meta?: ShardMeta,
    config?: LazyShardConfig,
  ): Promise<number>;
  view(participantId: string, tokenHash: string): Promise<SecAggServerView>;
  /** One message as its binary frame: decoded here, once, and digested over its raw bytes. */
  message(participantId: string, tokenHash: string, frame: Uint8Array): Promise<SecAggAck>;
  status(): Promise<ShardStatus>;
  /**
   * The root gives up on this shard: runs a deadline that is due, then aborts the shard unless it
   * has ended, and returns its outcome. After it answers, the shard can never reveal a sum, so a
   * root that ends without this shard's report cannot miss a release (a fence).
   */
  close(): Promise<ShardOutcome>;
}

export interface ShardMeta {
  tenantId: string;
  roundId: string;
  shard: number;
  /** Shards in the round, which says where this one reports (`./shard-tree.ts` parentOf). */
  shards?: number;
}

export interface ShardStatus {
  shard: number;
  phase: string;
  admitted: number;
  cohortSize: number;
  contributors: number | null;
  abort: string | null;
}

interface ShardRecord extends ShardMeta {
  participants: Record<string, { slot: number; tokenHash: string }>;
  nextSlot: number;
  reported: boolean;
  /** Failed reports so far (the retry alarm backs off on them). */
  reportAttempts?: number;
  /** When the root acknowledged the report; per-device state is dropped a retention period later. */
  reportedAt?: number;
  /** Set once per-device state is gone: what status() still answers. */
  pruned?: ShardStatus;
}

const SHARD_KEY = "shard";

/** First retry of a report the root has not acknowledged; doubles per failure up to the cap. */
export const REPORT_RETRY_MS = 1_000;
const REPORT_RETRY_CAP_MS = 60_000;
/** How long a finished shard keeps per-device keys, share boxes and digests (default one day). */
export const SHARD_RETENTION_MS = 24 * 60 * 60 * 1000;
/**
 * Mask words one invocation strips at most (`UnmaskOptions.maxMaskWordsPerSlice`): 2^27 words is
 * 1,024 masks at d = 131,072 (d = 65,536 with DP padding), about 0.7 s of PRG at the measured
 * 0.66 ms a mask (bench/results/secagg.json, k = 54: 3,825 ms for about 5,800 masks), far under
 * the 30 s CPU limit of one Durable Object invocation whatever the dropout or shard size.
 */
export const UNMASK_SLICE_WORDS = 2 ** 27;

export interface SecAggShardHostOptions {
  store: EntryStore;
  root(meta: ShardMeta): SecAggRootHandle;
  clock?: Clock;
  unmask?: UnmaskOptions;
  /** Retention of a finished shard's per-device state after the root has its report. */
  retentionMs?: number;
}

export interface SecAggShardHost extends SecAggShardHandle {
  alarm(): Promise<void>;
}

/** Creates the host of one shard over `store`. */
export function createSecAggShardHost(options: SecAggShardHostOptions): SecAggShardHost {
  const { store } = options;
  const clock = options.clock ?? Date.now;
  const retentionMs = options.retentionMs ?? SHARD_RETENTION_MS;
  // Unmasking runs in slices, one per alarm (issue 16), unless the caller sets its own.
  const unmask: UnmaskOptions = { maxMaskWordsPerSlice: UNMASK_SLICE_WORDS, ...options.unmask };
  let cache: { record: ShardRecord; state: ServerRoundState } | null = null;
  const serialised = createSerialQueue();

  async function loadRecord(): Promise<ShardRecord> {
    if (cache) return cache.record;
    const record = (await store.list()).get(SHARD_KEY) as ShardRecord | undefined;
    if (!record) throw new NotFoundError("shard not found");
    return record;
  }

  async function load(): Promise<{ record: ShardRecord; state: ServerRoundState }> {
    if (cache) return cache;
    const entries = await store.list();
    const record = entries.get(SHARD_KEY) as ShardRecord | undefined;
    if (!record) throw new NotFoundError("shard not found");
    if (record.pruned) {
      throw new ConflictError(
        "round_ended",
        `shard ${record.shard} ended and its per-device state has expired`,
      );
    }
    const state = fromStorageEntries(Object.fromEntries(entries));
    cache = { record, state };
    return cache;
  }

  /**
   * Persists the changed entries, keeps the alarm in step, and reports an ended shard. The alarm
   * is written only when the deadline moved (a stage change), not on every message: `before` is
   * the deadline the stored alarm already has.
   */
  async function commit(
    record: ShardRecord,
    state: ServerRoundState,
    changed: string[],
    before?: number | null,
  ): Promise<void> {
    await persist(record, state, changed);
    if (state.deadline !== null) {
      if (state.deadline !== before) await store.setAlarm(state.deadline);
    } else if (ended(state) && !record.reported) {
      // Durable before the root is called: a crash from here on still leaves an alarm that
      // delivers the report (issue 11: the release was lost when the alarm was deleted first).
      await store.setAlarm(clock() + REPORT_RETRY_MS);
      await reportOrRetry();
    } else await store.deleteAlarm();
  }

  /** Writes the changed entries without touching the alarm or reporting. */
  async function persist(record: ShardRecord, state: ServerRoundState, changed: string[]): Promise<void> {
    const entries: Record<string, unknown> = { [SHARD_KEY]: record };
    for (const key of changed) entries[key] = storageEntry(state, key);
    await store.put(entries);
    cache = { record, state };
  }

  function outcomeOf(record: ShardRecord, state: ServerRoundState): ShardOutcome {
    return {
      shard: record.shard,
      sum: state.result?.sum ?? null,
      contributors: state.result?.contributors.length ?? 0,
      abort: state.abort
        ? { code: state.abort.code, stage: state.abort.stage, reason: state.abort.reason }
        : null,
      admitted: record.nextSlot,
    };
  }

  /**
   * Reports an ended shard to the root until it acknowledges. A failure leaves the retry alarm
   * (backing off); a root that does not exist (the round never finished opening) makes this an
   * orphan, which erases itself.
   */
  async function reportOrRetry(): Promise<void> {
    if (!cache || cache.record.reported) return;
    const { record, state } = cache;
    if (!ended(state)) return;
    try {
      await options.root(record).shardFinished(outcomeOf(record, state));
    } catch (error) {
      if (error instanceof FedprofileError && error.status === 404) {
        await store.deleteAll();
        cache = null;
        return;
      }
      const attempts = (record.reportAttempts ?? 0) + 1;
      const next = { ...record, reportAttempts: attempts };
      await store.put({ [SHARD_KEY]: next });
      await store.setAlarm(clock() + Math.min(REPORT_RETRY_MS * 2 ** attempts, REPORT_RETRY_CAP_MS));
      cache = { record: next, state };
      return;
    }
    const reported: ShardRecord = { ...record, reported: true, reportedAt: clock() };
    await store.put({ [SHARD_KEY]: reported });
    await store.setAlarm(clock() + retentionMs);
    cache = { record: reported, state };
  }

  /**
   * Erases a finished shard whose report the parent acknowledged a retention period ago: every
   * entry and the alarm (`deleteAll`). Nothing here is needed any more: the parent stored the
   * outcome before acknowledging it, and the ledger entry lives with the root's privacy store.
   */
  async function erase(): Promise<void> {
    await store.deleteAll();
    cache = null;
  }

  /**
   * First touch of a lazily opened shard: its parent registers it and answers its options; its
   * first deadline counts from the round's open, so every shard keeps the round's schedule.
   */
  async function openLazily(meta: ShardMeta, given?: LazyShardConfig): Promise<void> {
    // `given`: the parent registered this shard itself (a token round's join holds the root).
    const config = given ?? (await options.root(meta).registerShard(meta));
    const state = createRoundState(config.options, config.openedAt);
    const record: ShardRecord = { ...meta, participants: {}, nextSlot: 0, reported: false };
    await commit(record, state, Object.keys(toStorageEntries(state)));
  }

  function statusOf(record: ShardRecord, state: ServerRoundState): ShardStatus {
    return {
      shard: record.shard,
      phase: state.phase,
      admitted: record.nextSlot,
      cohortSize: state.config.cohortSize,
      contributors: state.result?.contributors.length ?? null,
      abort: state.abort ? `${state.abort.code}: ${state.abort.reason}` : null,
    };
  }

  function slotOf(record: ShardRecord, participantId: string, tokenHash: string): number {
    const participant = record.participants[participantId];
    if (!participant || !constantTimeEqual(participant.tokenHash, tokenHash)) {
      throw new FedprofileError(
        "unknown_participant",
        `no participant ${participantId} with that token in this shard`,
        403,
      );
    }
    return participant.slot;
  }

  return {
    open: (meta, roundOptions) =>
      serialised(async () => {
        if ((await store.list()).has(SHARD_KEY))
          throw new ConflictError("round_exists", "shard already open");
        const state = createRoundState(roundOptions, clock());
        const record: ShardRecord = { ...meta, participants: {}, nextSlot: 0, reported: false };
        await commit(record, state, Object.keys(toStorageEntries(state)));
      }),

    admit: (participantId, tokenHash, meta, config) =>
      serialised(async () => {
        if (meta && !cache && !(await store.list()).has(SHARD_KEY)) await openLazily(meta, config);
        const { record, state } = await load();
        if (state.phase !== "advertise-keys") {
          throw new ConflictError("round_not_collecting", `shard ${record.shard} is past advertise-keys`);
        }
        if (record.nextSlot >= state.config.cohortSize)
          throw new ConflictError("round_full", `shard ${record.shard} is full`);
        const slot = record.nextSlot;
        const next: ShardRecord = {
          ...record,
          nextSlot: slot + 1,
          participants: { ...record.participants, [participantId]: { slot, tokenHash } },
        };
        await store.put({ [SHARD_KEY]: next });
        cache = { record: next, state };
        return slot;
      }),

    view: (participantId, tokenHash) =>
      serialised(async () => {
        const { record, state } = await load();
        const slot = slotOf(record, participantId, tokenHash);
        return viewFor(state, slot);
      }),

    message: (participantId, tokenHash, frame) =>
      serialised(async () => {
        const { record, state } = await load();
        const slot = slotOf(record, participantId, tokenHash);
        const received = await receiveFrame(frame);
        if (received.message.slot !== slot) {
          throw new FedprofileError(
            "foreign_slot",
            `message names slot ${received.message.slot}, this participant has slot ${slot}`,
            403,
          );
        }
        // ProtocolError is a FedprofileError: its stable code and status reach the client.
        // The step adds a masked input into the cached sum in place (`consumeSum`), so after a
        // failed masked-input step the cache may hold a sum storage does not: storage is the truth.
        const deadline = state.deadline;
        try {
          const transition = await handleReceived(state, received, clock(), { ...unmask, consumeSum: true });
          await commit(record, transition.state, transition.changed, deadline);
          return transition.reply;
        } catch (error) {
          if (received.message.stage === "masked-input") cache = null;
          throw error;
        }
      }),

    status: () =>
      serialised(async () => {
        const pruned = (await loadRecord()).pruned;
        if (pruned) return pruned;
        const { record, state } = await load();
        return statusOf(record, state);
      }),

    close: () =>
      serialised(async () => {
        cache = null;
        const { record } = await load();
        let { state } = await load();
        if (!ended(state) && state.deadline !== null && clock() >= state.deadline) {
          const advance = await onDeadline(state, clock(), unmask);
          state = advance.state;
          await persist(record, state, advance.changed);
        }
        if (!ended(state)) {
          const advance = abortRound(
            state,
            stageOf(state),
            "the round's root stopped waiting for this shard",
            clock(),
            "root_gave_up",
          );
          state = advance.state;
          await persist(record, state, advance.changed);
        }
        // The caller takes the outcome itself: no report is owed any more.
        const reported: ShardRecord = { ...record, reported: true, reportedAt: clock() };
        await store.put({ [SHARD_KEY]: reported });
        await store.setAlarm(clock() + retentionMs);
        cache = { record: reported, state };
        return outcomeOf(reported, state);
      }),

    alarm: () =>
      serialised(async () => {
        // Storage is the truth: an alarm rereads it rather than trusting what is cached.
        cache = null;
        const found = (await store.list()).get(SHARD_KEY) as ShardRecord | undefined;
        if (!found || found.pruned) return;
        const { record, state } = await load();
        if (state.deadline === null) {
          if (!record.reported) await reportOrRetry();
          else if (clock() >= (record.reportedAt ?? 0) + retentionMs) await erase();
          else await store.setAlarm((record.reportedAt ?? clock()) + retentionMs);
          return;
        }
        if (clock() < state.deadline) {
          await store.setAlarm(state.deadline);
          return;
        }
        const advance = await onDeadline(state, clock(), unmask);
        await commit(record, advance.state, advance.changed);
      }),
  };
}

function ended(state: ServerRoundState): boolean {
  return state.phase === "done" || state.phase === "aborted";
}

function stageOf(state: ServerRoundState): Stage {
  const phase = state.phase;
  if (phase === "done" || phase === "aborted") throw new ConflictError("round_ended", "shard has ended");
  return phase;
}
