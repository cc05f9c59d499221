/**
 * The aggregation tree (issue 16) in memory: a DP round of 40 shards runs through 2 aggregators.
 * - The robust combine runs per aggregator: a shard whose sum is out of range is left out, and
 *   the honest shards' trimmed mean reaches the root's running total exactly.
 * - Every revealed shard sum is counted in the round's one ledger entry, the out-of-range one too.
 * - An aggregator's report survives a failed call to the root (retry alarm), and a retried shard
 *   report is not counted twice.
 * - When the root gives up, it closes the aggregators, which close their silent shards (a fence).
 */
import {
  type AggregatorState,
  type ChildOutcome,
  createAggregatorHost,
  createMemoryCoordinator,
  generateTenantKeys,
  MemoryRoundStateStore,
  SHARD_RETENTION_MS,
  wordsOf,
} from "@fedprofile/coordinator";
import { isReleaseEntry, readAll } from "@fedprofile/coordinator/ledger";
import { OpenRoundRequest } from "@fedprofile/coordinator/wire";
import { describe, expect, it } from "vitest";

const TENANT = "tree-shop";
const SHARDS = 40;
const M = 24;

function setup() {
  let skew = 0;
  const clock = () => Date.now() + skew;
  const memory = createMemoryCoordinator({ clock });
  memory.tenants.addTenant({ id: TENANT, name: "tree", createdAt: 0 }, generateTenantKeys(TENANT));
  return { memory, clock, advance: (ms: number) => (skew += ms) };
}

async function open(memory: ReturnType<typeof createMemoryCoordinator>) {
  await memory.privacy.setBudget(TENANT, "segments", { v: 1, epsilonCap: 50, delta: 1e-6 });
  return memory.rounds.open(
    TENANT,
    OpenRoundRequest.parse({
      v: 1,
      modelId: "segments",
      dimension: 4,
      minContributions: 1,
      maxContributions: 3 * SHARDS,
      deadlineSeconds: 600,
      aggregation: "secagg",
      secagg: { minShardSize: 3, maxShardSize: 3, k: 2, t: 2, stageSeconds: 60 },
      dp: { clipNorm: 1, targetEpsilon: 2, rounds: 4, modulusBits: M },
    }),
  );
}

/** A shard sum of 2 devices that each sent `v`·(i+1) (padded dimension 4), mod 2^m, base64. */
function shardSum(v: number): string {
  const words = new Uint32Array(4).map((_, i) => (((2 * v * (i + 1)) % 2 ** M) + 2 ** M) % 2 ** M);
  return Buffer.from(words.buffer).toString("base64");
}

/** A synthetic shard registers as a real one does on its first join (lazy open). */
const register = (memory: ReturnType<typeof createMemoryCoordinator>, roundId: string, shard: number) =>
  memory
    .aggregatorFor(TENANT, roundId, Math.floor(shard / 32))
    .registerShard({ tenantId: TENANT, roundId, shard, shards: SHARDS });

const aggregatorOf = (memory: ReturnType<typeof createMemoryCoordinator>, roundId: string, shard: number) => {
  const host = memory.aggregatorFor(TENANT, roundId, Math.floor(shard / 32));
  const entry = memory.aggregators.get(`${TENANT}/${roundId}/${Math.floor(shard / 32)}`);
  if (!entry) throw new Error(`no aggregator for shard ${shard}`);
  return { host, store: entry.store };
};

