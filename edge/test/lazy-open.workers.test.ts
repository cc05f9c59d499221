/**
 * Lazy shard open in workerd (issue 16): opening a round opens no shard and no aggregator, so a
 * round of 10^6 devices (1,000 shards under 32 aggregators) opens in O(1) subrequests; a join
 * opens the shard `pickShard` names, which registers with its aggregator, which registers with
 * the root. Shards no device touched never exist and do not hold the round up: once the join
 * window has closed, the root ends on the registered children's reports.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { JoinResponse, RoundStatus } from "@fedprofile/coordinator/wire";
import { describe, expect, it } from "vitest";
import { registerAt, reportTo } from "../src/tree-routing";
import { call, seedTenant } from "./helpers";

const ENCODING = { kind: "fixed-point" as const, clip: 1, valueBits: 8 };

async function openRound(secret: string, devices: number, shardSize: number, deadlineSeconds: number) {
  const started = Date.now();
  const response = await call("POST", "/v1/rounds", secret, {
    v: 1,
    modelId: "lazy",
    dimension: 4,
    minContributions: 1,
    maxContributions: devices,
    deadlineSeconds,
    aggregation: "secagg",
    secagg: {
      encoding: ENCODING,
      minShardSize: 2,
      maxShardSize: shardSize,
      k: 2,
      t: 1,
      consistencyCheck: false,
      stageSeconds: 3600,
    },
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return { status: RoundStatus.parse(await response.json()), ms: Date.now() - started };
}

const shardStub = (tenant: string, roundId: string, shard: number) =>
  env.SHARD.get(env.SHARD.idFromName(`${tenant}/${roundId}/${shard}`));
const rootStub = (tenant: string, roundId: string) =>
  env.ROUND.get(env.ROUND.idFromName(`${tenant}/${roundId}`));
/** The root's status over RPC. */
async function statusOf(root: ReturnType<typeof rootStub>) {
  const result = await root.status();
  if (!result.ok) throw new Error(JSON.stringify(result.error));
  return RoundStatus.parse(result.value);
}
const keysOf = async (stub: DurableObjectStub) =>
  runInDurableObject(stub, async (_instance, state) => [...(await state.storage.list()).keys()]);

describe("lazy shard open (workerd)", () => {
  it("a round of 10^6 devices opens with no shard; a join opens one shard and its aggregator", async () => {
    const keys = await seedTenant("lazy-million");
    const { status, ms } = await openRound(keys.secret, 1_000_000, 1000, 600);
    expect(status.secagg?.shards).toBe(1000);
    console.log(`open of a 10^6-device round (1,000 shards): ${ms} ms`);
    // No shard exists yet: neither the first nor the last has any storage.
    expect(await keysOf(shardStub("lazy-million", status.roundId, 0))).toEqual([]);
    expect(await keysOf(shardStub("lazy-million", status.roundId, 999))).toEqual([]);

    const joined = await call("POST", `/v1/rounds/${status.roundId}/join`, keys.publishable, { v: 1 });
    expect(joined.status, await joined.clone().text()).toBe(200);
    const join = JoinResponse.parse(await joined.json());
    const shard = join.secagg?.shard ?? -1;
    expect(shard).toBeGreaterThanOrEqual(0);
    expect(await keysOf(shardStub("lazy-million", status.roundId, shard))).toContain("shard");
    // The shard registered with its aggregator, and the aggregator with the root.
    const aggregator = env.AGGREGATOR.get(
      env.AGGREGATOR.idFromName(`lazy-million/${status.roundId}/agg/${Math.floor(shard / 32)}`),
    );
    await runInDurableObject(aggregator, async (_instance, state) => {
      expect((await state.storage.get<{ opened: number[] }>("round"))?.opened).toEqual([shard]);
    });
    await runInDurableObject(rootStub("lazy-million", status.roundId), async (_instance, state) => {
      const root = await state.storage.get<{ opened: number[] }>("round");
      expect(root?.opened).toEqual([Math.floor(shard / 32)]);
    });
    // The device's view comes from the lazily opened shard.
    const view = await call(
      "GET",
      `/v1/rounds/${status.roundId}/shards/${shard}/view`,
      keys.publishable,
      undefined,
      { "x-participant": `${join.participantId}.${join.participantToken}` },
    );
    expect(view.status, await view.clone().text()).toBe(200);
  });

  it("shards no device touched do not hold the round: it ends at the join window's close", async () => {
    const tenant = "lazy-partial";
    const keys = await seedTenant(tenant);
    // 4 shards of 2; only shards 0 and 2 ever open.
    const { status } = await openRound(keys.secret, 8, 2, 1);
    const roundId = status.roundId;
    const sum = btoa(String.fromCharCode(...new Uint8Array(Uint32Array.of(3, 3, 3, 3).buffer)));
    for (const shard of [0, 2]) {
      await registerAt(env, { tenantId: tenant, roundId, shard }, 4);
      await reportTo(env, { tenantId: tenant, roundId, shard }, 4, {
        shard,
        sum,
        contributors: 2,
        abort: null,
      });
    }
    const root = rootStub(tenant, roundId);
    // Before the window closes shards 1 and 3 could still open: the round waits.
    expect((await statusOf(root)).stage).toBe("collecting");
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    // After it the root's alarm (at the window's close; run here if workerd has not yet) ends
    // the round on the two shards it has, long before the give-up time, and a new shard is refused.
    await runDurableObjectAlarm(root);
    await expect(registerAt(env, { tenantId: tenant, roundId, shard: 1 }, 4)).rejects.toThrow(
      /join window closed|is closed/,
    );
    const ended = await statusOf(root);
    expect(ended).toMatchObject({ stage: "closed", outcome: "all-shards-finished", contributions: 4 });
    expect(await keysOf(shardStub(tenant, roundId, 1))).toEqual([]);
  });
});
