/**
 * Training for the recommendation eval: centralised implicit ALS (Hu, Koren & Volinsky 2008), the
 * baseline, and federated FCF with the real halves in-process: the trainer's own round request
 * (`nextRoundRequest`), the SDK's device step (`solveUserFactor` + `contributeFcf`, tfjs) on every
 * device against the published int8 factors, the real planner and ledger for every DP round, and
 * the trainer's server update (`applyFcf`).
 *
 * The DP noise of a round is added to the exact sum as one Gaussian with the variance the decoder
 * reports for the round (survivors × the per-device discrete Gaussian share's variance): the sum of
 * the devices' discrete Gaussian shares, without encoding 32,768 coordinates per device per round
 * (the k-means eval runs that path, and SecAgg+, for real). Rounding and modular wrap are not
 * simulated.
 */
import { randomBytes } from "node:crypto";
import {
  createRoundPrivacy,
  MemoryAuditLedgerStore,
  MemoryPrivacyBudgetStore,
} from "@fedprofile/coordinator";
import { localStddev } from "@fedprofile/coordinator/dp";
import { signerFromSeed } from "@fedprofile/coordinator/ledger";
import {
  applyFcf,
  confidence,
  type FcfState,
  fcfTask,
  initialFcfState,
  nextRoundRequest,
  publishFcf,
  seededUniform,
} from "@fedprofile/coordinator/models";
import { FcfDeclaration, type FcfSpecInput } from "@fedprofile/coordinator/wire";
import { checkRoundFloors, DEFAULT_PRIVACY_POLICY } from "@fedprofile/protocol/dp";
import { choleskySolve } from "@fedprofile/protocol/linalg";
import { contributeFcf, decodeFcfModel, solveUserFactor, type Touched } from "../../sdk/src/models/fcf";
import type { RecsData } from "./recs-data";

export interface AlsConfig {
  rank: number;
  alpha: number;
  lambda: number;
  iterations: number;
  seed: number;
}

/** Centralised implicit ALS: returns item factors (row-major) and user factors. */
export function trainAls(data: RecsData, config: AlsConfig): { items: Float64Array; users: Float64Array[] } {
  const r = config.rank;
  const n = data.items.length;
  const random = seededUniform(config.seed);
  const y = Float64Array.from({ length: n * r }, () => (random() - 0.5) * (0.6 / Math.sqrt(r)));
  const users: Float64Array[] = data.users.map(() => new Float64Array(r));
  const byItem: Array<Array<[number, number]>> = Array.from({ length: n }, () => []);
  data.users.forEach((u, ui) => {
    for (const [row, w] of u.items) byItem[row]?.push([ui, w]);
  });
  const gram = (m: ArrayLike<number>, count: number) => {
    const g = new Float64Array(r * r);
    for (let i = 0; i < count; i++) {
      for (let a = 0; a < r; a++) {
        const va = m[i * r + a] as number;
        for (let b = a; b < r; b++) g[a * r + b] = (g[a * r + b] as number) + va * (m[i * r + b] as number);
      }
    }
    for (let a = 0; a < r; a++) for (let b = 0; b < a; b++) g[a * r + b] = g[b * r + a] as number;
    return g;
  };
  const solve = (g: Float64Array, rows: Array<[number, number]>, other: ArrayLike<number>) => {
    const a = Float64Array.from(g);
    const b = new Float64Array(r);
    for (let k = 0; k < r; k++) a[k * r + k] = (a[k * r + k] as number) + config.lambda;
    for (const [j, w] of rows) {
      const c = 1 + config.alpha * w;
      for (let p = 0; p < r; p++) {
        const vp = other[j * r + p] as number;
        b[p] = (b[p] as number) + c * vp;
        for (let q = 0; q < r; q++)
          a[p * r + q] = (a[p * r + q] as number) + (c - 1) * vp * (other[j * r + q] as number);
      }
    }
    return choleskySolve(a, b, r);
  };
  const xFlat = new Float64Array(data.users.length * r);
  for (let it = 0; it < config.iterations; it++) {
    const gy = gram(y, n);
    data.users.forEach((u, ui) => {
      const x = solve(gy, [...u.items], y);
      users[ui] = x;
      xFlat.set(x, ui * r);
    });
    const gx = gram(xFlat, data.users.length);
    for (let j = 0; j < n; j++) y.set(solve(gx, byItem[j] ?? [], xFlat), j * r);
  }
  // Final user factors against the final item factors.
  const gy = gram(y, n);
  data.users.forEach((u, ui) => {
    users[ui] = solve(gy, [...u.items], y);
  });
  return { items: y, users };
}

