/**
 * SecAgg sessions in the device store's outbox (IndexedDB when available): a round in progress
 * survives a reload, and `forget()` erases it with everything else.
 */
import type { ProfileStore } from "../store/types";
import type { SecAggSession, SecAggSessionStore } from "./secagg-round";

const KIND = "secagg-session";
const idOf = (roundId: string) => `secagg:${roundId}`;

/** A stored body is only trusted after this check; the client stages validate the rest. */
function isSession(body: unknown): body is SecAggSession {
  if (typeof body !== "object" || body === null) return false;
  const s = body as Record<string, unknown>;
  return (
    typeof s.roundId === "string" &&
    Number.isInteger(s.shard) &&
    Number.isInteger(s.slot) &&
    typeof s.participant === "string" &&
    (s.client === null || (typeof s.client === "object" && s.client !== null))
  );
}

/** Sessions kept in `store()`'s outbox; `store` is read on each call (it may fall back to memory). */
export function createOutboxSessionStore(
  store: () => ProfileStore,
  now: () => number = Date.now,
): SecAggSessionStore {
  return {
    async load(roundId) {
      const item = (await store().outbox()).find((i) => i.kind === KIND && i.id === idOf(roundId));
      return item && isSession(item.body) ? item.body : null;
    },
    save: (session) =>
      store().enqueue({ id: idOf(session.roundId), kind: KIND, createdAt: now(), body: session }),
    remove: (roundId) => store().dequeue([idOf(roundId)]),
  };
}
