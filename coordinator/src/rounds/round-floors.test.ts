/**
 * The coordinator's privacy floors at round open (issue 13, finding 2, server side): a round below
 * the production floors is a 400 naming the floor, and no budget is reserved for it.
 */

import { checkRoundFloors, DEFAULT_PRIVACY_POLICY } from "@fedprofile/protocol/dp";
import { type OpenRoundInput, RoundStatus } from "@fedprofile/protocol/wire";
import { beforeAll, describe, expect, it } from "vitest";
import { createTokenIssuer, generateIssuerKeys } from "../admission/issuer";
import { generateTenantKeys } from "../api-keys";
import { createCoordinatorApp } from "../app/create-app";
import { signerFromSeedHex } from "../ledger/chain";
import { createMemoryCoordinator } from "../memory/index";

const TENANT = "floor-shop";

/** The shop's Privacy Pass issuer registration (production floors require admission by token). */
let registration: { v: 1; issuerName: string; publicKey: string };
beforeAll(async () => {
  const issuer = await createTokenIssuer({ name: "floor-shop.example", keys: await generateIssuerKeys() });
  registration = issuer.registration();
}, 60_000);

function setup() {
  let now = Date.UTC(2026, 11, 1);
  const memory = createMemoryCoordinator({
    signer: signerFromSeedHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    floors: DEFAULT_PRIVACY_POLICY,
    clock: () => now,
  });
  const keys = generateTenantKeys(TENANT);
  memory.tenants.addTenant({ id: TENANT, name: "Floor shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp({ ...memory, privacy: memory.privacy });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${keys.secret.key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return {
      status: response.status,
      json: (await response.json()) as { error?: { code: string; message: string } },
    };
  };
  const advance = (ms: number) => {
    now += ms;
  };
  return { call, advance };
}

const base = {
  v: 1,
  modelId: "segments",
  dimension: 4,
  minContributions: 100,
  maxContributions: 200,
  deadlineSeconds: 60,
  aggregation: "secagg",
} as const;

describe("privacy floors at round open", () => {
  it("ε = 1000 over a shard of 2 is refused with a 4xx naming the floors", async () => {
    const { call } = setup();
    expect(
      (await call("PUT", "/v1/privacy/budgets/segments", { v: 1, epsilonCap: 1000, delta: 1e-6 })).status,
    ).toBe(200);
    // Without an admission issuer, even a sound round is refused: anyone could fill it.
    const open = await call("POST", "/v1/rounds", {
      ...base,
      secagg: { minShardSize: 100 },
      dp: { clipNorm: 1, targetEpsilon: 1, rounds: 10 },
    } satisfies OpenRoundInput);
    expect(open.status).toBe(400);
    expect(open.json.error?.message).toContain("requireAdmission");
    expect((await call("PUT", "/v1/admission/issuer", registration)).status).toBe(200);
    const bad = await call("POST", "/v1/rounds", {
      ...base,
      minContributions: 2,
      maxContributions: 2,
      secagg: { minShardSize: 2, k: 2, t: 1, consistencyCheck: false },
      dp: { clipNorm: 1, targetEpsilon: 1000, rounds: 1, colluders: 0 },
    } satisfies OpenRoundInput);
    expect(bad.status).toBe(400);
    expect(bad.json.error?.code).toBe("below_privacy_floor");
    for (const floor of [
      "maxEpsilonPerRound",
      "minCohort",
      "minThreshold",
      "minNoiseShares",
      "requireConsistencyCheck",
    ]) {
      expect(bad.json.error?.message).toContain(floor);
    }
    // Nothing was reserved: the budget still shows no spending and no open round holds it (the
    // one entry is the budget's own policy entry).
    const budget = await call("GET", "/v1/privacy/budgets/segments");
    expect(budget.json).toMatchObject({ epsilonSpent: 0, entries: 1 });
    // A sound round still opens under the same floors.
    const good = await call("POST", "/v1/rounds", {
      ...base,
      secagg: { minShardSize: 100 },
      dp: { clipNorm: 1, targetEpsilon: 1, rounds: 10 },
    } satisfies OpenRoundInput);
    expect(good.status).toBe(201);
    // What devices see of it meets the same default floors on the device side (one source).
    const round = RoundStatus.parse(good.json);
    expect(
      checkRoundFloors(DEFAULT_PRIVACY_POLICY, {
        aggregation: round.aggregation,
        dp: round.dp,
        privacy: round.secagg?.privacy,
        cohort: round.secagg?.minShardSize,
        threshold: round.secagg?.threshold,
        consistencyCheck: round.secagg?.consistencyCheck,
        admission: round.secagg?.admission !== undefined,
      }),
    ).toEqual([]);
    expect(round.secagg?.privacy).toMatchObject({ colluders: expect.any(Number) });
    expect(round.secagg?.privacy?.colluders).toBeGreaterThan(0);
  });

  it("plain-sum and central_gaussian are refused under the production floors", async () => {
    const { call } = setup();
    await call("PUT", "/v1/privacy/budgets/segments", { v: 1, epsilonCap: 10, delta: 1e-6 });
    const plain = await call("POST", "/v1/rounds", { ...base, aggregation: "plain-sum" });
    expect(plain.status).toBe(400);
    expect(plain.json.error?.message).toContain("allowPlainSum");
    const central = await call("POST", "/v1/rounds", {
      ...base,
      secagg: { minShardSize: 100 },
      dp: { mechanism: "central_gaussian", clipNorm: 1, noiseMultiplier: 1 },
    } satisfies OpenRoundInput);
    expect(central.status).toBe(400);
    expect(central.json.error?.message).toContain("requireDistributedDp");
    const noDp = await call("POST", "/v1/rounds", {
      ...base,
      secagg: { minShardSize: 100, encoding: { kind: "fixed-point", clip: 1, valueBits: 16 } },
    } satisfies OpenRoundInput);
    expect(noDp.status).toBe(400);
    expect(noDp.json.error?.message).toContain("requireDistributedDp");
  });

  it("a key holder cannot drain the budget by opening rounds: ε per model per day is capped", async () => {
    const { call, advance } = setup();
    await call("PUT", "/v1/privacy/budgets/segments", { v: 1, epsilonCap: 10, delta: 1e-6 });
    await call("PUT", "/v1/admission/issuer", registration);
    const open = () =>
      call("POST", "/v1/rounds", {
        ...base,
        secagg: { minShardSize: 100 },
        dp: { clipNorm: 1, targetEpsilon: 2, rounds: 1 },
      } satisfies OpenRoundInput);
    // Open rounds count at their planned cost (their reservations): within a day the cap of 3
    // is reached after at most two rounds of ε 2, with no round having run at all.
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof open>> | null = null;
    for (let i = 0; i < 3 && !refused; i++) {
      const r = await open();
      statuses.push(r.status);
      if (r.status !== 201) refused = r;
    }
    expect(statuses[0]).toBe(201);
    expect(refused?.status).toBe(409);
    expect(refused?.json.error?.code).toBe("daily_budget_exceeded");
    // A day later the first round's reservation has lapsed (it never ran): the cap has room again.
    advance(25 * 3600 * 1000);
    expect((await open()).status).toBe(201);
  });
});