describe("aggregation tree (memory)", () => {
  it("40 shards, 2 aggregators: a lying shard is range-checked out, the total is exact, one ledger entry", async () => {
    const { memory } = setup();
    const status = await open(memory);
    // Nothing opens with the round (lazy open): each aggregator opens on its first shard.
    expect(memory.aggregators.size).toBe(0);
    for (let shard = 0; shard < SHARDS; shard++) {
      await register(memory, status.roundId, shard);
      // Shard 5 lies: 2^(m-1) in every coordinate, far outside what 2 clipped devices can sum to.
      const sum =
        shard === 5
          ? Buffer.from(new Uint32Array(4).fill(2 ** (M - 1)).buffer).toString("base64")
          : shardSum(3);
      const outcome = { shard, sum, contributors: 2, abort: null };
      await aggregatorOf(memory, status.roundId, shard).host.shardFinished(outcome);
      // A retry of the same report (the shard did not see the ack): acknowledged, not counted.
      if (shard === 7) await aggregatorOf(memory, status.roundId, shard).host.shardFinished(outcome);
    }
    const ended = await memory.rounds.status(TENANT, status.roundId);
    expect(ended.stage).toBe("closed");
    expect(ended.contributions).toBe(2 * SHARDS);
    const root = memory.hosts.get(`${TENANT}/${status.roundId}`);
    const total = wordsOf((await root?.store.sum("total")) as Uint8Array);
    // The honest shards' means are all 3·(i+1), so the trimmed mean times 78 kept devices is exact.
    expect(Array.from(total)).toEqual(Array.from({ length: 4 }, (_, i) => 78 * 3 * (i + 1)));
    const entries = (await readAll(memory.ledger, { tenant: TENANT, model: "segments" })).filter(
      isReleaseEntry,
    );
    expect(entries).toHaveLength(1);
    // Every shard sum the coordinator saw is released, the rejected one included.
    expect(entries[0]).toMatchObject({ cohort: { survivors: 80 } });
  });

  it("an aggregator rebuilt after a restart completes its group; the root's give-up closes silent shards", async () => {
    const { memory, clock, advance } = setup();
    const status = await open(memory);
    // Group 1 (shards 32..39) reports fully while the root is unreachable (a restart in between).
    for (let shard = 32; shard < SHARDS; shard++) await register(memory, status.roundId, shard);
    await register(memory, status.roundId, 0);
    // Shards 1..31 open for real on a join (and then stay silent).
    for (let shard = 1; shard < 32; shard++) {
      await memory.shardFor(TENANT, status.roundId, shard).admit(`p_${shard}`, "0".repeat(64), {
        tenantId: TENANT,
        roundId: status.roundId,
        shard,
        shards: SHARDS,
      });
    }
    expect(memory.aggregators.size).toBe(2);
    const group1 = aggregatorOf(memory, status.roundId, 32);
    for (let shard = 32; shard < SHARDS - 1; shard++)
      await group1.host.shardFinished({ shard, sum: shardSum(1), contributors: 2, abort: null });
    memory.restartAll();
    const stale = group1.host;
    await expect(
      stale.shardFinished({ shard: 39, sum: shardSum(1), contributors: 2, abort: null }),
    ).rejects.toThrow(/reset/);
    const fresh = aggregatorOf(memory, status.roundId, 32);
    // Rebuilt from storage: the 8th report completes the group and reaches the root.
    await fresh.host.shardFinished({ shard: 39, sum: shardSum(1), contributors: 2, abort: null });
    expect(fresh.store.state?.reported).toBe(true);
    // Group 0: only shard 0 reports; the others are silent until the root gives up.
    await aggregatorOf(memory, status.roundId, 0).host.shardFinished({
      shard: 0,
      sum: shardSum(1),
      contributors: 2,
      abort: null,
    });
    advance(60 * 60_000);
    await memory.fireDueAlarms();
    const ended = await memory.rounds.status(TENANT, status.roundId);
    expect(ended.stage).toBe("closed");
    expect(ended.contributions).toBe(2 * 9);
    // Every silent shard was closed by its aggregator: none can unmask after the round ended.
    for (let shard = 1; shard < 32; shard++) {
      const shardStatus = await memory.shards.get(`${TENANT}/${status.roundId}/${shard}`)?.host.status();
      expect(shardStatus?.phase, `shard ${shard}`).toBe("aborted");
    }
    expect(clock()).toBeGreaterThan(0);
  });

  it("an aggregator's report to a failing root is retried by its alarm until acknowledged", async () => {
    const store = new MemoryRoundStateStore<AggregatorState>();
    const received: ChildOutcome[] = [];
    let failures = 1;
    let now = 1_000;
    const host = createAggregatorHost({
      store,
      clock: () => now,
      shardFor: () => ({ close: () => Promise.reject(new Error("not used")) }),
      root: () => ({
        registerAggregator: () => Promise.reject(new Error("not used")),
        shardFinished: async (outcome) => {
          if (failures-- > 0) throw new Error("root restarted mid-request");
          received.push(outcome);
        },
      }),
    });
    await host.open({ tenantId: TENANT, roundId: "r", index: 0, first: 0, end: 2, dim: 4 });
    await host.shardFinished({ shard: 0, sum: shardSum(1), contributors: 2, abort: null });
    await host.shardFinished({ shard: 1, sum: shardSum(2), contributors: 2, abort: null });
    // The call failed: the combined sum is stored and an alarm is due.
    expect(received).toHaveLength(0);
    expect(store.state?.reported).toBe(false);
    expect(store.alarmAt).not.toBeNull();
    await host.alarm();
    expect(store.state?.reported).toBe(true);
    expect(received).toHaveLength(1);
    // Fixed point (no DP): the exact sum of both shards, as doubles.
    const sum = new Float64Array(Uint8Array.from(Buffer.from(received[0]?.sum ?? "", "base64")).buffer);
    expect(Array.from(sum)).toEqual([6, 12, 18, 24]);
    expect(received[0]).toMatchObject({ contributors: 4, survivors: 4, revealed: [2, 2], sumKind: "f64" });
    // Acknowledged: kept for the retention period, then erased (state, sums and alarm).
    expect(store.alarmAt).toBe(1_000 + SHARD_RETENTION_MS);
    now = 1_000 + SHARD_RETENTION_MS - 1;
    await host.alarm();
    expect(store.state?.reported).toBe(true);
    now = 1_000 + SHARD_RETENTION_MS;
    await host.alarm();
    expect(store.state).toBeNull();
    expect(store.sums.size).toBe(0);
    expect(store.alarmAt).toBeNull();
  });
});
