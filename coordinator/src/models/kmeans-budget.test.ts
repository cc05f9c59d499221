/**
 * A k-means run spends what its epsilon allows and provably never more: every round is planned on
 * what the run's released rounds left (`priorRounds`), for its worst case (the noise floor), and
 * the ledger records what ran. Rounds are planned and recorded through the real planner and
 * ledger; no devices are needed for the accounting.
 */
import { type DistributedDiscreteGaussianConfig, localStddev } from "@fedprofile/protocol/dp";
import { DpRoundRequest, ModelDeclaration } from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";

const randomBytes = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

import { signerFromSeed } from "../ledger/chain";
import { MemoryAuditLedgerStore, MemoryPrivacyBudgetStore } from "../memory/index";
import { createRoundPrivacy } from "../rounds/round-privacy";
import { initialKMeansState, type KMeansState } from "./kmeans";
import { nextRoundRequest } from "./trainer";

const N = 2000;
const EPSILON = 1;
const LLOYD_ROUNDS = 3;

const declaration = ModelDeclaration.parse({
  v: 1,
  kind: "kmeans",
  spec: { k: 4 },
  dp: { targetEpsilon: EPSILON, population: N },
  cohort: { minDevices: N, maxDevices: N, maxShardSize: 1000, minShardSize: 100 },
  schedule: { maxRounds: LLOYD_ROUNDS, untilConverged: true },
});

/** The state before round `index`: the init round, then Lloyd iterations 0, 1, … */
function stateAt(index: number): KMeansState {
  if (index === 0) return initialKMeansState();
  const centroids = (declaration.kind === "kmeans" ? declaration.spec.k : 0) * (index === 1 ? 2 : 1);
  return {
    phase: "lloyd",
    iteration: index - 1,
    centroids: Array.from({ length: centroids }, () => new Array<number>(9).fill(0)),
    sizes: [],
    tagThresholds: {},
  };
}

/**
 * Plans and records the run's init and Lloyd rounds. `turnout`: the shards' survivors, as a
 * fraction of their size (the noise floor is 70% of it); `fixedShares` plans without the prior.
 */
async function run(turnout: number, fixedShares = false) {
  const privacy = createRoundPrivacy({
    budgets: new MemoryPrivacyBudgetStore(),
    ledger: new MemoryAuditLedgerStore(),
    signer: signerFromSeed(randomBytes(32)),
  });
  // A cap well above the run's epsilon: the planner, not the cap check, must keep the run within it.
  await privacy.setBudget("t", "segments", { v: 1, epsilonCap: 10 * EPSILON, population: N });
  const runRounds: string[] = [];
  const projected: number[] = [];
  const sigmas: number[] = [];
  for (let index = 0; index <= LLOYD_ROUNDS; index++) {
    const { request } = nextRoundRequest({
      modelId: "segments",
      declaration,
      model: stateAt(index),
      latestVersion: index,
      ...(fixedShares ? {} : { runRounds }),
    });
    if (!request.dp?.minNoiseShares) throw new Error("a k-means round without DP");
    const roundId = `r_${String(index).padStart(22, "0")}`;
    runRounds.push(roundId);
    const floor = request.dp.minNoiseShares;
    const plan = await privacy.plan("t", "segments", request.dp, {
      roundId,
      dimension: request.dimension,
      threshold: floor,
      expectedClients: N,
      rotationSeed: hex(randomBytes(32)),
      expiresAt: Date.now() + 60_000,
    });
    projected.push(plan.projectedEpsilon);
    sigmas.push(localStddev(plan.config as DistributedDiscreteGaussianConfig));
    const survivors = Math.max(floor, Math.round(turnout * 1000));
    await privacy.record("t", {
      roundId,
      modelId: "segments",
      plan,
      cohortSize: N,
      survivors: 2 * survivors,
      fewestInOneSum: survivors,
      threshold: floor,
    });
    await privacy.release("t", "segments", roundId);
  }
  const { epsilonSpent } = await privacy.budgetStatus("t", "segments");
  return { projected, sigmas, epsilonSpent };
}

describe("k-means budget: planned on what the run's released rounds left", () => {
  it("at full turnout spends nearly all of epsilon, and no round's worst case passes it", async () => {
    const { projected, epsilonSpent } = await run(1);
    // projectedEpsilon: the ledger so far composed with the round's planned (worst-case) event.
    for (const p of projected) expect(p).toBeLessThanOrEqual(EPSILON * (1 + 1e-9));
    expect(projected.at(-1)).toBeGreaterThan(0.999 * EPSILON);
    expect(epsilonSpent).toBeLessThanOrEqual(EPSILON);
    // Only the last round's own dropout margin is left unspent (fixed shares leave every round's).
    expect(epsilonSpent).toBeGreaterThan(0.9 * EPSILON);
    const fixed = await run(1, true);
    expect(fixed.epsilonSpent).toBeLessThan(0.85 * EPSILON);
  });

  it("when every round runs at its noise floor, spends epsilon exactly as fixed shares do", async () => {
    const floor = await run(0.7);
    expect(floor.epsilonSpent).toBeLessThanOrEqual(EPSILON);
    expect(floor.epsilonSpent).toBeGreaterThan(0.999 * EPSILON);
    const fixed = await run(0.7, true);
    expect(fixed.epsilonSpent).toBeLessThanOrEqual(EPSILON);
    floor.sigmas.forEach((s, i) => {
      // The same noise up to the dyadic rounding (KLS21's grid) that each plan rounds up.
      expect(Math.abs(s / (fixed.sigmas[i] as number) - 1)).toBeLessThan(1e-3);
    });
  });

  it("hands the init round's saving to the Lloyd rounds: less noise in each of them", async () => {
    const saved = await run(1);
    const fixed = await run(1, true);
    expect(saved.sigmas[0]).toBe(fixed.sigmas[0]);
    for (let i = 1; i <= LLOYD_ROUNDS; i++) expect(saved.sigmas[i]).toBeLessThan(fixed.sigmas[i] as number);
  });

  it("the request's priorRounds: distributed rounds only, at most 1,000, named in the error", () => {
    const base = { clipNorm: 1, targetEpsilon: 1, rounds: 3 };
    expect(DpRoundRequest.safeParse({ ...base, priorRounds: [`r_${"a".repeat(22)}`] }).success).toBe(true);
    const central = DpRoundRequest.safeParse({ ...base, mechanism: "central_gaussian", priorRounds: [] });
    expect(central.success).toBe(false);
    expect(central.error?.issues[0]?.path).toEqual(["priorRounds"]);
    const many = DpRoundRequest.safeParse({
      ...base,
      priorRounds: Array.from({ length: 1001 }, (_, i) => `r_${String(i).padStart(22, "0")}`),
    });
    expect(many.error?.issues[0]?.path).toEqual(["priorRounds"]);
  });
});
