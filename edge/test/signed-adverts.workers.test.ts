/**
 * Signed key advertisements (`maliciousServer` preset with admission, issue 13) in real workerd:
 * the Worker, the root and shard Durable Objects and D1. Four SDK devices fetch tokens bound to
 * their round identity keys from a storefront issuer, sign their advertisements, and check their
 * neighbours' (the shards are opened with `signedKeys`, so an unsigned one would be refused).
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import {
  createIssuerHandler,
  createTokenIssuer,
  generateIssuerKeys,
  ISSUER_DIRECTORY_PATH,
} from "@fedprofile/coordinator/admission";
import { decodeFloat64Vector } from "@fedprofile/coordinator/wire";
import { createCoordinatorClient, participateInSecAggRound } from "@fedprofile/sdk/sync";
import { describe, expect, it } from "vitest";
import { BASE, call, seedTenant } from "./helpers";

const ENCODING = { kind: "fixed-point" as const, clip: 64, valueBits: 16 };
const STEP = (2 * ENCODING.clip) / (2 ** ENCODING.valueBits - 1);

const workerFetch: typeof fetch = (input, init) =>
  exports.default.fetch(new Request(input instanceof Request ? input : String(input), init));

describe("signed key advertisements through the Worker and Durable Objects (workerd)", () => {
  it("a maliciousServer round with admission: every device signs and checks, the sum is published", async () => {
    const keys = await seedTenant("signed-edge");
    const issuer = await createTokenIssuer({ name: "signed-edge.example", keys: await generateIssuerKeys() });
    expect((await call("PUT", "/v1/admission/issuer", keys.secret, issuer.registration())).status).toBe(200);
    let customer = 0;
    const handle = createIssuerHandler(issuer, () => ({ customerId: `c${customer++}` }));
    const admission = {
      directoryUrl: `https://signed-edge.example${ISSUER_DIRECTORY_PATH}`,
      fetch: (async (input, init) =>
        (await handle(new Request(input, init))) ?? new Response("", { status: 404 })) as typeof fetch,
    };
    const opened = await call("POST", "/v1/rounds", keys.secret, {
      v: 1,
      modelId: "activity",
      dimension: 2,
      minContributions: 4,
      maxContributions: 4,
      deadlineSeconds: 600,
      aggregation: "secagg",
      secagg: {
        encoding: ENCODING,
        minShardSize: 4,
        stageSeconds: 60,
        k: 4,
        t: 2,
        threat: "maliciousServer",
      },
    });
    expect(opened.status, await opened.clone().text()).toBe(201);
    const { roundId } = (await opened.json()) as { roundId: string };
    const outcomes = await Promise.all(
      [1, 2, 3, 4].map(async (i) => {
        const client = createCoordinatorClient({
          endpoint: BASE,
          apiKey: keys.publishable,
          fetch: workerFetch,
          retry: { windowMs: 2_000, baseDelayMs: 20 },
        });
        const { round } = await client.checkin("activity");
        expect(round?.secagg?.threat).toBe("maliciousServer");
        return participateInSecAggRound(client, round!, () => Float64Array.of(1, i), {
          policy: "development",
          admission,
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
    const latest = await call("GET", "/v1/models/activity/latest", keys.publishable);
    const model = (await latest.json()) as { weights: string; contributions: number };
    expect(model.contributions).toBe(4);
    const [count, sum] = Array.from(decodeFloat64Vector(model.weights, 2));
    expect(Math.abs((count as number) - 4)).toBeLessThanOrEqual(4 * STEP);
    expect(Math.abs((sum as number) - 10)).toBeLessThanOrEqual(4 * STEP);
    // The shard ran with signed advertisements required (an unsigned one is refused).
    const shard = env.SHARD.get(env.SHARD.idFromName(`signed-edge/${roundId}/0`));
    await runInDurableObject(shard, async (_instance, state) => {
      expect(await state.storage.get("core")).toMatchObject({ config: { signedKeys: true } });
    });
  }, 120_000);
});
