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
import { REPORT_RETRY_MS, type SecAggShardHandle, type ShardOutcome } from "./secagg-shard-host";
import { createSerialQueue } from "./serial-queue";
import type { ShardSum } from "./shard-combine";
import {
  type ChildOutcome,
  type ChildRow,
  combineChildren,
  revealedBy,
  rowOf,
  type SumStore,
  wordsOf,
} from "./shard-tree";

/** A node's store: its small state value, chunked sums beside it, and its alarm. */
export interface NodeStore<State> extends Omit<RoundStateStore<State>, "save">, SumStore<State> {}

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
}

export interface AggregatorState extends AggregatorConfig {
  kind: "secagg-aggregator";
  rows: Record<string, ChildRow>;
  /** The combined outcome once every shard is in (its sum is stored as `result`). */
  result: ChildRow | null;
  reported: boolean;
  reportAttempts?: number;
}

/** The root as an aggregator sees it. */
export interface AggregatorParent {
  shardFinished(outcome: ChildOutcome): Promise<void>;
}

/** An aggregator, wherever it lives. */
export interface AggregatorHandle {
  open(config: AggregatorConfig): Promise<void>;
  /** A shard's report (the shard retries until this resolves). */
  shardFinished(outcome: ShardOutcome): Promise<void>;
  /** The root gives up: close silent shards, combine, answer the outcome (a fence, as a shard's). */
  close(): Promise<ChildOutcome>;
}

export interface AggregatorHost extends AggregatorHandle {
  alarm(): Promise<void>;
}

export interface AggregatorHostOptions {
  store: NodeStore<AggregatorState>;
  root(config: AggregatorConfig): AggregatorParent;
  shardFor(tenantId: string, roundId: string, shard: number): Pick<SecAggShardHandle, "close">;
  clock?: Clock;
}

const REPORT_RETRY_CAP_MS = 60_000;
const sumKey = (shard: number) => `sum:${shard}`;
const RESULT_KEY = "result";

/** Creates the host of one aggregator over `store`. */
export function createAggregatorHost(options: AggregatorHostOptions): AggregatorHost {
  const { store } = options;
  const clock = options.clock ?? Date.now;
  const serialised = createSerialQueue();

  async function mustLoad(): Promise<AggregatorState> {
    const state = await store.load();
    if (!state) throw new NotFoundError("aggregator not found");
    return state;
  }

  const complete = (state: AggregatorState) => Object.keys(state.rows).length === state.end - state.first;

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
    await store.save({ ...state, reported: true });
    await store.deleteAlarm();
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
        const next: AggregatorState = { ...state, rows: { ...state.rows, [outcome.shard]: row } };
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
          for (let shard = state.first; shard < state.end; shard++) {
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
        } else if (!state.reported) {
          state = { ...state, reported: true };
          await store.save(state);
        }
        await store.deleteAlarm();
        return outcomeOf(state);
      }),

    alarm: () =>
      serialised(async () => {
        const state = await store.load();
        if (state?.result && !state.reported) await reportOrRetry(state);
      }),
  };
}
