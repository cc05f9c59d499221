import { bytesToBase64, wordsToBytes } from "@fedprofile/protocol/bytes";
import { describe, expect, it } from "vitest";
import { planShards, sumShardResults } from "./shards";

const seed = new Uint8Array(32).fill(4);

describe("hierarchical aggregation", () => {
  it("splits into near-equal shards within the bounds, covering everyone once", () => {
    const cohort = Array.from({ length: 2501 }, (_, i) => `p${i}`);
    const shards = planShards(cohort, { maxShardSize: 1000, minShardSize: 500, seed });
    expect(shards.map((s) => s.length)).toEqual([834, 834, 833]);
    expect(new Set(shards.flat()).size).toBe(2501);
    expect(planShards(cohort, { maxShardSize: 1000, minShardSize: 500, seed })).toEqual(shards);
  });

  it("refuses cohorts below the minimum shard size and impossible bounds", () => {
    expect(() =>
      planShards(
        Array.from({ length: 50 }, (_, i) => i),
        { maxShardSize: 100, minShardSize: 60, seed },
      ),
    ).toThrow(RangeError);
    expect(() =>
      planShards(
        Array.from({ length: 101 }, (_, i) => i),
        { maxShardSize: 100, minShardSize: 100, seed },
      ),
    ).toThrow(RangeError);
  });

  it("adds shard sums exactly, past 2^32, skipping aborted shards unless all are required", () => {
    const big = {
      sum: bytesToBase64(wordsToBytes(new Uint32Array([0xffffffff, 1]))),
      contributors: [0, 1, 2],
    };
    const total = sumShardResults([big, big, null], 2);
    expect(Array.from(total.sum)).toEqual([2 * 0xffffffff, 2]);
    expect(total).toMatchObject({ contributors: 6, shards: 2 });
    expect(() => sumShardResults([big, null], 2, { requireAll: true })).toThrow(RangeError);
  });
});
