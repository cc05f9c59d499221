/**
 * Issue 11, finding 1: a crash between a shard's unmask and its report to the root lost a DP
 * release from the ledger. These tests crash the in-memory coordinator (every host dropped, old
 * hosts' storage writes refused, as a Durable Object reset does) at that point and at the root's
 * end, and check that the round still publishes with exactly one ledger entry that verifies.
 */
import {
  createCoordinatorApp,
  createMemoryCoordinator,
  generateTenantKeys,
  SHARD_RETENTION_MS,
} from "@fedprofile/coordinator";
import { type LedgerEntry, readAll, signerFromSeedHex, verifyLedger } from "@fedprofile/coordinator/ledger";
import { type OpenRoundInput, RoundStatus } from "@fedprofile/coordinator/wire";
import { createCoordinatorClient, participateInSecAggRound } from "@fedprofile/sdk/sync";
import { describe, expect, it } from "vitest";

const TENANT = "crash-shop";
const SIGNER = signerFromSeedHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const VECTORS = [
  [0.5, -0.25, 0.125, 0],
  [0.25, 0.25, -0.5, 0.5],
  [-0.125, 0.5, 0.25, 0.25],
  [0.5, 0.5, 0.5, -0.25],
];

function setup() {
  let skew = 0;
  const clock = () => Date.now() + skew;
  const memory = createMemoryCoordinator({ signer: SIGNER, clock });
  const keys = generateTenantKeys(TENANT);
  memory.tenants.addTenant({ id: TENANT, name: "crash shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp({
    tenants: memory.tenants,
    models: memory.models,
    rounds: memory.rounds,
    privacy: memory.privacy,
    clock,
  });
  const appFetch: typeof fetch = async (input, init) =>
    app.request(input instanceof Request ? input : String(input), init);
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${keys.secret.key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as unknown };
  };
  const open = async () => {
    const response = await call("POST", "/v1/rounds", {
      v: 1,
      modelId: "segments",
      dimension: 4,
      minContributions: 3,
      maxContributions: VECTORS.length,
      deadlineSeconds: 60,
      aggregation: "secagg",
      secagg: { minShardSize: 2, stageSeconds: 2, k: 2, t: 2 },
      dp: { clipNorm: 1, targetEpsilon: 2, rounds: 4, modulusBits: 24 },
    } satisfies OpenRoundInput);
    expect(response.status, JSON.stringify(response.json)).toBe(201);
    return RoundStatus.parse(response.json);
  };
  const runDevices = () =>
    Promise.allSettled(
      VECTORS.map(async (v) => {
        const client = createCoordinatorClient({
          endpoint: "http://coordinator.test",
          apiKey: keys.publishable.key,
          fetch: appFetch,
          retry: { windowMs: 50, baseDelayMs: 5 },
        });
        const { round } = await client.checkin("segments");
        if (!round) throw new Error("no open round");
        return participateInSecAggRound(client, round, () => Float64Array.from(v), {
          pollMs: 5,
          policy: "development",
        });
      }),
    );
  /** Replaces a round's root so its next shard report "crashes the machine" instead of landing. */
  const crashOnReport = (roundId: string) => {
    const key = `${TENANT}/${roundId}`;
    const entry = memory.hosts.get(key);
    if (!entry) throw new Error("no root host");
    const { host } = entry;
    memory.hosts.set(key, {
      ...entry,
      host: {
        ...host,
        shardFinished: async () => {
          memory.restartAll();
          throw new Error("SIGKILL");
        },
      },
    });
  };
  // The chain's round entries (it also holds the policy entry of the budget set-up).
  const entriesOf = async () =>
    (await readAll(memory.ledger, { tenant: TENANT, model: "segments" })).filter(
      (e): e is Extract<LedgerEntry, { kind: "round" }> => e.kind === "round",
    );
  const chainOf = () => readAll(memory.ledger, { tenant: TENANT, model: "segments" });
  return {
    memory,
    call,
    open,
    runDevices,
    crashOnReport,
    entriesOf,
    chainOf,
    advance: (ms: number) => {
      skew += ms;
    },
  };
}