export interface FederatedRecsConfig {
  spec: FcfSpecInput;
  /** ε of the whole training at δ = 1/N^1.1; null: no DP (SecAgg's exact sum). */
  epsilon: number | null;
  rounds: number;
  seed: number;
  /** Called every `every` rounds with the published factors and every user's factor against them. */
  checkpoint?: {
    every: number;
    onModel: (rounds: number, items: Float32Array, users: Float64Array[]) => void;
  };
}

export interface FederatedRecsRun {
  items: Float32Array;
  users: Float64Array[];
  epsilonSpent: number;
  delta: number | null;
  rounds: number;
  dimension: number;
  noiseStddev: number;
  /** Median ms of one device's step (user solve + round vector), over a sample of devices. */
  deviceMs: number;
  /** Published download: int8 factors + scales, bytes. */
  factorBytes: number;
  /** The published params as JSON (ids, categories, Gram, popularity), bytes. */
  paramsBytes: number;
  popularity: number[];
}

const TENANT = "eval";
const MODEL = "recommendations";

/** Federated FCF over `data`'s training interactions, one device per user. */
export async function trainFederatedRecs(
  data: RecsData,
  config: FederatedRecsConfig,
  onRound?: (
    index: number,
    info: { block: number; epsilon: number; metrics: Record<string, number> },
  ) => void,
): Promise<FederatedRecsRun> {
  const n = data.users.length;
  const declaration = FcfDeclaration.parse({
    v: 1,
    kind: "fcf",
    spec: config.spec,
    catalogue: { items: data.items, categories: data.categories },
    dp: { targetEpsilon: config.epsilon ?? 1, population: n },
    cohort: { minDevices: n, maxDevices: n, maxShardSize: 1000, minShardSize: Math.min(100, n) },
    schedule: { maxRounds: config.rounds },
  });
  const { spec, catalogue } = declaration;
  const privacy = createRoundPrivacy({
    budgets: new MemoryPrivacyBudgetStore(),
    ledger: new MemoryAuditLedgerStore(),
    signer: signerFromSeed(randomBytes(32)),
    // The eval runs days of rounds in minutes: the per-day cap limits how fast a key holder can
    // spend, not what the run releases, so it is the run's ε here. Every other production floor
    // is checked on each round below.
    ...(config.epsilon === null ? {} : { dailyEpsilonCap: config.epsilon * 1.000001 }),
  });
  if (config.epsilon !== null) {
    await privacy.setBudget(TENANT, MODEL, { v: 1, epsilonCap: config.epsilon * 1.000001, population: n });
  }
  const random = seededUniform(config.seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  let state: FcfState = initialFcfState(spec, catalogue.items.length);
  let published = publishFcf(spec, catalogue, state);
  const touchedOf = data.users.map((u) =>
    [...u.items]
      .map(
        ([row, w]): Touched => ({
          row,
          purchases: w,
          confidence: confidence(
            {
              alpha: spec.alpha,
              purchase: spec.purchaseWeight,
              cart: spec.cartWeight,
              view: spec.viewWeight,
            },
            { purchases: w, carts: 0, views: 0 },
          ),
        }),
      )
      .sort((a, b) => a.row - b.row),
  );
  let noiseStddev = 0;
  const deviceTimes: number[] = [];
  let dimension = 0;
  for (let index = 0; index < config.rounds; index++) {
    const { request } = nextRoundRequest({
      modelId: MODEL,
      declaration,
      model: state,
      latestVersion: index + 1,
    });
    const { block } = fcfTask(spec, catalogue.items.length, state);
    dimension = request.dimension;
    // Every device downloads the same version: decode it once.
    const model = decodeFcfModel({ modelId: MODEL, version: index + 1, ...published });
    const sum = new Float64Array(request.dimension);
    touchedOf.forEach((touched, i) => {
      const t0 = i < 100 ? performance.now() : 0;
      const x = solveUserFactor(spec, model, touched);
      const v = contributeFcf(spec, block, model, touched, x);
      if (i < 100) deviceTimes.push(performance.now() - t0);
      for (let k = 0; k < v.length; k++) sum[k] = (sum[k] as number) + (v[k] as number);
    });
    if (config.epsilon !== null && request.dp) {
      const roundId = `r_${randomBytes(16).toString("base64url").slice(0, 22)}`;
      const plan = await privacy.plan(TENANT, MODEL, request.dp, {
        roundId,
        dimension: request.dimension,
        threshold: Math.min(n, request.dp.minNoiseShares ?? n),
        expectedClients: n,
        rotationSeed: randomBytes(32).toString("hex"),
        expiresAt: Date.now() + 3_600_000,
      });
      if (plan.config.mechanism !== "distributed_discrete_gaussian") throw new Error("expected DDG");
      const shard = Math.min(n, 1000);
      const violations = checkRoundFloors(DEFAULT_PRIVACY_POLICY, {
        aggregation: "secagg",
        dp: plan.config,
        privacy: {
          noiseShares: plan.plannedNoiseShares,
          colluders: plan.colluders ?? 0,
          delta: plan.delta,
          modelEpsilon: plan.projectedEpsilon,
        },
        cohort: shard,
        threshold: plan.secaggThreshold ?? plan.plannedNoiseShares,
        consistencyCheck: true,
        // The simulated devices are the population: admission (one token per device) holds by
        // construction here, and is a deployment's floor, not the DP configuration's.
        admission: true,
      });
      // δ = 1/N^1.1 (the design's rule) is above the floor's 1e-4 below N ≈ 4,300, as in the CI
      // preset: that floor alone is left out. A run at ε above the model floor (10) is a study.
      const unmet = violations.filter((v) => v.floor !== "maxDelta");
      if (unmet.length > 0 && config.epsilon <= DEFAULT_PRIVACY_POLICY.maxEpsilonPerModel) {
        throw new Error(
          `round ${index}: below the production floors: ${unmet.map((v) => v.reason).join("; ")}`,
        );
      }
      noiseStddev = Math.sqrt(n * localStddev(plan.config) ** 2);
      for (let k = 0; k < sum.length; k++) sum[k] = (sum[k] as number) + noiseStddev * normal();
      await privacy.record(TENANT, {
        roundId,
        modelId: MODEL,
        plan,
        cohortSize: n,
        survivors: n,
        fewestInOneSum: Math.min(n, 1000),
        threshold: plan.plannedNoiseShares,
      });
      await privacy.release(TENANT, MODEL, roundId);
    }
    const update = applyFcf(spec, catalogue, state, block, sum, { contributors: n, noiseStddev });
    state = update.state;
    published = { weights: update.weights, params: update.params };
    const status = config.epsilon === null ? null : await privacy.budgetStatus(TENANT, MODEL);
    onRound?.(index, { block: block.index, epsilon: status?.epsilonSpent ?? 0, metrics: update.metrics });
    const every = config.checkpoint?.every ?? 0;
    if (config.checkpoint && every > 0 && (index + 1) % every === 0 && index + 1 < config.rounds) {
      const at = decodeFcfModel({ modelId: MODEL, version: index + 2, ...published });
      config.checkpoint.onModel(
        index + 1,
        at.factors,
        touchedOf.map((touched) => solveUserFactor(spec, at, touched)),
      );
    }
  }
  const status = config.epsilon === null ? null : await privacy.budgetStatus(TENANT, MODEL);
  const model = decodeFcfModel({ modelId: MODEL, version: config.rounds + 1, ...published });
  const users = touchedOf.map((touched) => solveUserFactor(spec, model, touched));
  deviceTimes.sort((a, b) => a - b);
  return {
    items: model.factors,
    users,
    epsilonSpent: status?.epsilonSpent ?? 0,
    delta: status?.delta ?? null,
    rounds: config.rounds,
    dimension,
    noiseStddev,
    deviceMs: deviceTimes[Math.floor(deviceTimes.length / 2)] ?? 0,
    factorBytes: published.weights.length,
    paramsBytes: JSON.stringify(published.params).length,
    popularity: published.params.popularity,
  };
}
