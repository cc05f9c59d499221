/**
 * Stage push against `wrangler dev` (issue 16 "Push, not polling"): simulated devices in two
 * node processes run a full DP SecAgg+ round holding WebSockets to their shards, one device in
 * four has its socket refused (a wrong credential: 403) and completes by polling; then the same
 * configuration runs with polling only. Both rounds publish, and the requests per device per
 * round of each mode are printed side by side.
 */
import { describe, expect, it } from "vitest";
import { type LoadOptions, runLoadSuite } from "../load/load-suite";

const CONFIG: LoadOptions = {
  devices: 12,
  processes: 2,
  rounds: 1,
  shardSize: 12,
  dimension: 8,
  maxSeconds: 150,
};

describe("stage push through wrangler dev: sockets, a refused socket, and polling", () => {
  it("push and polling both publish; push costs fewer requests per device per round", {
    timeout: 400_000,
  }, async () => {
    const push = await runLoadSuite({ ...CONFIG, transport: "push", refuseEvery: 4 });
    console.log(JSON.stringify({ push: { ...push, rounds: undefined } }));
    expect(push.roundsPublished, JSON.stringify(push.errorSamples)).toBe(1);
    expect(push.outcomes).toEqual({ contributed: 12 });
    // Devices 0, 4, 8 of each process of 6 (0 and 4): 4 refused, 8 on sockets.
    expect(push.sockets).toMatchObject({ tried: 12, opened: 8, failed: 4 });
    expect(push.sockets.pushes).toBeGreaterThanOrEqual(8 * 6);
    const poll = await runLoadSuite({ ...CONFIG, transport: "poll" });
    expect(poll.roundsPublished, JSON.stringify(poll.errorSamples)).toBe(1);
    expect(poll.outcomes).toEqual({ contributed: 12 });
    expect(poll.sockets.tried).toBe(0);
    expect(push.requestsPerDevicePerRound).toBeLessThan(poll.requestsPerDevicePerRound);
    console.log(
      JSON.stringify({
        push: {
          requestsPerDevicePerRound: push.requestsPerDevicePerRound,
          viewPollsPerDevicePerRound: push.viewPollsPerDevicePerRound,
          sockets: push.sockets,
          seconds: push.seconds,
        },
        poll: {
          requestsPerDevicePerRound: poll.requestsPerDevicePerRound,
          viewPollsPerDevicePerRound: poll.viewPollsPerDevicePerRound,
          seconds: poll.seconds,
        },
      }),
    );
  });
});
