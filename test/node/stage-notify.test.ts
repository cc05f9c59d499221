/**
 * The in-memory coordinator's `StageNotifier` (issue 16 "Push, not polling"): the port the
 * Worker implements with hibernatable sockets. Every stage change of a real SecAgg+ round is
 * announced once, in order, after it is committed (the view it offers is already the new
 * stage's), with the same participant check as `GET …/view`; a deadline's change is announced
 * by the alarm.
 */
import {
  createCoordinatorApp,
  createMemoryCoordinator,
  generateTenantKeys,
  type StageChange,
  sha256Hex,
} from "@fedprofile/coordinator";
import type { JoinResponse } from "@fedprofile/coordinator/wire";
import {
  type CoordinatorClient,
  createCoordinatorClient,
  participateInSecAggRound,
} from "@fedprofile/sdk/sync";
import { describe, expect, it } from "vitest";

function setup() {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys("sn-shop");
  memory.tenants.addTenant({ id: "sn-shop", name: "Notify shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp({ tenants: memory.tenants, models: memory.models, rounds: memory.rounds });
  const joins: JoinResponse[] = [];
  const device = (): CoordinatorClient => {
    const client = createCoordinatorClient({
      endpoint: "http://coordinator.test",
      apiKey: keys.publishable.key,
      fetch: async (input, init) => app.request(input instanceof Request ? input : String(input), init),
    });
    return {
      ...client,
      join: async (roundId, o) => {
        const joined = await client.join(roundId, o);
        joins.push(joined);
        return joined;
      },
    };
  };
  const open = (cohort: number, stageSeconds: number) =>
    memory.rounds.open("sn-shop", {
      v: 1,
      modelId: "activity",
      dimension: 3,
      minContributions: 2,
      maxContributions: cohort,
      deadlineSeconds: 60,
      aggregation: "secagg",
      secagg: {
        encoding: { kind: "fixed-point", clip: 64, valueBits: 16 },
        minShardSize: 2,
        maxShardSize: 1000,
        consistencyCheck: true,
        stageSeconds,
        k: 2,
        t: 2,
      },
    });
  return { memory, device, open, joins };
}

describe("stage notification (memory coordinator)", () => {
  it("announces each stage change of a round once, in order, with the new stage's views", async () => {
    const { memory, device, open, joins } = setup();
    await open(3, 30);
    const seen: Array<{ change: StageChange; views: string[] }> = [];
    memory.stages.listen(async (change) => {
      // The listener reads every participant's view as the socket notifier does.
      const views = await Promise.all(
        joins.map(async (j) => (await change.viewOf(j.participantId, sha256Hex(j.participantToken))).stage),
      );
      seen.push({ change, views });
    });
    const outcomes = await Promise.all(
      [1, 2, 3].map(async (i) => {
        const client = device();
        const { round } = await client.checkin("activity");
        return participateInSecAggRound(client, round!, () => Float64Array.of(i, 0, 1), {
          policy: "development",
          pollMs: 5,
          socket: false,
        });
      }),
    );
    expect(outcomes.map((o) => o.status)).toEqual(["contributed", "contributed", "contributed"]);
    expect(seen.map((s) => s.change.stage)).toEqual([
      "share-keys",
      "masked-input",
      "consistency-check",
      "unmask",
      "done",
    ]);
    for (const { change, views } of seen) expect(views).toEqual([change.stage, change.stage, change.stage]);
    // A wrong token is refused as `GET …/view` refuses it.
    const j = joins[0]!;
    await expect(
      seen[0]!.change.viewOf(j.participantId, sha256Hex(joins[1]!.participantToken)),
    ).rejects.toMatchObject({
      status: 403,
    });
  });

  it("a deadline's stage change is announced by the alarm", async () => {
    const { memory, open } = setup();
    const opened = await open(3, 1);
    const stages: string[] = [];
    memory.stages.listen((change) => {
      stages.push(change.stage);
    });
    await memory.rounds.join("sn-shop", opened.roundId);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await memory.fireDueAlarms();
    // One device cannot make a round: the join window's deadline aborts the shard.
    expect(stages).toEqual(["aborted"]);
  });
});
