/**
 * Bounded rounds and shard clean-up, in workerd (issue 11, findings 2, 3 and 6):
 * - a round whose state cannot be stored is refused at open with a 400 naming the limit (before:
 *   a plain-sum round of 2^19 values opened, then every join answered 500, SQLITE_TOOBIG);
 * - a round of too many shards is refused before any shard object exists (before: 100,000
 *   devices in shards of 2 ran workerd out of memory, SQLITE_NOMEM, after 53-75 s);
 * - a model has at most a few rounds collecting at once (before: 200);
 * - a shard whose round does not exist stops and erases itself (before: its alarm threw
 *   "round not found" forever);
 * - a finished shard drops its per-device state after the retention period.
 */
import { listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { DEFAULT_ROUND_LIMITS } from "@fedprofile/coordinator";
import { ErrorEnvelope, encodeFloat64Vector } from "@fedprofile/coordinator/wire";
import { describe, expect, it } from "vitest";
import { call, seedTenant } from "./helpers";

const plainSum = (dimension: number, maxContributions = 4, modelId = "activity") => ({
  v: 1,
  modelId,
  dimension,
  minContributions: 1,
  maxContributions,
  deadlineSeconds: 600,
});

async function errorOf(response: Response) {
  return ErrorEnvelope.parse(await response.json()).error;
}

describe("round limits at open (workerd)", () => {
  it("a plain-sum round too large for a Durable Object value is refused, naming the limit", async () => {
    const keys = await seedTenant("lim-dim");
    const refused = await call("POST", "/v1/rounds", keys.secret, plainSum(2 ** 19));
    expect(refused.status).toBe(400);
    const error = await errorOf(refused);
    expect(error.code).toBe("round_state_too_large");
    expect(error.message).toMatch(/dimension: .*limit of 1500000 bytes/);
  });

  it("the largest plain-sum round the limit admits really stores a full contribution", async () => {
    const keys = await seedTenant("lim-dim-max");
    // (1,500,000 - 160 × 2 × 1) / 9: the bound assertRoundFits computes for one device.
    const dimension = Math.floor((DEFAULT_ROUND_LIMITS.maxStateValueBytes - 320) / 9);
    const opened = await call("POST", "/v1/rounds", keys.secret, plainSum(dimension, 1));
    expect(opened.status, await opened.clone().text()).toBe(201);
    expect((await call("POST", "/v1/rounds", keys.secret, plainSum(dimension + 1, 1))).status).toBe(400);
    const { roundId } = (await opened.json()) as { roundId: string };
    const joined = (await (
      await call("POST", `/v1/rounds/${roundId}/join`, keys.publishable, { v: 1 })
    ).json()) as {
      participantId: string;
      participantToken: string;
    };
    // Every value a full double (9 bytes in the stored encoding): the worst case of the bound.
    const vector = Array.from({ length: dimension }, (_, i) => Math.PI * (i + 1));
    const contributed = await call("POST", `/v1/rounds/${roundId}/contributions`, keys.publishable, {
      v: 1,
      participantId: joined.participantId,
      participantToken: joined.participantToken,
      vector: encodeFloat64Vector(vector),
    });
    expect(contributed.status, await contributed.clone().text()).toBe(200);
  });

  it("100,000 devices in shards of 2 is refused at once, before any shard object exists", async () => {
    const keys = await seedTenant("lim-shards");
    const before = (await listDurableObjectIds(env.SHARD)).length;
    const started = Date.now();
    const refused = await call("POST", "/v1/rounds", keys.secret, {
      ...plainSum(4, 100_000),
      aggregation: "secagg",
      secagg: { encoding: { kind: "fixed-point", clip: 1, valueBits: 16 }, minShardSize: 2, maxShardSize: 2 },
    });
    expect(refused.status).toBe(400);
    const error = await errorOf(refused);
    expect(error.code).toBe("too_many_shards");
    expect(error.message).toMatch(/50000 shards, over the limit of 10000 shards per round/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await listDurableObjectIds(env.SHARD)).length).toBe(before);
    expect((await call("GET", "/v1/health")).status).toBe(200);
  });

  it("a model may have at most 4 rounds collecting; the fifth gets 409 naming the limit", async () => {
    const keys = await seedTenant("lim-open");
    for (let i = 0; i < DEFAULT_ROUND_LIMITS.maxOpenRoundsPerModel; i++)
      expect((await call("POST", "/v1/rounds", keys.secret, plainSum(2))).status).toBe(201);
    const refused = await call("POST", "/v1/rounds", keys.secret, plainSum(2));
    expect(refused.status).toBe(409);
    const error = await errorOf(refused);
    expect(error.code).toBe("too_many_open_rounds");
    expect(error.message).toMatch(/limit of open rounds per model is 4/);
    // Another model of the same tenant is not affected.
    expect((await call("POST", "/v1/rounds", keys.secret, plainSum(2, 4, "other"))).status).toBe(201);
  });

  it("the limit is atomic in D1: five opens racing from zero open exactly four", async () => {
    const keys = await seedTenant("lim-race");
    const limit = DEFAULT_ROUND_LIMITS.maxOpenRoundsPerModel;
    const raced = await Promise.all(
      Array.from({ length: limit + 1 }, () => call("POST", "/v1/rounds", keys.secret, plainSum(2))),
    );
    expect(raced.map((r) => r.status).sort()).toEqual([...Array(limit).fill(201), 409]);
    const open = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM rounds WHERE tenant_id = ? AND stage = 'collecting'",
    )
      .bind("lim-race")
      .first<{ n: number }>();
    expect(open?.n).toBe(limit);
  });
});

describe("shard clean-up (workerd)", () => {
  it("a shard whose round does not exist erases itself instead of throwing 'round not found' forever", async () => {
    const stub = env.SHARD.get(env.SHARD.idFromName("lim-orphan/r_missingmissingmissing0/0"));
    const opened = await stub.open(
      { tenantId: "lim-orphan", roundId: "r_missingmissingmissing0", shard: 0 },
      {
        roundId: "r_missingmissingmissing0",
        cohortSize: 3,
        k: 2,
        t: 2,
        dimension: 2,
        valueBits: 16,
        modulusBits: 18,
        consistencyCheck: false,
        stageTimeoutsMs: {
          "advertise-keys": 1,
          "share-keys": 1,
          "masked-input": 1,
          "consistency-check": 1,
          unmask: 1,
        },
        graphSeed: new Uint8Array(32),
      },
    );
    expect(opened.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 5));
    // The join window passes with nobody in it: the shard aborts and reports to a root that is not there.
    await runDurableObjectAlarm(stub);
    const left = await runInDurableObject(stub, async (_i, state) => ({
      keys: [...(await state.storage.list()).keys()],
      alarm: await state.storage.getAlarm(),
    }));
    expect(left).toEqual({ keys: [], alarm: null });
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });
});