describe("a DP release survives a crash (issue 11, finding 1)", () => {
  it("a shard that unmasked and crashed before its report reports by alarm; one ledger entry", async () => {
    const ctx = setup();
    await ctx.call("PUT", "/v1/privacy/budgets/segments", { v: 1, epsilonCap: 8, delta: 1e-6 });
    const round = await ctx.open();
    ctx.crashOnReport(round.roundId);
    await ctx.runDevices();
    // The shard opened on its first join (lazy open); its storage outlives the crash.
    ctx.memory.shardFor(TENANT, round.roundId, 0);
    const shard = ctx.memory.shards.get(`${TENANT}/${round.roundId}/0`);
    // After the crash the shard's storage holds the sum, unreported, and a retry alarm (the
    // old code had deleted its alarm before reporting, so nothing would ever report it).
    expect(shard?.store.entries.get("shard")).toMatchObject({ reported: false });
    expect(shard?.store.alarmAt).not.toBeNull();
    ctx.advance(2_000);
    await ctx.memory.fireDueAlarms();
    const status = RoundStatus.parse((await ctx.call("GET", `/v1/rounds/${round.roundId}`)).json);
    expect(status.stage).toBe("closed");
    expect(status.contributions).toBe(VECTORS.length);
    const entries = await ctx.entriesOf();
    expect(entries.filter((e) => e.roundId === round.roundId)).toHaveLength(1);
    expect(verifyLedger(await ctx.chainOf(), SIGNER.publicKey).ok).toBe(true);
    // The retried report was acknowledged: a retention period later the shard's storage is empty.
    const rebuilt = ctx.memory.shards.get(`${TENANT}/${round.roundId}/0`);
    expect(rebuilt?.store.entries.get("shard")).toMatchObject({ reported: true });
    ctx.advance(SHARD_RETENTION_MS + 1_000);
    await ctx.memory.fireDueAlarms();
    expect(rebuilt?.store.entries.size).toBe(0);
    expect(rebuilt?.store.alarmAt).toBeNull();
  });

  it("the root's give-up closes a shard whose report is late and counts its sum (a fence)", async () => {
    const ctx = setup();
    await ctx.call("PUT", "/v1/privacy/budgets/segments", { v: 1, epsilonCap: 8, delta: 1e-6 });
    const round = await ctx.open();
    ctx.crashOnReport(round.roundId);
    await ctx.runDevices();
    // The machine stays down past the root's give-up time; its alarm runs before the shard's.
    ctx.advance(10 * 60_000);
    await ctx.memory.rounds.status(TENANT, round.roundId);
    const root = ctx.memory.hosts.get(`${TENANT}/${round.roundId}`);
    await root?.host.alarm();
    const status = RoundStatus.parse((await ctx.call("GET", `/v1/rounds/${round.roundId}`)).json);
    expect(status.stage).toBe("closed");
    expect(status.contributions).toBe(VECTORS.length);
    // The shard's own retry then lands on an ended root, which acknowledges: no second entry.
    await ctx.memory.fireDueAlarms();
    const entries = await ctx.entriesOf();
    expect(entries.filter((e) => e.roundId === round.roundId)).toHaveLength(1);
    expect(verifyLedger(await ctx.chainOf(), SIGNER.publicKey).ok).toBe(true);
  });

  it("a root that crashed after its ledger append does not append again (another round in between)", async () => {
    const ctx = setup();
    await ctx.call("PUT", "/v1/privacy/budgets/segments", { v: 1, epsilonCap: 20, delta: 1e-6 });
    const first = await ctx.open();
    // Publishing the first round's version fails once: the crash hits after the append.
    const publish = ctx.memory.models.publish.bind(ctx.memory.models);
    let failed = false;
    ctx.memory.models.publish = async (...args) => {
      if (!failed && args[1].roundId === first.roundId) {
        failed = true;
        ctx.memory.restartAll();
        throw new Error("SIGKILL");
      }
      return publish(...args);
    };
    await ctx.runDevices();
    expect(failed).toBe(true);
    expect((await ctx.entriesOf()).map((e) => e.roundId)).toEqual([first.roundId]);
    // A second round of the model ends meanwhile and appends its own entry.
    const second = await ctx.open();
    await ctx.runDevices();
    expect((await ctx.entriesOf()).map((e) => e.roundId)).toEqual([first.roundId, second.roundId]);
    // The first round's root retries its end at its give-up time.
    ctx.advance(10 * 60_000);
    await ctx.memory.fireDueAlarms();
    const status = RoundStatus.parse((await ctx.call("GET", `/v1/rounds/${first.roundId}`)).json);
    expect(status.stage).toBe("closed");
    const entries = await ctx.entriesOf();
    expect(entries.map((e) => e.roundId)).toEqual([first.roundId, second.roundId]);
    expect(verifyLedger(await ctx.chainOf(), SIGNER.publicKey).ok).toBe(true);
  });
});

describe("finished shards are kept only for the retention period (issues 11, 16)", () => {
  it("after the root has the report and the retention period has passed, the shard erases itself", async () => {
    const ctx = setup();
    await ctx.call("PUT", "/v1/privacy/budgets/segments", { v: 1, epsilonCap: 8, delta: 1e-6 });
    const round = await ctx.open();
    await ctx.runDevices();
    const shard = ctx.memory.shards.get(`${TENANT}/${round.roundId}/0`);
    const before = [...(shard?.store.entries.keys() ?? [])].sort();
    expect(before.filter((k) => k.startsWith("device:"))).toHaveLength(VECTORS.length);
    // The report landed: the alarm now waits for the retention period.
    expect(shard?.store.entries.get("shard")).toMatchObject({ reported: true });
    expect(shard?.store.alarmAt).toBeGreaterThan(Date.now() + SHARD_RETENTION_MS - 60_000);
    ctx.advance(SHARD_RETENTION_MS - 60_000);
    await ctx.memory.fireDueAlarms();
    expect([...(shard?.store.entries.keys() ?? [])].sort()).toEqual(before);
    ctx.advance(120_000);
    await ctx.memory.fireDueAlarms();
    // Erased (issue 16): no entry and no alarm is left; the root has the outcome, the ledger the entry.
    expect(shard?.store.entries.size).toBe(0);
    expect(shard?.store.alarmAt).toBeNull();
    await expect(ctx.memory.shards.get(`${TENANT}/${round.roundId}/0`)?.host.status()).rejects.toThrow(
      /not found/,
    );
    const status = RoundStatus.parse((await ctx.call("GET", `/v1/rounds/${round.roundId}`)).json);
    expect(status.stage).toBe("closed");
    expect((await ctx.entriesOf()).filter((e) => e.roundId === round.roundId)).toHaveLength(1);
  });
});
