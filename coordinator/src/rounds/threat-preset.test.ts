/**
 * The `maliciousServer` preset at round open (issue 13, finding 4): t is chosen above half of each
 * shard's neighbours, a configuration that falls short is a 400, and devices that require an
 * honest majority refuse a shard without it before sending their keys.
 */
import { checkRoundFloors, DEVELOPMENT_PRIVACY_POLICY } from "@fedprofile/protocol/dp";
import { RoundStatus } from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";
import { generateTenantKeys } from "../api-keys";
import { createCoordinatorApp } from "../app/create-app";
import { createMemoryCoordinator } from "../memory/index";
import { chooseParameters } from "../secagg/params";

const TENANT = "preset-shop";

function setup() {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys(TENANT);
  memory.tenants.addTenant({ id: TENANT, name: TENANT, createdAt: 0 }, keys);
  const app = createCoordinatorApp({ ...memory });
  const call = async (body: unknown, method = "POST", path = "/v1/rounds") => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${keys.secret.key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as unknown };
  };
  return Object.assign(call, { memory });
}

const round = (secagg: Record<string, unknown>) => ({
  v: 1,
  modelId: "segments",
  dimension: 2,
  minContributions: 50,
  maxContributions: 100,
  deadlineSeconds: 60,
  aggregation: "secagg",
  secagg: { minShardSize: 100, encoding: { kind: "fixed-point", clip: 1, valueBits: 16 }, ...secagg },
});

describe("the maliciousServer preset at round open", () => {
  it("chooses t above half of k, where the default does not", async () => {
    const open = setup();
    const plain = chooseParameters({ n: 100 });
    expect(2 * plain.t).toBeLessThanOrEqual(plain.k);
    const opened = await open(round({ threat: "maliciousServer" }));
    expect(opened.status).toBe(201);
    const status = RoundStatus.parse(opened.json);
    expect(status.secagg?.threat).toBe("maliciousServer");
    const preset = chooseParameters({ n: 100, honestMajority: true });
    expect(2 * preset.t).toBeGreaterThan(Math.min(preset.k, 99));
    expect(status.secagg?.threshold).toBe(preset.t);
  });

  it("refuses a preset round with t ≤ k/2 or without the consistency check (400 naming the field)", async () => {
    const open = setup();
    const low = await open(round({ threat: "maliciousServer", k: 8, t: 4 }));
    expect(low.status).toBe(400);
    expect(JSON.stringify(low.json)).toContain("secagg.t");
    const unchecked = await open(round({ threat: "maliciousServer", consistencyCheck: false }));
    expect(unchecked.status).toBe(400);
    expect(JSON.stringify(unchecked.json)).toContain("secagg.consistencyCheck");
    expect((await open(round({ threat: "maliciousServer", k: 8, t: 5 }))).status).toBe(201);
  });

  it("a model declared under the preset records it in its policy entry and its rounds run under it", async () => {
    const call = setup();
    const declared = await call(
      {
        v: 1,
        kind: "kmeans",
        spec: { k: 2, init: { gridBins: 3, histogramBins: 16 } },
        dp: { targetEpsilon: 30, population: 1000 },
        cohort: {
          minDevices: 8,
          maxDevices: 10,
          maxShardSize: 10,
          minShardSize: 2,
          threat: "maliciousServer",
        },
        schedule: { stageSeconds: 2, maxRounds: 1, cadenceSeconds: 0, untilConverged: false },
      },
      "PUT",
      "/v1/models/segments",
    );
    expect(declared.status).toBe(200);
    const { rows } = await call.memory.ledger.rows(TENANT, { model: "segments", cursor: null, limit: 10 });
    expect(JSON.stringify(rows)).toContain('"threatModel":"maliciousServer"');
    // The trainer opens its first round by alarm: under the preset.
    await call.memory.fireDueAlarms();
    const open = await call.memory.rounds.findOpen(TENANT, "segments");
    expect(open?.secagg?.threat).toBe("maliciousServer");
  });

  it("a policy that requires an honest majority refuses a shard with t = 3 of 8 neighbours", () => {
    const policy = { ...DEVELOPMENT_PRIVACY_POLICY, requireHonestMajority: true };
    const facts = {
      aggregation: "secagg" as const,
      cohort: 9,
      threshold: 3,
      consistencyCheck: true,
      admission: true,
    };
    expect(checkRoundFloors(policy, { ...facts, honestMajority: false }).map((v) => v.floor)).toEqual([
      "requireHonestMajority",
    ]);
    expect(checkRoundFloors(policy, { ...facts, honestMajority: true })).toEqual([]);
    // Signed advertisements need admission tokens to bind the identity keys to.
    const unbound = checkRoundFloors(policy, { ...facts, honestMajority: true, admission: false });
    expect(unbound.map((v) => v.reason)).toEqual([expect.stringMatching(/no admission tokens/)]);
  });
});
