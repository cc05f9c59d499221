import * as wire from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";
import { createCoordinatorApp } from "../app/index";
import { createMemoryCoordinator } from "../memory/index";
import { toClassic } from "./classic";

const open = {
  v: 1,
  modelId: "activity",
  dimension: 4,
  minContributions: 2,
  maxContributions: 3,
  deadlineSeconds: 60,
  aggregation: "secagg",
  secagg: { minShardSize: 2, encoding: { kind: "fixed-point", clip: 1, valueBits: 16 } },
};

const issues = (r: {
  success: boolean;
  error?: { issues: Array<{ path: PropertyKey[]; message: string }> };
}) => r.error?.issues.map((i) => [i.path.join("."), i.message]);

describe("toClassic: the protocol's zod/mini schemas as classic zod", () => {
  it("parses exactly like the zod/mini schema: defaults, checks, refinements, strictness", () => {
    const classic = toClassic(wire.OpenRoundRequest);
    expect(classic.parse(open)).toEqual(wire.OpenRoundRequest.parse(open));
    for (const bad of [
      { ...open, dimension: 0 },
      { ...open, maxContributions: 1 },
      { ...open, extra: true },
      { ...open, modelId: "Bad Model" },
      { ...open, secagg: undefined },
    ]) {
      const mini = wire.OpenRoundRequest.safeParse(bad);
      const viaClassic = classic.safeParse(bad);
      expect(mini.success).toBe(false);
      expect(issues(viaClassic)).toEqual(issues(mini));
    }
  });

  it("keeps the discriminated unions of the SecAgg messages", () => {
    const classic = toClassic(wire.SecAggClientMessage);
    const message = {
      v: 1,
      roundId: `r_${"A".repeat(22)}`,
      slot: 0,
      stage: "advertise-keys",
      cPk: "AAAA",
      sPk: "AAAA",
    };
    expect(classic.parse(message)).toEqual(message);
    expect(classic.safeParse({ ...message, stage: "nope" }).success).toBe(false);
  });

  it("documents the protocol's checks and descriptions in /openapi.json", async () => {
    const app = createCoordinatorApp(createMemoryCoordinator());
    const doc = JSON.stringify(await (await app.request("/openapi.json")).json());
    expect(doc).toContain("Stable machine-readable code");
    expect(doc).toContain("^r_[A-Za-z0-9_-]{22}$");
    expect(doc).toContain("values are clipped to [-clip, clip]");
  });
});
