/**
 * An aggregator of a SecAgg round (issue 16): the tier between up to {@link FAN_OUT} shards and
 * the root. To its shards it is their root (they report to it, with their retry alarm); to the
 * root it is a child that reports one combined sum, with the same crash-safe semantics:
 *
 * - a shard's report is stored (row and sum in one atomic write) before it is acknowledged, and a
 *   retried report is acknowledged without being counted twice;
 * - once every shard has reported, the combined sum is stored and a retry alarm set *before* the
 *   root is called; the alarm backs off until the root acknowledges;
 * - when the root gives up it calls `close()`, which closes the silent shards (the shards' own
 *   fence: none of them can unmask afterwards), combines what was revealed and answers it.
 *
 * The robust combine (range check + trimmed mean of shard means) runs here, per aggregator, over
 * the shards' own sums; the root adds the aggregators' combined sums exactly.
 */

import { base64ToBytes, bytesToBase64 } from "@fedprofile/protocol/bytes";
import type { DpRoundConfig } from "@fedprofile/protocol/dp";
import { ConflictError, FedprofileError, InvalidRequestError, NotFoundError } from "../errors";
import type { Clock, RoundStateStore } from "../ports";
import {
  type LazyShardConfig,
  lazyComplete,
  registerChild,
  type ShardPlan,
  shardOptionsOf,
} from "./lazy-shards";
import {
  REPORT_RETRY_MS,
  type SecAggShardHandle,
  SHARD_RETENTION_MS,
  type ShardMeta,
  type ShardOutcome,
} from "./secagg-shard-host";
import { createSerialQueue } from "./serial-queue";
import type { ShardSum } from "./shard-combine";
import {
  type ChildOutcome,
  type ChildRow,
  combineChildren,
  FAN_OUT,
  revealedBy,
  rowOf,
  type SumStore,
  wordsOf,
} from "./shard-tree";

/** A node's store: its small state value, chunked sums beside it, and its alarm. */
export interface NodeStore<State> extends Omit<RoundStateStore<State>, "save">, SumStore<State> {
  /** Erases the state, every sum and the alarm (a finished node past its retention). */
  deleteAll?(): Promise<void>;
}

/** What the root tells an aggregator when the round opens (plain data: it crosses RPC). */
export interface AggregatorConfig {
  tenantId: string;
  roundId: string;
  index: number;
  /** Its shards: [first, end). */
  first: number;
  end: number;
  /** Words in each shard sum (a DP round's padded dimension). */
  dim: number;
  /** The DP configuration of a DP round (the combine depends on the mechanism). */
  dp?: DpRoundConfig;
  /** A round whose shards open lazily: their options come from this plan (`./lazy-shards.ts`). */
  plan?: ShardPlan;
}

export interface AggregatorState extends AggregatorConfig {
  kind: "secagg-aggregator";
  rows: Record<string, ChildRow>;
  /** The combined outcome once every shard is in (its sum is stored as `result`). */
  result: ChildRow | null;
  reported: boolean;
  reportAttempts?: number;
  /** When the root acknowledged (or took) the report; the aggregator erases itself a retention later. */
  reportedAt?: number;
  /** The shards that registered (lazy rounds): the only ones it waits for or closes. */
  opened?: number[];
}

/** The root as an aggregator sees it. */
export interface AggregatorParent {
  shardFinished(outcome: ChildOutcome): Promise<void>;
  /** The aggregator's own first touch: registers it with the root, answers its configuration. */
  registerAggregator(index: number): Promise<AggregatorConfig>;
}

/** An aggregator, wherever it lives. */
export interface AggregatorHandle {
  open(config: AggregatorConfig): Promise<void>;
  /** A shard's report (the shard retries until this resolves). */
  shardFinished(outcome: ShardOutcome): Promise<void>;
  /** The root gives up: close silent shards, combine, answer the outcome (a fence, as a shard's). */
  close(): Promise<ChildOutcome>;
  /**
   * A lazily opened shard's first touch: registers it (opening this aggregator, by registering
   * with the root, on its own first touch) and answers the shard's options.
   */
  registerShard(meta: ShardMeta, config?: AggregatorConfig): Promise<LazyShardConfig>;
}

export interface AggregatorHost extends AggregatorHandle {
  alarm(): Promise<void>;
}

export interface AggregatorHostOptions {
  store: NodeStore<AggregatorState>;
  root(round: Pick<AggregatorConfig, "tenantId" | "roundId">): AggregatorParent;
  shardFor(tenantId: string, roundId: string, shard: number): Pick<SecAggShardHandle, "close">;
  clock?: Clock;
  /** How long a reported aggregator is kept before `deleteAll` (default {@link SHARD_RETENTION_MS}). */
  retentionMs?: number;
}

