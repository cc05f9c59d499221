/**
 * The evaluation harness's training loop: the real device half (`contributeKMeans`), each device's
 * real DP encoding (`prepareDpContribution`), the real planner and ledger (`createRoundPrivacy`,
 * with the same request the trainer makes, `nextRoundRequest`), the real decoder and the real
 * server update (`applyKMeans`), in-process. Rounds are sharded as the root shards them
 * (`planRoundShards`). One sampled shard per round runs the whole SecAgg+ protocol for real (the
 * driver of the property tests); the other shards add their encoded vectors modulo 2^m, which is
 * exactly what SecAgg reveals of them (SecAgg is exact: the property tests show the sum equals the
 * plain sum under any dropout set below the threshold).
 */
import { randomBytes } from "node:crypto";
import {
  createRoundPrivacy,
  MemoryAuditLedgerStore,
  MemoryPrivacyBudgetStore,
  planRoundShards,
} from "@fedprofile/coordinator";
import { addModular, decodeAggregate, paddedDim } from "@fedprofile/coordinator/dp";
import { signerFromSeed } from "@fedprofile/coordinator/ledger";
import {
  applyKMeans,
  initialKMeansState,
  type KMeansState,
  kmeansTask,
  nextRoundRequest,
} from "@fedprofile/coordinator/models";
import { chooseParameters } from "@fedprofile/coordinator/secagg";
import { KMeansDeclaration, type KMeansModelParams } from "@fedprofile/coordinator/wire";
import { prepareDpContribution } from "../../sdk/src/dp/client";
import { contributeKMeans } from "../../sdk/src/models/kmeans";
import { runSimulatedRound } from "../../test/secagg/driver";

export interface TrainingConfig {
  k: number;
  /** Epsilon of the whole training at delta = 1/N^1.1; null trains without DP (exact sums). */
  epsilon: number | null;
  /** Lloyd iterations after the initialisation, at the most. */
  maxRounds: number;
  maxShardSize: number;
  /** Devices of the shard that runs SecAgg+ for real each round (a sample of one shard). */
  secaggShardSize: number;
  seed: number;
}

export interface RoundReport {
  phase: "init" | "lloyd";
  dimension: number;
  shards: number;
  /** How the sampled shard was summed: `secagg+` (whole protocol), or `modular-sum` (no DP round). */
  sampledShard: {
    devices: number;
    protocol: "secagg+" | "none";
    ms: number;
    matchesModularSum: boolean;
  } | null;
  /** Median per-device ms of contribute + DP encode. */
  deviceMs: number;
  /** Server ms: decode + server update. */
  serverMs: number;
  epsilonAfter: number;
  shift: number | null;
}

export interface TrainingRun {
  params: KMeansModelParams;
  centroids: number[][];
  rounds: RoundReport[];
  epsilonSpent: number;
  delta: number | null;
  converged: boolean;
  noiseStddev: number;
}

const TENANT = "eval";
const MODEL = "segments";
/** The lower median (0 for no values). */
export const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] ?? 0;

