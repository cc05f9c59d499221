/**
 * Stage-change notification for a SecAgg shard (issue 16 "Push, not polling"): the ports a shard
 * host's runtime implements so that devices are told when the stage moves, instead of polling
 * the view. The Worker implements them with hibernatable WebSockets (`edge/src/shard-socket.ts`),
 * the in-memory coordinator with listeners (node tests). Runtime-neutral: no Workers API here.
 */

import type { SecAggServerView } from "@fedprofile/protocol/wire";
import type { SecAggShardHost } from "./secagg-shard-host";

/** A shard's stage moved on (or the shard ended). */
export interface StageChange {
  shard: number;
  /** The new phase: a stage name, `done` or `aborted`. */
  stage: string;
  /**
   * The view of one participant, checked by the host exactly as `GET …/view` checks it (an
   * unknown participant or a wrong token's digest throws 403).
   */
  viewOf(participantId: string, tokenHash: string): Promise<SecAggServerView>;
}

/** Told once per stage change of a shard; failures are the notifier's own (never the round's). */
export interface StageNotifier {
  stageChanged(change: StageChange): Promise<void>;
}

/** Who a stage socket is for: resolved and authenticated by the coordinator app. */
export interface StageSocketTarget {
  tenantId: string;
  roundId: string;
  shard: number;
  participantId: string;
  /** SHA-256 (hex) of the participant token, as the shard stores it. */
  tokenHash: string;
}

/**
 * Opens a device's stage socket at its shard: answers the upgrade `request` (101) or an error.
 * Without this port the coordinator offers no push and devices poll.
 */
export interface StageSocketPort {
  connect(target: StageSocketTarget, request: Request): Promise<Response>;
}

/**
 * Wraps a shard host so that `notifier` hears every stage change. Only a message, an alarm (a
 * deadline) or the root's `close` can move a shard's stage; the phase is read before and after
 * each (a cached read), and a change is announced once, after the step has been committed, so a
 * pushed view is never ahead of storage. A notifier failure is logged and swallowed: devices that miss
 * a push fall back to fetching the view.
 */
export function withStageNotify(host: SecAggShardHost, notifier: StageNotifier): SecAggShardHost {
  const phase = async (): Promise<{ shard: number; phase: string } | null> => {
    try {
      return await host.status();
    } catch {
      return null;
    }
  };
  // The last phase announced: two messages in flight both read the old phase before either
  // runs, and only the first to see the new one may announce it. (After an eviction this starts
  // empty, and the phase read before the step stands in.)
  let announced: string | undefined;
  const tracked =
    <A extends unknown[], R>(run: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const before = await phase();
      const result = await run(...args);
      const after = await phase();
      if (after && after.phase !== (announced ?? before?.phase)) {
        announced = after.phase;
        try {
          await notifier.stageChanged({ shard: after.shard, stage: after.phase, viewOf: host.view });
        } catch (error) {
          console.warn(`stage notify of shard ${after.shard} failed`, error);
        }
      }
      return result;
    };
  return {
    ...host,
    message: tracked(host.message),
    alarm: tracked(host.alarm),
    close: tracked(host.close),
  };
}

/** An in-process notifier (memory coordinator, node tests): every change goes to each listener. */
export interface StageListeners extends StageNotifier {
  /** Adds a listener; returns its removal. */
  listen(listener: (change: StageChange) => void | Promise<void>): () => void;
}

/** Creates an in-process {@link StageListeners}. */
export function createStageListeners(): StageListeners {
  const listeners = new Set<(change: StageChange) => void | Promise<void>>();
  return {
    listen(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stageChanged(change) {
      for (const listener of listeners) await listener(change);
    },
  };
}
