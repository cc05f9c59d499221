/**
 * k-means tuning emulator (issue 9): the real planner, accountant, ledger, device half and server
 * update (`contributeKMeans`, `applyKMeans`, `nextRoundRequest`), with exact sums plus a Gaussian of
 * the decoded noise's variance in place of the DP encoding and SecAgg (the sum of the devices'
 * discrete Gaussian shares is that close to Gaussian; the real thing is `npx fedprofile eval`).
 * Many seeds in minutes instead of one seed in 12 minutes.
 *
 *   npx tsx --conditions=source bench/kmeans-init.ts N K '[{"rounds":5,"trials":[1,2,3,4,5]},
 *     {"rounds":3,"spec":{"shrink":false}},{"fixedShares":true}]'
 *
 * `rounds`: Lloyd rounds (default 5, as the full eval preset); `fixedShares`: plan every round on
 * fixed budget shares instead of on what the run's released rounds left (`priorRounds`).
 *
 * Prints, per variant, the cost ratio against centralised Lloyd (k-means++, best of 10, seed 1)
 * of each noise seed, the median and the worst; the population is `syntheticPopulation(N, 1)`.
 */
import { randomBytes } from "node:crypto";
import {
  createRoundPrivacy,
  MemoryAuditLedgerStore,
  MemoryPrivacyBudgetStore,
  planRoundShards,
} from "@fedprofile/coordinator";
import { type DistributedDiscreteGaussianConfig, localStddev } from "@fedprofile/coordinator/dp";
import { signerFromSeed } from "@fedprofile/coordinator/ledger";
import {
  applyKMeans,
  initialKMeansState,
  type KMeansState,
  kmeansTask,
  nextRoundRequest,
  seededUniform,
} from "@fedprofile/coordinator/models";
import { type KMeansModelParams, ModelDeclaration } from "@fedprofile/coordinator/wire";
import { centralisedKMeans, costOf } from "../examples/eval/metrics";
import { loadCustomers, syntheticPopulation } from "../examples/eval/population";
import { contributeKMeans } from "../sdk/src/models/kmeans";

interface Variant {
  rounds?: number;
  eps?: number;
  spec?: Record<string, unknown>;
  trials?: number[];
  noNoise?: boolean;
  verbose?: boolean;
  /** Plan every round on fixed shares, not on what the run's released rounds left. */
  fixedShares?: boolean;
}

const N = Number(process.argv[2] ?? 10000);
const K = Number(process.argv[3] ?? 6);
const variants: Variant[] = JSON.parse(process.argv[4] ?? "[{}]");
const customers = await loadCustomers("examples/data/online_retail.csv.gz");
const vectors = syntheticPopulation(customers, N, 1).vectors;
const central = centralisedKMeans(vectors, K, 10, 1).cost;

for (const v of variants) {
  const ratios: number[] = [];
  const eps = v.eps ?? 1;
  const rounds = v.rounds ?? 5;
  for (const trial of v.trials ?? [1, 2, 3, 4, 5]) {
    const rng = seededUniform(1000 + trial);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    const declaration = ModelDeclaration.parse({
      v: 1,
      kind: "kmeans",
      spec: { k: K, ...(v.spec ?? {}) },
      dp: { targetEpsilon: eps, population: N },
      cohort: { minDevices: N, maxDevices: N, maxShardSize: 1000, minShardSize: Math.min(100, N) },
      schedule: { maxRounds: rounds, untilConverged: true },
    });
    if (declaration.kind !== "kmeans") throw new Error("a k-means declaration parsed as another kind");
    const spec = declaration.spec;
    const privacy = createRoundPrivacy({
      budgets: new MemoryPrivacyBudgetStore(),
      ledger: new MemoryAuditLedgerStore(),
      signer: signerFromSeed(randomBytes(32)),
    });
    await privacy.setBudget("t", "segments", { v: 1, epsilonCap: eps * 1.000001, population: N });
    let model: KMeansState = initialKMeansState();
    let params: KMeansModelParams | null = null;
    let converged = false;
    const log: string[] = [];
    const runRounds: string[] = [];
    for (let index = 0; index <= rounds && !converged; index++) {
      const { request } = nextRoundRequest({
        modelId: "segments",
        declaration,
        model,
        latestVersion: index,
        ...(v.fixedShares ? {} : { runRounds }),
      });
      runRounds.push(`r${index}`);
      const task = kmeansTask(spec, model);
      const { floors } = planRoundShards(request, randomBytes(32));
      if (!request.dp) throw new Error("no DP in the request");
      const plan = await privacy.plan("t", "segments", request.dp, {
        roundId: `r${index}`,
        dimension: task.dimension,
        threshold: Math.min(...floors),
        expectedClients: N,
        rotationSeed: randomBytes(32).toString("hex"),
        expiresAt: Date.now() + 3e6,
      });
      const sd = v.noNoise
        ? 0
        : Math.sqrt(N * localStddev(plan.config as DistributedDiscreteGaussianConfig) ** 2);
      const sum = new Float64Array(task.dimension);
      for (const z of vectors) {
        const c = contributeKMeans(spec, task.phase, params, z);
        for (let i = 0; i < c.length; i++) sum[i] = (sum[i] as number) + (c[i] as number);
      }
      for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + sd * normal();
      await privacy.record("t", {
        roundId: `r${index}`,
        modelId: "segments",
        plan,
        cohortSize: N,
        survivors: N,
        fewestInOneSum: 1000,
        threshold: plan.plannedNoiseShares,
      });
      await privacy.release("t", "segments", `r${index}`);
      const up = applyKMeans(spec, model, sum, { noiseStddev: sd, contributors: N, seed: 1 + index });
      model = up.state;
      params = up.params;
      converged = up.converged;
      log.push(
        `${task.phase}(${task.dimension}):sd=${sd.toFixed(0)}:${(costOf(vectors, model.centroids ?? []) / central).toFixed(4)}`,
      );
    }
    ratios.push(costOf(vectors, model.centroids ?? []) / central);
    if (v.verbose)
      console.log(
        "   ",
        log.join(" "),
        `ε ${(await privacy.budgetStatus("t", "segments")).epsilonSpent.toFixed(3)}`,
      );
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  console.log(
    JSON.stringify({ ...v, verbose: undefined }),
    "ratios",
    ratios.map((r) => r.toFixed(4)).join(" "),
    "median",
    (sorted.length % 2
      ? sorted[(sorted.length - 1) / 2]
      : ((sorted[sorted.length / 2 - 1] as number) + (sorted[sorted.length / 2] as number)) / 2
    )?.toFixed(4),
    "worst",
    sorted[sorted.length - 1]?.toFixed(4),
  );
}
