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
  type CreateRoundOptions,
  createRoundState,
  fromStorageEntries,
  handleReceived,
  onDeadline,
  receiveFrame,
  type ServerRoundState,
  storageEntry,
  toStorageEntries,
  type UnmaskOptions,
  viewFor,
} from "../secagg/index";
import { createSerialQueue } from "./serial-queue";

/** A per-object key-value store with one alarm (Durable Object storage, or memory). */
export interface EntryStore {
  list(): Promise<Map<string, unknown>>;
  put(entries: Record<string, unknown>): Promise<void>;
  setAlarm(at: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** What a shard tells the root when it ends. */
export interface ShardOutcome {
  shard: number;
  /** The exact integer sum of the shard's contributors (little-endian u32 words, base64), or null. */
  sum: string | null;
  contributors: number;
  abort: { code: string; stage: string; reason: string } | null;
}

/** The root as a shard sees it. */
export interface SecAggRootHandle {
  shardFinished(outcome: ShardOutcome): Promise<void>;
}

/** One shard, wherever it lives; every method is serialised by the host. */
export interface SecAggShardHandle {
  open(meta: ShardMeta, options: CreateRoundOptions): Promise<void>;
  /** Admits a participant (by its token's digest) to the next free slot. */
  admit(participantId: string, tokenHash: string): Promise<number>;
  view(participantId: string, tokenHash: string): Promise<SecAggServerView>;
  /** One message as its binary frame: decoded here, once, and digested over its raw bytes. */
  message(participantId: string, tokenHash: string, frame: Uint8Array): Promise<SecAggAck>;
  status(): Promise<ShardStatus>;
}

export interface ShardMeta {
  tenantId: string;
  roundId: string;
  shard: number;
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
}

const SHARD_KEY = "shard";

export interface SecAggShardHostOptions {
  store: EntryStore;
  root(meta: ShardMeta): SecAggRootHandle;
  clock?: Clock;
  unmask?: UnmaskOptions;
}

export interface SecAggShardHost extends SecAggShardHandle {
  alarm(): Promise<void>;
}

/** Creates the host of one shard over `store`. */
export function createSecAggShardHost(options: SecAggShardHostOptions): SecAggShardHost {
  const { store } = options;
  const clock = options.clock ?? Date.now;
  let cache: { record: ShardRecord; state: ServerRoundState } | null = null;
  const serialised = createSerialQueue();

  async function load(): Promise<{ record: ShardRecord; state: ServerRoundState }> {
    if (cache) return cache;
    const entries = await store.list();
    const record = entries.get(SHARD_KEY) as ShardRecord | undefined;
    if (!record) throw new NotFoundError("shard not found");
    const state = fromStorageEntries(Object.fromEntries(entries));
    cache = { record, state };
    return cache;
  }

  /** Persists the changed entries, keeps the alarm in step, and reports an ended shard once. */
  async function commit(record: ShardRecord, state: ServerRoundState, changed: string[]): Promise<void> {
    const entries: Record<string, unknown> = { [SHARD_KEY]: record };
    for (const key of changed) entries[key] = storageEntry(state, key);
    await store.put(entries);
    cache = { record, state };
    if (state.deadline !== null) await store.setAlarm(state.deadline);
    else await store.deleteAlarm();
    await reportIfEnded();
  }

  async function reportIfEnded(): Promise<void> {
    if (!cache || cache.record.reported) return;
    const { record, state } = cache;
    if (state.phase !== "done" && state.phase !== "aborted") return;
    await options.root(record).shardFinished({
      shard: record.shard,
      sum: state.result?.sum ?? null,
      contributors: state.result?.contributors.length ?? 0,
      abort: state.abort
        ? { code: state.abort.code, stage: state.abort.stage, reason: state.abort.reason }
        : null,
    });
    const reported = { ...record, reported: true };
    await store.put({ [SHARD_KEY]: reported });
    cache = { record: reported, state };
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

    admit: (participantId, tokenHash) =>
      serialised(async () => {
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
        const transition = await handleReceived(state, received, clock(), options.unmask);
        await commit(record, transition.state, transition.changed);
        return transition.reply;
      }),

    status: () =>
      serialised(async () => {
        const { record, state } = await load();
        return {
          shard: record.shard,
          phase: state.phase,
          admitted: record.nextSlot,
          cohortSize: state.config.cohortSize,
          contributors: state.result?.contributors.length ?? null,
          abort: state.abort ? `${state.abort.code}: ${state.abort.reason}` : null,
        };
      }),

    alarm: () =>
      serialised(async () => {
        // Storage is the truth: an alarm rereads it rather than trusting what is cached.
        cache = null;
        const { record, state } = await load();
        if (state.deadline === null) {
          // Ended: a report that failed before (root unreachable) is retried here.
          await reportIfEnded();
          return;
        }
        if (clock() < state.deadline) {
          await store.setAlarm(state.deadline);
          return;
        }
        const advance = await onDeadline(state, clock(), options.unmask);
        await commit(record, advance.state, advance.changed);
      }),
  };
}
