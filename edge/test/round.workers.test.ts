import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { decodeFloat64Vector, encodeFloat64Vector } from "@fedprofile/coordinator/wire";
import { describe, expect, it } from "vitest";
import { call, seedTenant } from "./helpers";

async function openRound(secret: string, body: Record<string, unknown>) {
  const response = await call("POST", "/v1/rounds", secret, {
    v: 1,
    modelId: "activity",
    dimension: 2,
    deadlineSeconds: 60,
    ...body,
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { roundId: string };
}

async function contribute(publishable: string, roundId: string, vector: number[]) {
  const joined = (await (await call("POST", `/v1/rounds/${roundId}/join`, publishable, { v: 1 })).json()) as {
    participantId: string;
    participantToken: string;
  };
  return call("POST", `/v1/rounds/${roundId}/contributions`, publishable, {
    v: 1,
    participantId: joined.participantId,
    participantToken: joined.participantToken,
    vector: encodeFloat64Vector(vector),
  });
}

const stubFor = (tenantId: string, roundId: string) =>
  env.ROUND.get(env.ROUND.idFromName(`${tenantId}/${roundId}`));

describe("plain-sum rounds through the Worker, Durable Objects and D1 (workerd)", () => {
  it("closes on count and publishes the sum as model version 1 in D1", async () => {
    const keys = await seedTenant("shop-a");
    const { roundId } = await openRound(keys.secret, { minContributions: 3, maxContributions: 3 });

    const checkin = await call("POST", "/v1/checkin", keys.publishable, {
      v: 1,
      modelId: "activity",
      sdkVersion: "0.1.0",
    });
    expect(await checkin.json()).toMatchObject({
      round: { roundId, stage: "collecting" },
      latestModelVersion: null,
    });

    for (const vector of [
      [1, 2],
      [1, 5],
      [1, 1.5],
    ])
      expect((await contribute(keys.publishable, roundId, vector)).status).toBe(200);

    const latest = await call("GET", "/v1/models/activity/latest", keys.publishable);
    const model = (await latest.json()) as { version: number; weights: string; contributions: number };
    expect(model).toMatchObject({ version: 1, contributions: 3 });
    expect(Array.from(decodeFloat64Vector(model.weights, 2))).toEqual([3, 8.5]);

    const row = await env.DB.prepare("SELECT stage, model_version FROM rounds WHERE round_id = ?")
      .bind(roundId)
      .first();
    expect(row).toEqual({ stage: "closed", model_version: 1 });
  });

  it("closes at the deadline alarm, and aborts when too few contributed", async () => {
    const keys = await seedTenant("shop-b");
    const { roundId } = await openRound(keys.secret, { minContributions: 2, maxContributions: 10 });
    await contribute(keys.publishable, roundId, [1, 4]);
    await contribute(keys.publishable, roundId, [1, 6]);
    const stub = stubFor("shop-b", roundId);
    // Move the deadline into the past inside the object, then run its alarm.
    await runInDurableObject(stub, async (_instance, state) => {
      const stored = await state.storage.get<{ closesAt: number }>("round");
      await state.storage.put("round", { ...stored, closesAt: Date.now() - 1 });
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const status = (await (await call("GET", `/v1/rounds/${roundId}`, keys.secret)).json()) as Record<
      string,
      unknown
    >;
    expect(status).toMatchObject({ stage: "closed", outcome: "deadline", contributions: 2, modelVersion: 1 });

    const second = await openRound(keys.secret, { minContributions: 3, maxContributions: 10 });
    await contribute(keys.publishable, second.roundId, [1, 1]);
    const secondStub = stubFor("shop-b", second.roundId);
    await runInDurableObject(secondStub, async (_instance, state) => {
      const stored = await state.storage.get<{ closesAt: number }>("round");
      await state.storage.put("round", { ...stored, closesAt: Date.now() - 1 });
    });
    await runDurableObjectAlarm(secondStub);
    const aborted = (await (await call("GET", `/v1/rounds/${second.roundId}`, keys.secret)).json()) as Record<
      string,
      unknown
    >;
    expect(aborted).toMatchObject({ stage: "aborted", modelVersion: null });
    expect(String(aborted.outcome)).toMatch(/too-few-contributions/);
  });

  it("resumes from Durable Object storage after every object is restarted mid-round", async () => {
    const keys = await seedTenant("shop-c");
    const { roundId } = await openRound(keys.secret, { minContributions: 2, maxContributions: 2 });
    await contribute(keys.publishable, roundId, [1, 10]);
    await abortAllDurableObjects();
    await contribute(keys.publishable, roundId, [1, 20]);
    const model = (await (await call("GET", "/v1/models/activity/latest", keys.publishable)).json()) as {
      weights: string;
    };
    expect(Array.from(decodeFloat64Vector(model.weights, 2))).toEqual([2, 30]);
  });

  it("keeps tenants apart: a round id of one tenant is unknown to another", async () => {
    const a = await seedTenant("shop-d");
    const b = await seedTenant("shop-e");
    const { roundId } = await openRound(a.secret, { minContributions: 1, maxContributions: 5 });
    const response = await call("POST", `/v1/rounds/${roundId}/join`, b.publishable, { v: 1 });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: "not_found" } });
  });
});
