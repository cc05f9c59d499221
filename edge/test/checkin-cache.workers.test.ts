/**
 * Check-in's open round comes from memory (issue 16, "no database on the hot path"): within its
 * TTL an isolate asks D1 once, however many devices check in; an open, close or publish in the
 * same isolate is seen by the next check-in; a round opened elsewhere (another isolate, here a
 * row written straight to D1) is seen once the TTL has passed. D1 queries are counted through a
 * wrapper of the Worker's D1 binding.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { CheckinResponse, encodeFloat64Vector, JoinResponse } from "@fedprofile/coordinator/wire";
import { describe, expect, it } from "vitest";
import { D1RoundIndex } from "../src/d1-stores";
import worker from "../src/worker";
import { BASE, seedTenant } from "./helpers";

/** D1RoundIndex.findOpen's statement: the only query check-in makes for the open round. */
const FIND_OPEN = /stage = 'collecting' AND closes_at > \?/;

/**
 * The Worker's bindings with D1 behind a wrapper that records every statement prepared. A new
 * binding object means a new app (worker.ts keeps one per binding): its caches start empty.
 */
function countingEnv(): { env: typeof env; statements: string[] } {
  const statements: string[] = [];
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare")
        return (sql: string) => {
          statements.push(sql);
          return target.prepare(sql);
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { env: { ...env, DB }, statements };
}

async function send(bindings: typeof env, method: string, path: string, key: string, body?: unknown) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    new Request(`${BASE}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
    bindings,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

async function checkin(bindings: typeof env, publishable: string, modelId: string) {
  const response = await send(bindings, "POST", "/v1/checkin", publishable, {
    v: 1,
    modelId,
    sdkVersion: "0.1.0",
  });
  expect(response.status).toBe(200);
  return CheckinResponse.parse(await response.json());
}

async function openRound(bindings: typeof env, secret: string, modelId: string, maxContributions = 3) {
  const response = await send(bindings, "POST", "/v1/rounds", secret, {
    v: 1,
    modelId,
    dimension: 2,
    deadlineSeconds: 60,
    minContributions: 1,
    maxContributions,
  });
  expect(response.status).toBe(201);
  const { roundId } = await response.json<{ roundId: string }>();
  return roundId;
}

const findOpenQueries = (statements: string[]) => statements.filter((sql) => FIND_OPEN.test(sql)).length;

describe("check-in's open round, cached per isolate (workerd)", () => {
  it("25 check-ins within the TTL make exactly 1 D1 query for the open round", async () => {
    const keys = await seedTenant("checkin-cache-n");
    const { env: bindings, statements } = countingEnv();
    const roundId = await openRound(bindings, keys.secret, "activity");
    statements.length = 0;
    for (let i = 0; i < 20; i++)
      expect((await checkin(bindings, keys.publishable, "activity")).round?.roundId).toBe(roundId);
    // Concurrent check-ins share the cached answer too.
    const together = await Promise.all(
      Array.from({ length: 5 }, () => checkin(bindings, keys.publishable, "activity")),
    );
    for (const answer of together) expect(answer.round?.roundId).toBe(roundId);
    expect(findOpenQueries(statements)).toBe(1);
  });

  it("a check-in right after an open, a close and a publish in the same isolate sees each", async () => {
    const keys = await seedTenant("checkin-cache-open");
    const { env: bindings, statements } = countingEnv();
    // "No open round" is cached as well: the next check-ins would not ask D1.
    expect((await checkin(bindings, keys.publishable, "activity")).round).toBeNull();
    expect((await checkin(bindings, keys.publishable, "activity")).round).toBeNull();
    expect(findOpenQueries(statements)).toBe(1);

    const roundId = await openRound(bindings, keys.secret, "activity", 1);
    const seen = await checkin(bindings, keys.publishable, "activity");
    expect(seen.round?.roundId).toBe(roundId);
    expect(seen.latestModelVersion).toBeNull();

    // One contribution closes it (maxContributions 1) in the RoundDO, which publishes version 1.
    const joined = JoinResponse.parse(
      await (await send(bindings, "POST", `/v1/rounds/${roundId}/join`, keys.publishable, { v: 1 })).json(),
    );
    const contributed = await send(
      bindings,
      "POST",
      `/v1/rounds/${roundId}/contributions`,
      keys.publishable,
      {
        v: 1,
        participantId: joined.participantId,
        participantToken: joined.participantToken,
        vector: encodeFloat64Vector([1, 2]),
      },
    );
    expect(contributed.status).toBe(200);
    const after = await checkin(bindings, keys.publishable, "activity");
    expect(after.round).toBeNull();
    expect(after.latestModelVersion).toBe(1);
  });

  it("a round opened elsewhere (not through this isolate) is seen once the TTL has passed", async () => {
    const keys = await seedTenant("checkin-cache-ttl");
    const { env: bindings, statements } = countingEnv();
    expect((await checkin(bindings, keys.publishable, "activity")).round).toBeNull();
    const now = Date.now();
    // Written straight to D1, as another isolate's RoundDO would: this isolate is not told.
    await new D1RoundIndex(env.DB).insert("checkin-cache-ttl", {
      roundId: "r_elsewhereAAAAAAAAAAAAA",
      modelId: "activity",
      aggregation: "plain-sum",
      stage: "collecting",
      dimension: 2,
      minContributions: 1,
      maxContributions: 3,
      openedAt: now,
      closesAt: now + 60_000,
    });
    expect((await checkin(bindings, keys.publishable, "activity")).round).toBeNull();
    expect(findOpenQueries(statements)).toBe(1);
    // The open-round TTL is 3 s (hot-path-cache.ts).
    await new Promise((resolve) => setTimeout(resolve, 3_100));
    expect((await checkin(bindings, keys.publishable, "activity")).round?.roundId).toBe(
      "r_elsewhereAAAAAAAAAAAAA",
    );
    expect(findOpenQueries(statements)).toBe(2);
  });
});
