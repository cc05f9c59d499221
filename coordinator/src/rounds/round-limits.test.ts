import { OpenRoundRequest } from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";
import { FedprofileError } from "../errors";
import { assertOpenRoundsBelowLimit, assertRoundFits, DEFAULT_ROUND_LIMITS } from "./round-limits";

const dpRound = (dimension: number, maxContributions: number, maxShardSize: number) =>
  OpenRoundRequest.parse({
    v: 1,
    modelId: "segments",
    dimension,
    minContributions: 1,
    maxContributions,
    deadlineSeconds: 60,
    aggregation: "secagg",
    secagg: { minShardSize: 2, maxShardSize },
    dp: { clipNorm: 1, targetEpsilon: 1, rounds: 1 },
  });

function refusal(run: () => void): FedprofileError {
  try {
    run();
  } catch (error) {
    if (error instanceof FedprofileError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("round limits", () => {
  it("a DP round of d = 65,535 fits at 100 shards (sums chunked beside the root's rows); a shard sum past a value does not", () => {
    expect(() => assertRoundFits(dpRound(65_535, 1000, 1000))).not.toThrow();
    // Before issue 16 the root kept every shard's sum in its one value: 5 shards were refused.
    expect(() => assertRoundFits(dpRound(65_535, 5000, 1000))).not.toThrow();
    expect(() => assertRoundFits(dpRound(65_535, 100_000, 1000))).not.toThrow();
    // 2^19 values pad to 2^20 words: one shard's sum alone is 5.6 MB of base64.
    const error = refusal(() => assertRoundFits(dpRound(2 ** 19, 1000, 1000)));
    expect(error).toMatchObject({ status: 400, code: "round_state_too_large" });
    expect(error.message).toMatch(/for a shard's sum, over the limit of 1500000 bytes/);
  });

  it("a shard count past the limit names it and the maxShardSize that would fit", () => {
    const error = refusal(() => assertRoundFits(dpRound(4, 100_000, 2)));
    expect(error).toMatchObject({ status: 400, code: "too_many_shards" });
    expect(error.message).toMatch(/50000 shards, over the limit of 10000.*at least 10/);
  });

  it("10^6 devices (1,000 shards, 32 aggregators) and 10^7 (10,000 shards) open: shards open lazily", () => {
    // Before lazy open: 128 shards at most, and the wire refused maxContributions over 100,000.
    expect(() => assertRoundFits(dpRound(1024, 1_000_000, 1000))).not.toThrow();
    expect(() => assertRoundFits(dpRound(1024, 10_000_000, 1000))).not.toThrow();
    const error = refusal(() => assertRoundFits(dpRound(1024, 10_000_000, 999)));
    expect(error).toMatchObject({ status: 400, code: "too_many_shards" });
    expect(
      OpenRoundRequest.safeParse({ ...dpRound(4, 1000, 1000), maxContributions: 10_000_001 }).success,
    ).toBe(false);
  });

  it("open rounds per model: the limit-th is refused with 409", () => {
    expect(() =>
      assertOpenRoundsBelowLimit("m", DEFAULT_ROUND_LIMITS.maxOpenRoundsPerModel - 1),
    ).not.toThrow();
    const error = refusal(() => assertOpenRoundsBelowLimit("m", DEFAULT_ROUND_LIMITS.maxOpenRoundsPerModel));
    expect(error).toMatchObject({ status: 409, code: "too_many_open_rounds" });
  });
});