const REPORT_RETRY_CAP_MS = 60_000;
const sumKey = (shard: number) => `sum:${shard}`;
const RESULT_KEY = "result";

/** Creates the host of one aggregator over `store`. */
export function createAggregatorHost(options: AggregatorHostOptions): AggregatorHost {
  const { store } = options;
  const clock = options.clock ?? Date.now;
  const retentionMs = options.retentionMs ?? SHARD_RETENTION_MS;
  const serialised = createSerialQueue();

  /** Marks the report delivered and schedules the erase a retention period later. */
  async function delivered(state: AggregatorState): Promise<AggregatorState> {
    const next: AggregatorState = { ...state, reported: true, reportedAt: clock() };
    await store.save(next);
    await store.setAlarm(clock() + retentionMs);
    return next;
  }

  async function mustLoad(): Promise<AggregatorState> {
    const state = await store.load();
    if (!state) throw new NotFoundError("aggregator not found");
    return state;
  }

  /** Every shard that exists (or, once the join window closed, can) has reported. */
  const complete = (state: AggregatorState) =>
    Object.keys(state.rows).length === state.end - state.first ||
    (state.plan !== undefined && lazyComplete(state.opened ?? [], state.rows, state.plan.closesAt, clock()));
  const shardsBelow = (state: AggregatorState): number[] =>
    state.plan
      ? (state.opened ?? [])
      : Array.from({ length: state.end - state.first }, (_, i) => state.first + i);

  /** Combines the stored shard sums (plus any not yet stored) and stores the result. */
  async function finish(
    state: AggregatorState,
    fresh: Record<string, Uint8Array> = {},
    reported = false,
  ): Promise<AggregatorState> {
    const shards: ShardSum[] = [];
    for (const row of Object.values(state.rows)) {
      if (!row.hasSum) continue;
      const bytes = fresh[sumKey(row.shard)] ?? (await store.sum(sumKey(row.shard)));
      if (!bytes) throw new FedprofileError("internal", `aggregator lost the sum of shard ${row.shard}`, 500);
      shards.push({ shard: row.shard, words: wordsOf(bytes), contributors: row.contributors });
    }
    const combined = combineChildren(state.dp, state.dim, shards);
    const rows = Object.values(state.rows);
    const result: ChildRow = {
      shard: state.index,
      sum: null,
      hasSum: shards.length > 0,
      contributors: rows.reduce((n, r) => n + r.contributors, 0),
      admitted: rows.reduce((n, r) => n + (r.admitted ?? 0), 0),
      survivors: combined.survivors,
      revealed: rows.flatMap(revealedBy),
      sumKind: combined.sumKind,
      aborts: rows.filter((r) => r.abort).map((r) => `shard ${r.shard}: ${r.abort?.code}`),
      abort: null,
    };
    const next: AggregatorState = { ...state, result, reported };
    const sums = { ...fresh, ...(result.hasSum ? { [RESULT_KEY]: combined.sum } : {}) };
    await store.save(next, sums);
    return next;
  }

  async function outcomeOf(state: AggregatorState): Promise<ChildOutcome> {
    const result = state.result as ChildRow;
    const { hasSum: _hasSum, ...row } = result;
    const bytes = result.hasSum ? await store.sum(RESULT_KEY) : null;
    return { ...row, sum: bytes ? bytesToBase64(bytes) : null };
  }

  /** Reports the combined sum until the root acknowledges (crash-safe like a shard's report). */
  async function reportOrRetry(state: AggregatorState): Promise<void> {
    if (state.reported || !state.result) return;
    try {
      await options.root(state).shardFinished(await outcomeOf(state));
    } catch (error) {
      if (error instanceof FedprofileError && error.status === 404) return;
      const attempts = (state.reportAttempts ?? 0) + 1;
      await store.save({ ...state, reportAttempts: attempts });
      await store.setAlarm(clock() + Math.min(REPORT_RETRY_MS * 2 ** attempts, REPORT_RETRY_CAP_MS));
      return;
    }
    await delivered(state);
  }

  return {
    open: (config) =>
      serialised(async () => {
        if (await store.load()) throw new ConflictError("round_exists", "aggregator already open");
        await store.save({ ...config, kind: "secagg-aggregator", rows: {}, result: null, reported: false });
      }),

    shardFinished: (outcome) =>
      serialised(async () => {
        const state = await mustLoad();
        if (outcome.shard < state.first || outcome.shard >= state.end) {
          throw new ConflictError(
            "foreign_shard",
            `shard ${outcome.shard} does not report to this aggregator`,
          );
        }
        // Ended, or a retry of a report already stored: acknowledge, count nothing twice.
        if (state.result || state.rows[outcome.shard] !== undefined) return;
        const row = rowOf(outcome);
        if (row.hasSum && outcome.sum !== null && base64ToBytes(outcome.sum).length !== 4 * state.dim) {
          throw new InvalidRequestError(`sum: shard ${outcome.shard}'s sum is not ${state.dim} u32 words`);
        }
        // A shard that reports exists, registered or not (a synthetic report, a lost write).
        const opened = state.plan
          ? [...new Set([...(state.opened ?? []), outcome.shard])].sort((a, b) => a - b)
          : undefined;
        const next: AggregatorState = {
          ...state,
          rows: { ...state.rows, [outcome.shard]: row },
          ...(opened ? { opened } : {}),
        };
        const sums: Record<string, Uint8Array> =
          row.hasSum && outcome.sum !== null ? { [sumKey(outcome.shard)]: base64ToBytes(outcome.sum) } : {};
        if (!complete(next)) {
          await store.save(next, sums);
          return;
        }
        // The last shard: row, sum and combined result in one write; the alarm before the call.
        const ended = await finish(next, sums);
        await store.setAlarm(clock() + REPORT_RETRY_MS);
        await reportOrRetry(ended);
      }),

    close: () =>
      serialised(async () => {
        let state = await mustLoad();
        if (!state.result) {
          const rows = { ...state.rows };
          const fresh: Record<string, Uint8Array> = {};
          for (const shard of shardsBelow(state)) {
            if (rows[shard] !== undefined) continue;
            try {
              const outcome = await options.shardFor(state.tenantId, state.roundId, shard).close();
              const row = rowOf(outcome);
              rows[shard] = row;
              if (row.hasSum && outcome.sum !== null) fresh[sumKey(shard)] = base64ToBytes(outcome.sum);
            } catch (error) {
              // A shard that does not exist never revealed anything; any other failure: the root retries.
              if (!(error instanceof FedprofileError && error.status === 404)) throw error;
              rows[shard] = rowOf({ shard, sum: null, contributors: 0, abort: null });
            }
          }
          state = await finish({ ...state, rows }, fresh, true);
        }
        // The root takes this outcome itself: no report is owed; erase after the retention.
        if (state.reportedAt === undefined) state = await delivered(state);
        return outcomeOf(state);
      }),

    registerShard: (meta, given) =>
      serialised(async () => {
        let state = await store.load();
        if (!state) {
          // `given`: the root registered this aggregator itself (a token round's join, which holds
          // the root's queue); otherwise register with the root now.
          const config =
            given ?? (await options.root(meta).registerAggregator(Math.floor(meta.shard / FAN_OUT)));
          state = {
            ...config,
            kind: "secagg-aggregator",
            rows: {},
            result: null,
            reported: false,
            opened: [],
          };
          // At the join window's end it knows every shard it will ever have.
          if (config.plan) await store.setAlarm(config.plan.closesAt);
        }
        const plan = state.plan;
        if (!plan)
          throw new ConflictError("round_not_lazy", "this aggregator's shards opened with the round");
        if (meta.shard < state.first || meta.shard >= state.end) {
          throw new ConflictError("foreign_shard", `shard ${meta.shard} does not report to this aggregator`);
        }
        if (state.result) throw new ConflictError("round_not_collecting", "this aggregator has ended");
        const before = state.opened ?? [];
        const opened = registerChild(before, meta.shard, plan.closesAt, clock());
        if (opened.length !== before.length) await store.save({ ...state, opened });
        return { options: shardOptionsOf(plan, meta.shard), openedAt: plan.openedAt };
      }),

    alarm: () =>
      serialised(async () => {
        const state = await store.load();
        if (!state) return;
        if (state.result) {
          if (!state.reported) await reportOrRetry(state);
          else if (clock() >= (state.reportedAt ?? 0) + retentionMs) await store.deleteAll?.();
          else await store.setAlarm((state.reportedAt ?? clock()) + retentionMs);
          return;
        }
        if (!state.plan) return;
        // The join window's end: if every registered shard is in, combine and report now.
        if (clock() < state.plan.closesAt) await store.setAlarm(state.plan.closesAt);
        else if (complete(state)) {
          const ended = await finish(state);
          await store.setAlarm(clock() + REPORT_RETRY_MS);
          await reportOrRetry(ended);
        }
      }),
  };
}
