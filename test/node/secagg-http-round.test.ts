/**
 * SecAgg+ rounds through the real HTTP app (in-memory ports): devices run the SDK's client
 * stages against the coordinator's routes, the coordinator publishes only the sum, and a device
 * that disappears mid-round is recovered from.
 */
import {
  type AnyRoundState,
  createCoordinatorApp,
  createMemoryCoordinator,
  generateTenantKeys,
} from "@fedprofile/coordinator";
import { decodeFloat64Vector, type OpenRoundRequest } from "@fedprofile/coordinator/wire";

import {
  type CoordinatorClient,
  createCoordinatorClient,
  participateInSecAggRound,
  type SecAggOutcome,
} from "@fedprofile/sdk/sync";
import { afterEach, describe, expect, it } from "vitest";
import { expectMaskedUploads, expectNoPlaintext, fixedPointCodes } from "../privacy";

const ENCODING = { kind: "fixed-point" as const, clip: 64, valueBits: 16 };
const STEP = (2 * ENCODING.clip) / (2 ** ENCODING.valueBits - 1);

function setup() {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys("sa-shop");
  memory.tenants.addTenant({ id: "sa-shop", name: "SecAgg shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp({ tenants: memory.tenants, models: memory.models, rounds: memory.rounds });
  const bodies: Array<string | Uint8Array> = [];
  const appFetch: typeof fetch = async (input, init) => {
    if (init?.body instanceof Uint8Array || typeof init?.body === "string") bodies.push(init.body);
    return app.request(input instanceof Request ? input : String(input), init);
  };
  // Deadlines are Durable Object alarms in production; here a timer fires the due ones.
  const ticker = setInterval(() => void memory.fireDueAlarms(), 25);
  const device = (): CoordinatorClient =>
    createCoordinatorClient({
      endpoint: "http://coordinator.test",
      apiKey: keys.publishable.key,
      fetch: appFetch,
    });
  const open = async (
    overrides: Partial<Omit<OpenRoundRequest, "secagg">> & {
      secagg?: Partial<NonNullable<OpenRoundRequest["secagg"]>>;
    },
  ) => {
    const request: OpenRoundRequest = {
      v: 1,
      modelId: "activity",
      dimension: 3,
      minContributions: 2,
      maxContributions: 4,
      deadlineSeconds: 60,
      aggregation: "secagg",
      ...overrides,
      secagg: {
        encoding: ENCODING,
        maxShardSize: 1000,
        minShardSize: 2,
        consistencyCheck: true,
        stageSeconds: 1,
        k: 2,
        t: 2,
        ...overrides.secagg,
      },
    };
    return memory.rounds.open("sa-shop", request);
  };
  return { memory, keys, device, open, bodies, stop: () => clearInterval(ticker) };
}

/** Distinctive vectors for the privacy check. */
const VECTORS = [Float64Array.of(12.3456, -7.891, 33.3), Float64Array.of(-5.5, 6.25, 1.125)];

let stop: (() => void) | undefined;
afterEach(() => stop?.());

async function checkinRound(client: CoordinatorClient) {
  const { round } = await client.checkin("activity");
  if (!round) throw new Error("no open round");
  return round;
}

describe("SecAgg+ over HTTP with the SDK's client stages", () => {
  it("four devices: the published model is the sum, within the fixed-point step", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.open({ secagg: { k: 2, t: 2 } });
    const vectors = [
      [1, 2.5, -3],
      [1, 0.25, 4],
      [1, 10, 0],
      [1, -1, 7.75],
    ];
    const outcomes = await Promise.all(
      vectors.map(async (v) => {
        const client = ctx.device();
        return participateInSecAggRound(client, await checkinRound(client), () => Float64Array.from(v), {
          policy: "development",
          pollMs: 10,
        });
      }),
    );
    expect(outcomes.map((o) => o.status)).toEqual([
      "contributed",
      "contributed",
      "contributed",
      "contributed",
    ]);
    const model = await ctx.memory.models.latest("sa-shop", "activity");
    expect(model).toMatchObject({ version: 1, contributions: 4, aggregation: "secagg" });
    const weights = Array.from(decodeFloat64Vector(model!.weights, 3));
    const expected = [4, 11.75, 8.75];
    for (const [i, w] of weights.entries())
      expect(Math.abs(w - (expected[i] as number))).toBeLessThanOrEqual(4 * STEP);
  });

  it("a device that vanishes after sharing keys is recovered: the rest are summed exactly", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.open({ maxContributions: 5, secagg: { k: 4, t: 3 } });
    const quitter = ctx.device();
    const round = await checkinRound(quitter);
    // The quitter advertises and shares keys, then its tab is killed.
    const stopAfterShares = async (): Promise<SecAggOutcome> => {
      let sent = 0;
      const fragile: CoordinatorClient = {
        ...quitter,
        secaggMessage: async (...args) => {
          sent++;
          if (sent > 2) throw new Error("tab killed");
          return quitter.secaggMessage(...args);
        },
      };
      return participateInSecAggRound(fragile, round, () => Float64Array.of(100, 100, 100), {
        policy: "development",
        pollMs: 10,
      }).catch((error: Error) => ({ status: "dropped", roundId: round.roundId, reason: error.message }));
    };
    const others = [
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
      [4, 4, 4],
    ].map(async (v) => {
      const client = ctx.device();
      return participateInSecAggRound(client, await checkinRound(client), () => Float64Array.from(v), {
        policy: "development",
        pollMs: 10,
      });
    });
    const [quit, ...rest] = await Promise.all([stopAfterShares(), ...others]);
    expect(quit?.status).toBe("dropped");
    expect(rest.map((o) => o.status)).toEqual(["contributed", "contributed", "contributed", "contributed"]);
    const model = await ctx.memory.models.latest("sa-shop", "activity");
    expect(model?.contributions).toBe(4);
    for (const w of decodeFloat64Vector(model!.weights, 3))
      expect(Math.abs(w - 10)).toBeLessThanOrEqual(4 * STEP);
  });

  it("an odd degree or a threshold above min(k, n - 1) is a bad request (400), not a crash", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await expect(ctx.open({ maxContributions: 4, secagg: { k: 3, t: 2 } })).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/secagg\.k: the graph degree must be even/),
    });
    await expect(ctx.open({ maxContributions: 3, secagg: { k: 2, t: 3 } })).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/secagg\.t: a threshold of 3 exceeds min\(k, shard size - 1\) = 2/),
    });
  });

  it("below the threshold the round aborts and publishes nothing", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.open({ maxContributions: 4, minContributions: 2, secagg: { k: 2, t: 2 } });
    const client = ctx.device();
    const outcome = await participateInSecAggRound(
      client,
      await checkinRound(client),
      () => Float64Array.of(1, 2, 3),
      {
        policy: "development",
        pollMs: 10,
      },
    );
    expect(outcome.status).toBe("aborted");
    expect(await ctx.memory.models.latest("sa-shop", "activity")).toBeNull();
    const [entry] = [...ctx.memory.hosts.values()];
    const state: AnyRoundState | null | undefined = entry?.store.state;
    expect(state?.stage).toBe("aborted");
  });

  it("survives a restart of every host mid-round (state comes back from storage)", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.open({ maxContributions: 3, secagg: { k: 2, t: 2 } });
    let restarted = false;
    const outcomes = await Promise.all(
      [1, 2, 3].map(async (x) => {
        const base = ctx.device();
        const client: CoordinatorClient = {
          ...base,
          secaggMessage: async (...args) => {
            const ack = await base.secaggMessage(...args);
            if (!restarted && ack.stage === "share-keys") {
              restarted = true;
              ctx.memory.restartAll();
            }
            return ack;
          },
        };
        return participateInSecAggRound(client, await checkinRound(client), () => Float64Array.of(x, x, x), {
          policy: "development",
          pollMs: 10,
        });
      }),
    );
    expect(restarted).toBe(true);
    expect(outcomes.map((o) => o.status)).toEqual(["contributed", "contributed", "contributed"]);
    const model = await ctx.memory.models.latest("sa-shop", "activity");
    for (const w of decodeFloat64Vector(model!.weights, 3))
      expect(Math.abs(w - 6)).toBeLessThanOrEqual(3 * STEP);
  });

  it("a masked input whose storage write fails is retried and counted once (the sum is added in place)", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.open({ maxContributions: 3, secagg: { k: 2, t: 2 } });
    // The second masked input's write fails once, after the shard has added it into its sum.
    // Shards open on their first join, so each shard's store is wrapped as it is created.
    let sumWrites = 0;
    let failed = false;
    const shards = ctx.memory.shards;
    const register = shards.set.bind(shards);
    shards.set = (key, entry) => {
      const put = entry.store.put.bind(entry.store);
      entry.store.put = async (entries) => {
        if (entries.sum instanceof Uint32Array && ++sumWrites === 2 && !failed) {
          failed = true;
          throw new Error("storage write failed");
        }
        return put(entries);
      };
      return register(key, entry);
    };
    const outcomes = await Promise.all(
      [1, 2, 3].map(async (x) => {
        const client = ctx.device();
        return participateInSecAggRound(
          client,
          await checkinRound(client),
          () => Float64Array.of(x, -x, 2 * x),
          {
            policy: "development",
            pollMs: 10,
          },
        );
      }),
    );
    expect(failed).toBe(true);
    expect(outcomes.map((o) => o.status)).toEqual(["contributed", "contributed", "contributed"]);
    const model = await ctx.memory.models.latest("sa-shop", "activity");
    const weights = Array.from(decodeFloat64Vector(model!.weights, 3));
    for (const [i, expected] of [6, -6, 12].entries())
      expect(Math.abs((weights[i] as number) - expected)).toBeLessThanOrEqual(3 * STEP);
  });

  it("no request body carries a device's vector in the clear, in any encoding", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.open({ maxContributions: 2, secagg: { k: 2, t: 1 } });
    // Distinctive values whose fixed-point codes would show up in a plaintext body.
    const outcomes = await Promise.all(
      VECTORS.map(async (v) => {
        const client = ctx.device();
        return participateInSecAggRound(client, await checkinRound(client), () => v, {
          policy: "development",
          pollMs: 10,
        });
      }),
    );
    expect(outcomes.every((o) => o.status === "contributed")).toBe(true);
    // Every body, binary and JSON, in every encoding the client could send the vector in.
    const plaintexts = VECTORS.map((v) => ({
      values: [...v],
      codes: fixedPointCodes([...v], ENCODING.clip, ENCODING.valueBits),
      valueBits: ENCODING.valueBits,
    }));
    for (const m of [17, 18, 24, 32]) expectNoPlaintext(ctx.bodies, plaintexts, m);
    // And the masked words are not the fixed-point codes (floor or floor + 1) at any modulus.
    expectMaskedUploads(
      ctx.bodies,
      3,
      plaintexts.map((p) => p.codes.map((c) => c[0] as number)),
      { slack: 1, uploads: 2, minBits: ENCODING.valueBits + 1 },
    );
  });
});
