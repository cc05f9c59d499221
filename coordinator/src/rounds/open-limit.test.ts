/**
 * The open-rounds-per-model limit is atomic (issue 11): two opens racing at one below the limit
 * cannot both pass. Before, the service counted open rounds, then opened: both saw 3 of 4 open.
 */
import { DEFAULT_PRIVACY_POLICY } from "@fedprofile/protocol/dp";
import { OpenRoundRequest } from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";
import { createMemoryCoordinator } from "../memory/index";
import { DEFAULT_ROUND_LIMITS } from "./round-limits";

const request = OpenRoundRequest.parse({
  v: 1,
  modelId: "activity",
  dimension: 4,
  minContributions: 1,
  maxContributions: 4,
  deadlineSeconds: 600,
});

describe("open rounds per model", () => {
  it("two opens racing at one below the limit: exactly one opens, the other gets 409", async () => {
    const memory = createMemoryCoordinator();
    const limit = DEFAULT_ROUND_LIMITS.maxOpenRoundsPerModel;
    for (let i = 0; i < limit - 1; i++) await memory.rounds.open("t", request);
    const raced = await Promise.allSettled([
      memory.rounds.open("t", request),
      memory.rounds.open("t", request),
    ]);
    expect(raced.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const refused = raced.find((r) => r.status === "rejected");
    expect(refused?.reason).toMatchObject({ status: 409, code: "too_many_open_rounds" });
    expect(await memory.index.countOpen("t", "activity")).toBe(limit);
  });

  it("a round that fails to open gives its place back", async () => {
    // Production floors: the host refuses a plain-sum round, after the service took its place.
    const memory = createMemoryCoordinator({ floors: DEFAULT_PRIVACY_POLICY });
    const limit = DEFAULT_ROUND_LIMITS.maxOpenRoundsPerModel;
    for (let i = 0; i < limit + 1; i++) {
      await expect(memory.rounds.open("t", request)).rejects.not.toMatchObject({ status: 409 });
    }
    expect(await memory.index.countOpen("t", "activity")).toBe(0);
  });
});
