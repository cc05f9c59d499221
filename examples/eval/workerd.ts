/**
 * The harness against real workerd: one small configuration runs through `wrangler dev` (the
 * TrainerDO opens every round; SDK profilers in node track real customers' orders and sync), and
 * the same devices' vectors then train in-process several times with fresh DP noise. The two
 * agree when the workerd run's cost lies within the spread the noise gives the in-process runs
 * (their mean ± 3 standard deviations, widened to their range).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOperatorClient } from "@fedprofile/protocol/client";
import { createProfiler } from "@fedprofile/sdk";
import { applyLocalMigrations, seedLocalTenant, startLocalCoordinator } from "../../edge/scripts/local-dev";
import { customerEvents } from "../../sdk/cli/replay";
import { trainFederated } from "./harness";
import { costOf } from "./metrics";
import { loadCustomers, RETAIL_AS_OF } from "./population";

export interface WorkerdAgreement {
  devices: number;
  k: number;
  epsilon: number;
  rounds: number;
  workerdCost: number;
  workerdSeconds: number;
  inProcessCosts: number[];
  mean: number;
  sd: number;
  agrees: boolean;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function workerdAgreement(options: {
  data: string;
  devices: number;
  k: number;
  epsilon: number;
  rounds: number;
  repeats?: number;
  log?: (line: string) => void;
}): Promise<WorkerdAgreement> {
  const log = options.log ?? console.log;
  const customers = (await loadCustomers(options.data)).filter((c) => c.some((i) => !i.refund));
  const chosen = Array.from(
    { length: options.devices },
    (_, i) => customers[(i * 97) % customers.length] ?? [],
  );
  const persistTo = mkdtempSync(join(tmpdir(), "fedprofile-eval-workerd-"));
  const started = performance.now();
  await applyLocalMigrations(persistTo);
  const keys = await seedLocalTenant(persistTo, "eval-workerd");
  const coordinator = await startLocalCoordinator({ persistTo });
  try {
    log(
      `workerd: wrangler dev at ${coordinator.url} (pid ${coordinator.pid}); ${options.devices} SDK devices replay their orders`,
    );
    const devices = chosen.map(() =>
      createProfiler({
        endpoint: coordinator.url,
        privacyPolicy: "development",
        apiKey: keys.publishable,
        storage: "memory",
        now: () => RETAIL_AS_OF,
        currency: "GBP",
      }),
    );
    for (const [i, device] of devices.entries()) {
      for (const event of customerEvents(chosen[i] ?? [])) {
        await device.track(event.name, event.properties, { timestamp: event.t });
      }
    }
    const vectors = await Promise.all(devices.map(async (d) => (await d.getProfile()).vector));
    const operator = createOperatorClient({ endpoint: coordinator.url, apiKey: keys.secret });
    const n = options.devices;
    await operator.declareModel("segments", {
      v: 1,
      kind: "kmeans",
      spec: { k: options.k },
      dp: { targetEpsilon: options.epsilon, population: n },
      cohort: { minDevices: n, maxDevices: n, maxShardSize: n, minShardSize: 2 },
      schedule: { stageSeconds: 30, maxRounds: options.rounds, cadenceSeconds: 0, untilConverged: true },
    });
    const deadline = Date.now() + 600_000;
    for (;;) {
      const status = await operator.modelStatus("segments");
      if (status.trainer === "stopped") {
        log(`workerd: trainer stopped (${status.stoppedReason}) at version ${status.latestVersion}`);
        break;
      }
      if (Date.now() > deadline) throw new Error("workerd: training did not finish in 10 minutes");
      if (status.trainer === "in-round") {
        log(`workerd: round ${status.roundsOpened} (${status.phase}) open; devices sync`);
        await Promise.all(devices.map((d) => d.sync()));
      } else await new Promise((r) => setTimeout(r, 250));
    }
    const latest = await operator.latestModel("segments");
    const segments = latest?.params?.kind === "kmeans" ? latest.params.segments : [];
    const workerdCost = costOf(
      vectors,
      segments.map((s) => s.centroid),
    );
    const workerdSeconds = (performance.now() - started) / 1000;
    const inProcessCosts: number[] = [];
    for (let r = 0; r < (options.repeats ?? 8); r++) {
      const run = await trainFederated(vectors, {
        k: options.k,
        epsilon: options.epsilon,
        maxRounds: options.rounds,
        maxShardSize: n,
        secaggShardSize: Math.min(40, n),
        seed: 1,
      });
      inProcessCosts.push(costOf(vectors, run.centroids));
    }
    const m = mean(inProcessCosts);
    const sd = Math.sqrt(mean(inProcessCosts.map((c) => (c - m) ** 2)));
    const low = Math.min(m - 3 * sd, ...inProcessCosts);
    const high = Math.max(m + 3 * sd, ...inProcessCosts);
    const agrees = workerdCost >= low && workerdCost <= high;
    log(
      `workerd: cost ${workerdCost.toFixed(2)} vs in-process ${m.toFixed(2)} ± ${sd.toFixed(2)} over ${inProcessCosts.length} runs → ${agrees ? "agree within the noise" : "DISAGREE"}`,
    );
    return {
      devices: n,
      k: options.k,
      epsilon: options.epsilon,
      rounds: options.rounds,
      workerdCost,
      workerdSeconds,
      inProcessCosts,
      mean: m,
      sd,
      agrees,
    };
  } finally {
    await coordinator.stop();
    rmSync(persistTo, { recursive: true, force: true });
  }
}
