/**
 * Issue 13 leftover: when every shard sum of a distributed-DP round is out of its plausible range
 * (`./shard-combine.ts`), the root used to throw `implausible_shard_sums` from its end, and the
 * alarm retried the decode forever. Now the round aborts: nothing is published, the coordinator's
 * sight of the noised shard sums is recorded in the ledger as a release with no aggregate, the
 * budget reservation goes, and no alarm is left.
 */
import { bytesToBase64, wordsToBytes } from "@fedprofile/protocol/bytes";
import { paddedDim } from "@fedprofile/protocol/dp";
import { RoundStatus } from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";
import { generateTenantKeys } from "../api-keys";
import { createCoordinatorApp } from "../app/create-app";
import { signerFromSeedHex } from "../ledger/chain";
import { createMemoryCoordinator } from "../memory/index";

const TENANT = "implausible-shop";

describe("a DP round whose every shard sum is out of range", () => {
  it("aborts cleanly, records the release, releases the reservation and leaves no alarm", async () => {
    const memory = createMemoryCoordinator({
      signer: signerFromSeedHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    });
    const keys = generateTenantKeys(TENANT);
    memory.tenants.addTenant({ id: TENANT, name: TENANT, createdAt: 0 }, keys);
    const app = createCoordinatorApp({ ...memory });
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await app.request(path, {
        method,
        headers: { authorization: `Bearer ${keys.secret.key}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, json: (await response.json()) as unknown };
    };
    expect(
      (await call("PUT", "/v1/privacy/budgets/segments", { v: 1, epsilonCap: 10, delta: 1e-6 })).status,
    ).toBe(200);
    const opened = await call("POST", "/v1/rounds", {
      v: 1,
      modelId: "segments",
      dimension: 4,
      minContributions: 10,
      maxContributions: 20,
      deadlineSeconds: 60,
      aggregation: "secagg",
      secagg: { minShardSize: 10 },
      dp: { clipNorm: 1, targetEpsilon: 1, rounds: 10 },
    });
    expect(opened.status).toBe(201);
    const round = RoundStatus.parse(opened.json);
    const dp = round.dp;
    if (dp?.mechanism !== "distributed_discrete_gaussian") throw new Error("expected a distributed round");
    const shards = round.secagg?.shards ?? 1;
    const host = memory.hosts.get(`${TENANT}/${round.roundId}`);
    if (!host) throw new Error("no root host");

    // Each shard reports a sum of 2^(m-1) in every word: the furthest a residue can be from any
    // plausible sum of the shard's clipped, noised inputs.
    const words = new Uint32Array(paddedDim(dp)).fill(2 ** (dp.modulusBits - 1));
    for (let shard = 0; shard < shards; shard++) {
      await host.host.shardFinished({
        shard,
        sum: bytesToBase64(wordsToBytes(words)),
        contributors: 20 / shards,
        abort: null,
      });
    }

    const status = await memory.rounds.status(TENANT, round.roundId);
    expect(status.stage).toBe("aborted");
    expect(status.outcome).toContain("implausible-shard-sums");
    expect(host.store.alarmAt).toBeNull();
    expect(await memory.models.latest(TENANT, "segments")).toBeNull();
    // The budget: the round's sight of the shard sums is spent (one release entry after the
    // policy entry), and no reservation is left holding budget.
    const budget = await call("GET", "/v1/privacy/budgets/segments");
    expect(budget.json).toMatchObject({ entries: 2 });
    expect((budget.json as { epsilonSpent: number }).epsilonSpent).toBeGreaterThan(0);
    expect(await memory.budgets.reservations(TENANT, "segments", Date.now())).toEqual([]);
    // A later alarm finds an ended round and does nothing.
    await host.host.alarm();
    expect((await memory.rounds.status(TENANT, round.roundId)).stage).toBe("aborted");
  });
});
