import { describe, expect, it } from "vitest";
import { pickShard } from "./pick-shard";

describe("pickShard", () => {
  it("is a pure function of the key: the same nonce always lands on the same shard", () => {
    const key = new TextEncoder().encode("nonce-1");
    expect(pickShard(key, 100)).toBe(pickShard(Uint8Array.from(key), 100));
    expect(pickShard(key, 1)).toBe(0);
  });

  it("spreads random keys evenly over the shards (chi-square, 10,000 keys over 20 shards)", () => {
    const counts = new Array(20).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const key = new Uint8Array(4);
      new DataView(key.buffer).setUint32(0, i);
      counts[pickShard(key, 20)]++;
    }
    const expected = 10_000 / 20;
    const chi = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    // 19 degrees of freedom: the 99.9th percentile is 43.8.
    expect(chi).toBeLessThan(43.8);
  });

  it("refuses a shard count that is not a positive integer", () => {
    expect(() => pickShard(new Uint8Array(1), 0)).toThrow(RangeError);
  });
});
