/**
 * The training runtime in workerd: a model declared through the Worker gets a TrainerDO, whose
 * alarm opens each round by itself; devices answer with the SDK's k-means half through real
 * SecAgg+ with distributed DP; the root hands the decoded aggregate to the trainer over RPC, and
 * the trainer publishes versions to D1 (parsed back, params included) and records its history.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import {
  type ModelDeclarationInput,
  ModelStatus,
  ModelVersion,
  TasksResponse,
  TrainingRoundPage,
} from "@fedprofile/coordinator/wire";
import { contributeKMeans, createCoordinatorClient, participateInSecAggRound } from "@fedprofile/sdk/sync";
import { describe, expect, it } from "vitest";
import { BASE, call, seedTenant } from "./helpers";

const workerFetch: typeof fetch = (input, init) =>
  exports.default.fetch(new Request(input instanceof Request ? input : String(input), init));

const DECLARATION: ModelDeclarationInput = {
  v: 1,
  kind: "kmeans",
  spec: { k: 2, init: { gridBins: 2, histogramBins: 8 } },
  // A wiring test, not an accuracy one: with three devices a group, any epsilon a shop would
  // declare gives noise as wide as the gap between the groups, and the 6-device k-means then
  // merges them in some runs (seen at 40: 2 of 5). The eval measures accuracy at real sizes.
  dp: { targetEpsilon: 1000, population: 1000 },
  cohort: { minDevices: 6, maxDevices: 6, maxShardSize: 6, minShardSize: 2 },
  schedule: { stageSeconds: 30, maxRounds: 1, cadenceSeconds: 0, untilConverged: false },
};

/** Two groups of profiles: recent big spenders and long-lapsed one-timers. */
const profileOf = (i: number) =>
  i % 2 === 0 ? [-1, 1.2, 1.5, 0.8, 0.5, 0.3, 0, 0, 0] : [1.5, -0.8, -0.9, -0.5, -0.3, -0.4, 0, 0, 0];

async function trainerAlarm(tenantId: string) {
  await runDurableObjectAlarm(env.TRAINER.get(env.TRAINER.idFromName(`${tenantId}/segments`)));
}

/** The model's status once `done` holds: the shards report to the root, and the root to the trainer, after the devices see "done". */
async function statusWhen(key: string, done: (status: ModelStatus) => boolean): Promise<ModelStatus> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const status = ModelStatus.parse(await (await call("GET", "/v1/models/segments", key)).json());
    if (done(status)) return status;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("the trainer did not reach the expected state");
}

async function runOpenRound(publishable: string) {
  const tasks = TasksResponse.parse(await (await call("GET", "/v1/tasks", publishable)).json());
  const round = tasks.tasks[0]?.round;
  if (!round?.task) throw new Error("no trainer round is open");
  const task = round.task;
  if (task.kind !== "kmeans") throw new Error("expected a k-means round");
  const params =
    task.baseVersion === null
      ? null
      : (ModelVersion.parse(
          await (await call("GET", `/v1/models/segments/versions/${task.baseVersion}`, publishable)).json(),
        ).params ?? null);
  const base = params?.kind === "kmeans" ? params : null;
  const outcomes = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      participateInSecAggRound(
        createCoordinatorClient({ endpoint: BASE, apiKey: publishable, fetch: workerFetch }),
        round,
        () => contributeKMeans(task.spec, task.phase, base, profileOf(i)),
        { policy: "development", pollMs: 10 },
      ),
    ),
  );
  return { task, outcomes };
}

describe("training runtime on Durable Objects and D1", () => {
  it("the trainer opens rounds by alarm and publishes each decoded aggregate as a version", async () => {
    const keys = await seedTenant("train-shop");
    const declared = await call("PUT", "/v1/models/segments", keys.secret, DECLARATION);
    expect(declared.status, await declared.clone().text()).toBe(200);

    // The alarm may already be running on its own: wait for the round it opens.
    await trainerAlarm("train-shop");
    await statusWhen(keys.secret, (s) => s.trainer === "in-round");
    const init = await runOpenRound(keys.publishable);
    expect(init.task.phase).toBe("init");
    expect(init.outcomes.map((o) => o.status)).toEqual(Array(6).fill("contributed"));

    const afterInit = await statusWhen(keys.secret, (s) => s.latestVersion === 1);
    expect(afterInit).toMatchObject({ latestVersion: 1, phase: "lloyd" });

    // Its alarm (due at once, cadence 0) opens the first Lloyd round; run it now if it has not fired.
    await trainerAlarm("train-shop");
    await statusWhen(keys.secret, (s) => s.trainer === "in-round");
    const lloyd = await runOpenRound(keys.publishable);
    expect(lloyd.task).toMatchObject({ phase: "lloyd", baseVersion: 1 });
    expect(lloyd.outcomes.map((o) => o.status)).toEqual(Array(6).fill("contributed"));

    await statusWhen(keys.auditor, (s) => s.latestVersion === 2);
    await trainerAlarm("train-shop");
    const stopped = await statusWhen(keys.auditor, (s) => s.trainer === "stopped");
    expect(stopped).toMatchObject({ latestVersion: 2, iteration: 1 });
    expect(stopped.stoppedReason).toMatch(/^max-rounds/);

    const latest = ModelVersion.parse(
      await (await call("GET", "/v1/models/segments/latest", keys.publishable)).json(),
    );
    const segments = latest.params?.kind === "kmeans" ? latest.params.segments : [];
    expect(segments).toHaveLength(2);
    const byRecency = [...segments].sort((a, b) => (a.centroid[0] ?? 0) - (b.centroid[0] ?? 0));
    expect(byRecency[0]?.centroid[0]).toBeLessThan(0);
    expect(byRecency[1]?.centroid[0]).toBeGreaterThan(0);
    // Each group is one segment: the noisy counts put three devices (give or take one) in each.
    for (const segment of byRecency) expect(Math.abs(segment.size - 3)).toBeLessThanOrEqual(1);

    const history = TrainingRoundPage.parse(
      await (await call("GET", "/v1/models/segments/rounds", keys.secret)).json(),
    );
    expect(history.rounds.map((r) => [r.phase, r.stage, r.contributors])).toEqual([
      ["lloyd", "closed", 6],
      ["init", "closed", 6],
    ]);
    const ledger = (await (await call("GET", "/v1/audit/ledger?model=segments", keys.auditor)).json()) as {
      entries: unknown[];
    };
    // The declaration's policy, then each round and the version it produced.
    expect(ledger.entries).toHaveLength(5);
  });

  it("refuses a declaration whose rounds could never run, naming the field", async () => {
    const keys = await seedTenant("train-bad");
    const response = await call("PUT", "/v1/models/segments", keys.secret, {
      ...DECLARATION,
      cohort: { minDevices: 3, maxDevices: 6, maxShardSize: 6, minShardSize: 5 },
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/cohort.minShardSize/);
    expect((await call("GET", "/v1/models/segments", keys.secret)).status).toBe(404);
  });
});