/** Trains federated k-means on `vectors` (one per device) and reports every round. */
export async function trainFederated(
  vectors: readonly number[][],
  config: TrainingConfig,
  onRound?: (report: RoundReport, index: number) => void,
): Promise<TrainingRun> {
  const n = vectors.length;
  const declaration = KMeansDeclaration.parse({
    v: 1,
    kind: "kmeans",
    spec: { k: config.k },
    dp: { targetEpsilon: config.epsilon ?? 1, population: n },
    cohort: {
      minDevices: n,
      maxDevices: n,
      maxShardSize: config.maxShardSize,
      minShardSize: Math.min(100, n),
    },
    schedule: { maxRounds: config.maxRounds, untilConverged: true },
  });
  const spec = declaration.spec;
  const budgets = new MemoryPrivacyBudgetStore();
  const ledger = new MemoryAuditLedgerStore();
  const privacy = createRoundPrivacy({ budgets, ledger, signer: signerFromSeed(randomBytes(32)) });
  if (config.epsilon !== null) {
    await privacy.setBudget(TENANT, MODEL, { v: 1, epsilonCap: config.epsilon * 1.000001, population: n });
  }
  let model: KMeansState = initialKMeansState();
  let params: KMeansModelParams | null = null;
  const rounds: RoundReport[] = [];
  let converged = false;
  let noiseStddev = 0;
  // The run's rounds: each is calibrated for what the released ones left (`priorRounds`).
  const runRounds: string[] = [];

  for (let index = 0; index <= config.maxRounds && !converged; index++) {
    const { request } = nextRoundRequest({
      modelId: MODEL,
      declaration,
      model,
      latestVersion: index,
      runRounds,
    });
    const task = kmeansTask(spec, model);
    const { sizes, graphs, floors } = planRoundShards(request, randomBytes(32));
    const base = params;
    const contributions = vectors.map((z) => contributeKMeans(spec, task.phase, base, z));
    let aggregate: Float64Array;
    let sampled: RoundReport["sampledShard"] = null;
    let deviceMs = 0;
    let serverMs = 0;
    if (config.epsilon === null || !request.dp) {
      aggregate = new Float64Array(task.dimension);
      for (const v of contributions)
        for (let i = 0; i < v.length; i++) aggregate[i] = (aggregate[i] as number) + (v[i] as number);
      const deviceTimes = vectors.slice(0, 200).map((z) => {
        const t0 = performance.now();
        contributeKMeans(spec, task.phase, base, z);
        return performance.now() - t0;
      });
      deviceMs = median(deviceTimes);
    } else {
      const roundId = `r_${randomBytes(16).toString("base64url").slice(0, 22)}`;
      runRounds.push(roundId);
      const plan = await privacy.plan(TENANT, MODEL, request.dp, {
        roundId,
        dimension: task.dimension,
        threshold: Math.min(...floors),
        expectedClients: n,
        rotationSeed: randomBytes(32).toString("hex"),
        expiresAt: Date.now() + 3_600_000,
      });
      const deviceTimes: number[] = [];
      const encoded = contributions.map((v, i) => {
        const t0 = performance.now();
        const values = prepareDpContribution(plan.config, v).values;
        // The device's own contribute() is part of its round cost too; time a sample of both.
        if (i < 200) {
          contributeKMeans(spec, task.phase, base, vectors[i] as number[]);
          deviceTimes.push(performance.now() - t0);
        }
        return values;
      });
      deviceMs = median(deviceTimes);
      // Devices join round-robin over the shards, as the root admits them.
      const shards = sizes.map(() => [] as Uint32Array[]);
      encoded.forEach((values, i) => {
        shards[i % sizes.length]?.push(values);
      });
      const total = new Uint32Array(paddedDim(plan.config));
      const m = plan.config.modulusBits;
      for (const [s, inputs] of shards.entries()) {
        const sum = new Uint32Array(total.length);
        for (const values of inputs) addModular(sum, values);
        if (s === 0) {
          // The sampled shard: its first `secaggShardSize` devices run SecAgg+ end to end.
          const sample = inputs.slice(0, Math.min(config.secaggShardSize, inputs.length));
          // (k, t) for the sample's size, as the root would choose them for a shard that size.
          const { k, t } =
            sample.length === inputs.length
              ? (graphs[0] as { k: number; t: number })
              : chooseParameters({ n: sample.length });
          const t0 = performance.now();
          const run = await runSimulatedRound({
            cohortSize: sample.length,
            k,
            t,
            dimension: total.length,
            valueBits: m,
            modulusBits: m,
            modularInputs: true,
            consistencyCheck: true,
            inputs: sample,
          });
          const plain = new Uint32Array(total.length);
          for (const values of sample) addModular(plain, values);
          const mask = 2 ** m - 1;
          const matches = Boolean(run.sum?.every((v, i) => (v & mask) === ((plain[i] as number) & mask)));
          sampled = {
            devices: sample.length,
            protocol: "secagg+",
            ms: performance.now() - t0,
            matchesModularSum: matches,
          };
          if (!matches) throw new Error("SecAgg+ on the sampled shard did not reproduce the modular sum");
        }
        addModular(total, sum);
      }
      const t0 = performance.now();
      const decoded = decodeAggregate(plan.config, total, { survivors: n });
      await privacy.record(TENANT, {
        roundId,
        modelId: MODEL,
        plan,
        cohortSize: n,
        survivors: n,
        fewestInOneSum: Math.min(...sizes),
        threshold: plan.plannedNoiseShares,
      });
      await privacy.release(TENANT, MODEL, roundId);
      aggregate = decoded.sum;
      noiseStddev = Math.sqrt(decoded.noiseVariance);
      serverMs = performance.now() - t0;
    }
    const t1 = performance.now();
    const update = applyKMeans(spec, model, aggregate, {
      noiseStddev: config.epsilon === null ? 0 : noiseStddev,
      contributors: n,
      seed: config.seed + index,
    });
    serverMs += performance.now() - t1;
    model = update.state;
    params = update.params;
    converged = update.converged;
    const status = config.epsilon === null ? null : await privacy.budgetStatus(TENANT, MODEL);
    const report: RoundReport = {
      phase: task.phase,
      dimension: task.dimension,
      shards: sizes.length,
      sampledShard: sampled,
      deviceMs,
      serverMs,
      epsilonAfter: status?.epsilonSpent ?? 0,
      shift: update.params.shift,
    };
    rounds.push(report);
    onRound?.(report, index);
  }
  const status = config.epsilon === null ? null : await privacy.budgetStatus(TENANT, MODEL);
  if (!params) throw new Error("no round ran");
  return {
    params,
    centroids: model.centroids ?? [],
    rounds,
    epsilonSpent: status?.epsilonSpent ?? 0,
    delta: status?.delta ?? null,
    converged,
    noiseStddev,
  };
}
