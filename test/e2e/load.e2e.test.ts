/**
 * The load suite's CI configuration (issue 11): 40 simulated devices in 2 node processes
 * through one DP SecAgg+ round (two shards) against `wrangler dev` on loopback. The full run
 * (1,000 devices, `npm run bench:load`) writes bench/results/load.json.
 */
import { describe, expect, it } from "vitest";
import { runLoadSuite } from "../load/load-suite";

describe("load: simulated devices in several processes through a DP round (CI configuration)", () => {
  it("40 devices, 2 processes: the round publishes, every request is timed", {
    timeout: 240_000,
  }, async () => {
    const report = await runLoadSuite({
      devices: 40,
      processes: 2,
      rounds: 1,
      shardSize: 20,
      dimension: 8,
      maxSeconds: 180,
    });
    expect(report.roundsPublished).toBe(1);
    expect(report.rounds[0]?.contributions).toBe(40);
    expect(report.outcomes).toEqual({ contributed: 40 });
    expect(report.routes["POST /v1/rounds/:round/join"]?.count).toBe(40);
    expect(report.coordinatorRssMiB.peak).toBeGreaterThan(0);
    console.log(JSON.stringify({ ...report, rounds: undefined }, null, 1));
  });
});
