/**
 * A shard writes its alarm only when its deadline moves (issue 16: every message wrote it, one
 * more billed row per message): four devices through a whole round send 20 messages, and the
 * shard sets its alarm once per stage plus its report retry and its retention, not per message.
 */
import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import { createCoordinatorClient, participateInSecAggRound } from "@fedprofile/sdk/sync";
import { describe, expect, it } from "vitest";

describe("shard alarms", () => {
  it("are written per stage change, not per message", async () => {
    const memory = createMemoryCoordinator();
    const keys = generateTenantKeys("alarm-shop");
    memory.tenants.addTenant({ id: "alarm-shop", name: "alarms", createdAt: 0 }, keys);
    const app = createCoordinatorApp({
      tenants: memory.tenants,
      models: memory.models,
      rounds: memory.rounds,
    });
    const appFetch: typeof fetch = async (input, init) =>
      app.request(input instanceof Request ? input : String(input), init);
    const round = await memory.rounds.open("alarm-shop", {
      v: 1,
      modelId: "activity",
      dimension: 3,
      minContributions: 2,
      maxContributions: 4,
      deadlineSeconds: 60,
      aggregation: "secagg",
      secagg: {
        encoding: { kind: "fixed-point", clip: 64, valueBits: 16 },
        maxShardSize: 1000,
        minShardSize: 2,
        consistencyCheck: true,
        stageSeconds: 30,
        k: 2,
        t: 2,
      },
    });
    // The shard's object exists before its first join (its storage is empty until then).
    memory.shardFor("alarm-shop", round.roundId, 0);
    const store = memory.shards.get(`alarm-shop/${round.roundId}/0`)?.store;
    if (!store) throw new Error("no shard store");
    const alarms: number[] = [];
    const setAlarm = store.setAlarm.bind(store);
    store.setAlarm = (at) => {
      alarms.push(at);
      return setAlarm(at);
    };
    const outcomes = await Promise.all(
      [1, 2, 3, 4].map(async (i) => {
        const client = createCoordinatorClient({
          endpoint: "http://coordinator.test",
          apiKey: keys.publishable.key,
          fetch: appFetch,
        });
        const { round: open } = await client.checkin("activity");
        if (!open) throw new Error("no open round");
        return participateInSecAggRound(client, open, () => Float64Array.of(i, 0, 1), {
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
    // 5 stages (the first set at the lazy open), the report's retry alarm, the retention alarm.
    expect(alarms.length).toBeLessThanOrEqual(7);
    expect(new Set(alarms).size).toBe(alarms.length);
  });
});
