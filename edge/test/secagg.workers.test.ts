/**
 * Whole SecAgg+ rounds through the Worker, Durable Objects (a root and its shards) and D1, in
 * workerd: every device runs the SDK's real client stages over the Worker's HTTP routes.
 */

import { abortAllDurableObjects, runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { decodeFloat64Vector, type OpenRoundInput } from "@fedprofile/coordinator/wire";
import {
  type CoordinatorClient,
  createCoordinatorClient,
  participateInSecAggRound,
  type SecAggOutcome,
} from "@fedprofile/sdk/sync";
import { describe, expect, it } from "vitest";
import { BASE, call, seedTenant } from "./helpers";

const ENCODING = { kind: "fixed-point" as const, clip: 64, valueBits: 16 };
const STEP = (2 * ENCODING.clip) / (2 ** ENCODING.valueBits - 1);
const STAGES = ["advertise-keys", "share-keys", "masked-input", "consistency-check", "unmask"] as const;

const workerFetch: typeof fetch = (input, init) =>
  exports.default.fetch(new Request(input instanceof Request ? input : String(input), init));

function device(key: string, hooks: { onSend?: (stage: string) => void } = {}): CoordinatorClient {
  const client = createCoordinatorClient({
    endpoint: BASE,
    apiKey: key,
    fetch: workerFetch,
    retry: { windowMs: 2_000, baseDelayMs: 20 },
  });
  return {
    ...client,
    secaggMessage: async (roundId, shard, participant, frame) => {
      const ack = await client.secaggMessage(roundId, shard, participant, frame);
      hooks.onSend?.(ack.stage);
      return ack;
    },
  };
}

async function openRound(
  secret: string,
  request: Partial<Omit<OpenRoundInput, "secagg">> & { secagg?: Record<string, unknown> },
) {
  const response = await call("POST", "/v1/rounds", secret, {
    v: 1,
    modelId: "activity",
    dimension: 4,
    minContributions: 2,
    maxContributions: 4,
    deadlineSeconds: 600,
    aggregation: "secagg",
    ...request,
    secagg: { encoding: ENCODING, minShardSize: 2, stageSeconds: 30, k: 2, t: 2, ...request.secagg },
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return (await response.json()) as { roundId: string; secagg: { shards: number } };
}

/** Fires every due stage alarm of every shard of the round (the deadline of a dropped device). */
async function expireStage(tenantId: string, roundId: string, shards: number) {
  for (let shard = 0; shard < shards; shard++) {
    const stub = env.SHARD.get(env.SHARD.idFromName(`${tenantId}/${roundId}/${shard}`));
    await runInShard(stub);
    await runDurableObjectAlarm(stub);
  }
}

/** Moves a shard's stage deadline into the past, as if its time limit had run out. */
async function runInShard(stub: DurableObjectStub) {
  const { runInDurableObject } = await import("cloudflare:test");
  await runInDurableObject(stub, async (_instance, state) => {
    const core = await state.storage.get<{ deadline: number | null }>("core");
    if (core && core.deadline !== null)
      await state.storage.put("core", { ...core, deadline: Date.now() - 1 });
  });
}

const vectorOf = (i: number) => Float64Array.of(1, i, -i / 2, 0.5);

async function latestWeights(key: string, dimension = 4) {
  const response = await call("GET", "/v1/models/activity/latest", key);
  if (response.status !== 200) return null;
  const model = (await response.json()) as { weights: string; contributions: number; aggregation: string };
  return { ...model, values: Array.from(decodeFloat64Vector(model.weights, dimension)) };
}

function expectSum(values: number[], contributors: number[]) {
  const expected = [contributors.length, 0, 0, 0.5 * contributors.length];
  for (const i of contributors) {
    expected[1] = (expected[1] as number) + i;
    expected[2] = (expected[2] as number) - i / 2;
  }
  for (const [j, v] of values.entries())
    expect(Math.abs(v - (expected[j] as number))).toBeLessThanOrEqual(contributors.length * STEP);
}

describe("SecAgg+ through the Worker, Durable Objects and D1 (workerd)", () => {
  it("four devices complete a round; D1 holds only the sum", async () => {
    const keys = await seedTenant("sa-a");
    const { roundId } = await openRound(keys.secret, {});
    const outcomes = await Promise.all(
      [1, 2, 3, 4].map(async (i) => {
        const client = device(keys.publishable);
        const { round } = await client.checkin("activity");
        return participateInSecAggRound(client, round!, () => vectorOf(i), {
          policy: "development",
          pollMs: 5,
        });
      }),
    );
    expect(outcomes.map((o) => o.status)).toEqual([
      "contributed",
      "contributed",
      "contributed",
      "contributed",
    ]);
    const model = await latestWeights(keys.publishable);
    expect(model).toMatchObject({ contributions: 4, aggregation: "secagg" });
    expectSum(model!.values, [1, 2, 3, 4]);
    const row = await env.DB.prepare("SELECT stage, model_version FROM rounds WHERE round_id = ?")
      .bind(roundId)
      .first();
    expect(row).toEqual({ stage: "closed", model_version: 1 });
  });

  for (const dropStage of STAGES) {
    // Bonawitz et al. §4: a device whose masked input arrived (U3) stays in the sum even if it
    // drops later (its self-mask is rebuilt from shares); one that drops earlier is left out.
    const quitterCounted = STAGES.indexOf(dropStage) > STAGES.indexOf("masked-input");
    it(`a device that drops at ${dropStage} is ${quitterCounted ? "recovered" : "left out"}, and the sum is exact`, async () => {
      const tenant = `sa-drop-${STAGES.indexOf(dropStage)}`;
      const keys = await seedTenant(tenant);
      const { roundId, secagg } = await openRound(keys.secret, {
        maxContributions: 5,
        secagg: { k: 4, t: 3 },
      });
      const sentByOthers: Record<string, number> = {};
      let quitterStopped = false;
      const quitter = async (): Promise<SecAggOutcome> => {
        const base = device(keys.publishable);
        const { round } = await base.checkin("activity");
        const fragile: CoordinatorClient = {
          ...base,
          secaggMessage: async (r, s, p, frame) => {
            // Frame byte 5 is the stage (coordinator/src/wire/secagg.ts): never deliver dropStage.
            if (frame instanceof Uint8Array && STAGES[frame[5] ?? 0] === dropStage) {
              quitterStopped = true;
              throw new Error(`device killed before sending ${dropStage}`);
            }
            return base.secaggMessage(r, s, p, frame);
          },
        };
        return participateInSecAggRound(fragile, round!, () => vectorOf(50), {
          policy: "development",
          pollMs: 5,
        }).catch((e: Error) => ({
          status: "dropped" as const,
          roundId,
          reason: e.message,
        }));
      };
      const others = [1, 2, 3, 4].map(async (i) => {
        const client = device(keys.publishable, {
          onSend: (stage) => {
            sentByOthers[stage] = (sentByOthers[stage] ?? 0) + 1;
          },
        });
        const { round } = await client.checkin("activity");
        return participateInSecAggRound(client, round!, () => vectorOf(i), {
          policy: "development",
          pollMs: 5,
        });
      });
      // The stage the quitter skips closes at its deadline: fire it once everyone else answered.
      const expirer = (async () => {
        while (!quitterStopped || (sentByOthers[dropStage] ?? 0) < 4)
          await new Promise((r) => setTimeout(r, 5));
        await expireStage(tenant, roundId, secagg.shards);
      })();
      const [quit, ...rest] = await Promise.all([quitter(), ...others]);
      await expirer;
      expect(quit.status).toBe("dropped");
      expect(rest.map((o) => o.status)).toEqual(["contributed", "contributed", "contributed", "contributed"]);
      const model = await latestWeights(keys.publishable);
      const counted = quitterCounted ? [1, 2, 3, 4, 50] : [1, 2, 3, 4];
      expect(model?.contributions).toBe(counted.length);
      expectSum(model!.values, counted);
    });
  }

  it("resumes after every Durable Object restarts mid-round", async () => {
    const keys = await seedTenant("sa-restart");
    await openRound(keys.secret, { maxContributions: 3 });
    let restarted = false;
    const outcomes = await Promise.all(
      [1, 2, 3].map(async (i) => {
        const client = device(keys.publishable, {
          onSend: (stage) => {
            if (!restarted && stage === "masked-input") {
              restarted = true;
              void abortAllDurableObjects();
            }
          },
        });
        const { round } = await client.checkin("activity");
        return participateInSecAggRound(client, round!, () => vectorOf(i), {
          policy: "development",
          pollMs: 5,
        });
      }),
    );
    expect(restarted).toBe(true);
    expect(outcomes.map((o) => o.status)).toEqual(["contributed", "contributed", "contributed"]);
    expectSum((await latestWeights(keys.publishable))!.values, [1, 2, 3]);
  });

  it("a cohort larger than one shard runs as several shard objects summed at the root", async () => {
    const keys = await seedTenant("sa-shards");
    const { secagg } = await openRound(keys.secret, {
      maxContributions: 9,
      minContributions: 6,
      secagg: { maxShardSize: 3, minShardSize: 3, k: 2, t: 2 },
    });
    expect(secagg.shards).toBe(3);
    const ids = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const outcomes = await Promise.all(
      ids.map(async (i) => {
        const client = device(keys.publishable);
        const { round } = await client.checkin("activity");
        return participateInSecAggRound(client, round!, () => vectorOf(i), {
          policy: "development",
          pollMs: 5,
        });
      }),
    );
    expect(outcomes.every((o) => o.status === "contributed")).toBe(true);
    const model = await latestWeights(keys.publishable);
    expect(model?.contributions).toBe(9);
    expectSum(model!.values, ids);
    for (let shard = 0; shard < 3; shard++) {
      const stub = env.SHARD.get(
        env.SHARD.idFromName(`sa-shards/${(outcomes[0] as { roundId: string }).roundId}/${shard}`),
      );
      const { runInDurableObject } = await import("cloudflare:test");
      const phase = await runInDurableObject(
        stub,
        async (_i, state) => (await state.storage.get<{ phase: string }>("core"))?.phase,
      );
      expect(phase).toBe("done");
    }
  });

  it("what the shard objects store for a device is never its vector", async () => {
    const keys = await seedTenant("sa-storage");
    const { roundId } = await openRound(keys.secret, { maxContributions: 2, secagg: { k: 2, t: 1 } });
    const secrets = [Float64Array.of(12.3456, -7.891, 33.3, 1.5), Float64Array.of(-5.5, 6.25, 1.125, 2)];
    await Promise.all(
      secrets.map(async (v) => {
        const client = device(keys.publishable);
        const { round } = await client.checkin("activity");
        return participateInSecAggRound(client, round!, () => v, { policy: "development", pollMs: 5 });
      }),
    );
    const { runInDurableObject } = await import("cloudflare:test");
    const stub = env.SHARD.get(env.SHARD.idFromName(`sa-storage/${roundId}/0`));
    const entries = await runInDurableObject(stub, async (_i, state) => [
      ...(await state.storage.list()).entries(),
    ]);
    const keysStored = entries.map(([key]) => key).sort();
    expect(keysStored).toEqual(["core", "device:0", "device:1", "shard", "sum"]);
    // Per device: public keys, sealed share boxes, tags, revealed shares and digests; no vector.
    for (const [key, record] of entries) {
      if (!key.startsWith("device:")) continue;
      expect(
        Object.keys(record as object).every((field) =>
          ["cPk", "sPk", "digests", "boxes", "tags", "bShares", "sShares"].includes(field),
        ),
      ).toBe(true);
    }
    const text = JSON.stringify(entries);
    for (const x of [12.3456, -7.891, 33.3, 6.25, 1.125]) expect(text).not.toContain(String(x));
  });
});
