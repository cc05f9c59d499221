/**
 * Differentially private SecAgg+ rounds through the real HTTP app (in-memory ports): the operator
 * sets a budget, opens DP rounds, devices encode with the SDK's DP client half, the coordinator
 * decodes and writes a signed ledger entry that independent verification accepts, and a round
 * that would pass the cap is refused before any device is invited.
 */
import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import { dyadicValue, localStddev, paddedDim, RdpAccountant } from "@fedprofile/coordinator/dp";
import {
  isReleaseEntry,
  LedgerEntry,
  publicKeyFromHex,
  readAll,
  signerFromSeedHex,
  verifyLedger,
} from "@fedprofile/coordinator/ledger";
import {
  decodeFloat64Vector,
  type OpenRoundInput,
  PrivacyBudgetStatus,
  RoundStatus,
} from "@fedprofile/coordinator/wire";
import {
  type CoordinatorClient,
  createCoordinatorClient,
  participateInSecAggRound,
} from "@fedprofile/sdk/sync";
import { afterEach, describe, expect, it } from "vitest";
import { expectMaskedUploads, expectNoPlaintext } from "../privacy";

const TENANT = "dp-shop";
const SIGNER = signerFromSeedHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");

function setup() {
  // A clock tests can move forward, to reach a round's deadline without waiting for it.
  let skew = 0;
  const memory = createMemoryCoordinator({ signer: SIGNER, clock: () => Date.now() + skew });
  const keys = generateTenantKeys(TENANT);
  memory.tenants.addTenant({ id: TENANT, name: "DP shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp({
    tenants: memory.tenants,
    models: memory.models,
    rounds: memory.rounds,
    privacy: memory.privacy,
  });
  const bodies: Array<string | Uint8Array> = [];
  const appFetch: typeof fetch = async (input, init) => {
    if (init?.body instanceof Uint8Array || typeof init?.body === "string") bodies.push(init.body);
    return app.request(input instanceof Request ? input : String(input), init);
  };
  const ticker = setInterval(() => void memory.fireDueAlarms(), 25);
  const call = async (method: string, path: string, key: string, body?: unknown) => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json: unknown = await response.json();
    return { status: response.status, json };
  };
  const device = (): CoordinatorClient =>
    createCoordinatorClient({
      endpoint: "http://coordinator.test",
      apiKey: keys.publishable.key,
      fetch: appFetch,
    });
  const openRound = (dp: NonNullable<OpenRoundInput["dp"]>, cohort = 5) =>
    call("POST", "/v1/rounds", keys.secret.key, {
      v: 1,
      modelId: "segments",
      dimension: 4,
      minContributions: 3,
      maxContributions: cohort,
      deadlineSeconds: 60,
      aggregation: "secagg",
      secagg: { minShardSize: 2, stageSeconds: 2, k: 4, t: 3 },
      dp,
    } satisfies OpenRoundInput);
  const runDevices = async (vectors: number[][]) =>
    Promise.all(
      vectors.map(async (v) => {
        const client = device();
        const { round } = await client.checkin("segments");
        if (!round) throw new Error("no open round");
        return participateInSecAggRound(client, round, () => Float64Array.from(v), {
          policy: "development",
          pollMs: 10,
        });
      }),
    );
  const setBudget = (epsilonCap: number, delta = 1e-6) =>
    call("PUT", "/v1/privacy/budgets/segments", keys.secret.key, { v: 1, epsilonCap, delta });
  const advance = (ms: number) => {
    skew += ms;
  };
  return {
    memory,
    keys,
    call,
    setBudget,
    openRound,
    runDevices,
    bodies,
    advance,
    stop: () => clearInterval(ticker),
  };
}

let stop: (() => void) | undefined;
afterEach(() => stop?.());

const VECTORS = [
  [0.5, -0.25, 0.125, 0],
  [0.25, 0.25, -0.5, 0.5],
  [-0.125, 0.5, 0.25, 0.25],
  [0.5, 0.5, 0.5, -0.25],
  [0, -0.5, 0.25, 0.125],
];
const SUM = [1.125, 0.5, 0.625, 0.625];

async function ledgerRows(ctx: ReturnType<typeof setup>): Promise<unknown[]> {
  const page = await ctx.call("GET", "/v1/audit/ledger?limit=100", ctx.keys.auditor.key);
  expect(page.status).toBe(200);
  const { entries } = page.json as { entries: unknown[] };
  return entries;
}

describe("DP rounds over HTTP (distributed discrete Gaussian and central Gaussian)", () => {
  it("distributed DP: the model is the noisy sum, the ledger entry verifies, epsilon matches the accountant", async () => {
    const ctx = setup();
    stop = ctx.stop;
    const budget = await ctx.call("PUT", "/v1/privacy/budgets/segments", ctx.keys.secret.key, {
      v: 1,
      epsilonCap: 8,
      population: 10_000,
    });
    expect(budget.status).toBe(200);
    const opened = await ctx.openRound({ clipNorm: 1, targetEpsilon: 2, rounds: 2, modulusBits: 24 });
    expect(opened.status).toBe(201);
    const status = RoundStatus.parse(opened.json);
    expect(status.dp?.mechanism).toBe("distributed_discrete_gaussian");
    expect(status.secagg?.encoding).toBeUndefined();

    const outcomes = await ctx.runDevices(VECTORS);
    expect(outcomes.map((o) => o.status)).toEqual(Array(5).fill("contributed"));
    const cfg = status.dp;
    if (cfg?.mechanism !== "distributed_discrete_gaussian") throw new Error("expected a distributed round");
    // No body, binary or JSON, carries a device's vector in any encoding, and no masked upload
    // is a DP-encoded vector: unmasked, each word is (rotated, scaled, rounded x) + local noise,
    // centred within B of 0 mod 2^m, where a uniformly masked word lands with chance (2B+1)/2^m.
    expectNoPlaintext(
      ctx.bodies,
      VECTORS.map((v) => ({ values: v })),
      cfg.modulusBits,
    );
    const dim = paddedDim(cfg);
    const bound = Math.ceil(
      (cfg.clipNorm + cfg.gamma * Math.sqrt(dim)) / cfg.gamma + 8 * dyadicValue(cfg.localSigma),
    );
    expectMaskedUploads(ctx.bodies, dim, [new Array<number>(dim).fill(0)], {
      slack: bound,
      uploads: 5,
      minBits: cfg.modulusBits,
    });

    const model = await ctx.memory.models.latest(TENANT, "segments");
    expect(model).toMatchObject({ version: 1, contributions: 5, aggregation: "secagg" });
    // Noise: five shares of the local discrete Gaussian, plus rounding (at most gamma per coordinate).
    const sd = Math.sqrt(5) * localStddev(cfg) + 5 * cfg.gamma;
    for (const [i, w] of decodeFloat64Vector(model!.weights, 4).entries())
      expect(Math.abs(w - (SUM[i] as number))).toBeLessThan(6 * sd);

    const rows = await ledgerRows(ctx);
    // The budget's policy entry first, then the round.
    expect(rows).toHaveLength(2);
    expect(LedgerEntry.parse(rows[0])).toMatchObject({ kind: "policy", policy: { source: "budget" } });
    const entry = LedgerEntry.parse(rows[1]);
    if (entry.kind !== "round") throw new Error("expected a round entry");
    expect(entry).toMatchObject({
      kind: "round",
      round: 1,
      roundId: status.roundId,
      mechanism: "distributed_discrete_gaussian",
      trustModel: "distributed",
      // One assumed colluder by default (5% of the 3 shares, rounded up): never 0.
      cohort: { size: 5, survivors: 5, threshold: 3, colluders: 1 },
      sampling: { uniform: false, rate: 1 },
    });
    // Accounted: the five survivors minus the assumed colluder.
    expect(entry.noise.noiseShares).toBe(4);
    const key = await ctx.call("GET", "/v1/audit/public-key", ctx.keys.auditor.key);
    const verdict = verifyLedger(rows, publicKeyFromHex((key.json as { publicKey: string }).publicKey));
    expect(verdict.ok).toBe(true);
    // The ledger's epsilon is the accountant's, recomputed from the recorded events.
    const acc = new RdpAccountant();
    for (const c of entry.events) acc.compose(c.event, c.count);
    const eps = acc.getEpsilon(entry.cumulative.delta).epsilon;
    expect(entry.cumulative.epsilon).toBeCloseTo(eps, 12);
    expect(entry.cumulative.delta).toBeCloseTo(10_000 ** -1.1, 20);
    const after = PrivacyBudgetStatus.parse(
      (await ctx.call("GET", "/v1/privacy/budgets/segments", ctx.keys.auditor.key)).json,
    );
    expect(after.epsilonSpent).toBeCloseTo(eps, 12);
    expect(after.entries).toBe(2);
  });

  it("refuses a round that would pass the cap before any device is invited", async () => {
    const ctx = setup();
    stop = ctx.stop;
    const missing = await ctx.openRound({ clipNorm: 1, targetEpsilon: 1, rounds: 1 });
    expect(missing.status).toBe(409);
    expect(missing.json).toMatchObject({ error: { code: "privacy_budget_missing" } });

    await ctx.setBudget(1.05);
    // Each round is calibrated to spend epsilon 1 at the threshold: two cannot fit under 1.05.
    expect((await ctx.openRound({ clipNorm: 1, targetEpsilon: 1, rounds: 1 })).status).toBe(201);
    await ctx.runDevices(VECTORS);
    expect((await ctx.memory.models.latest(TENANT, "segments"))?.version).toBe(1);
    const refused = await ctx.openRound({ clipNorm: 1, targetEpsilon: 1, rounds: 1 });
    expect(refused.status).toBe(409);
    const { error } = refused.json as { error: { code: string; message: string } };
    expect(error.code).toBe("privacy_budget_exceeded");
    expect(error.message).toMatch(/cap 1\.05.*refused before any device/);
    // Nothing was opened: check-in finds no round, the ledger still has one entry.
    const checkin = await ctx.call("POST", "/v1/checkin", ctx.keys.publishable.key, {
      v: 1,
      modelId: "segments",
      sdkVersion: "0.1.0",
    });
    expect(checkin.json).toMatchObject({ round: null });
    expect(await ledgerRows(ctx)).toHaveLength(2);
  });

  it("rounds open at the same time reserve their cost: together they cannot pass the cap", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.setBudget(1.05);
    const dp = { clipNorm: 1, targetEpsilon: 1, rounds: 1 };
    // Opened at once, before any device has contributed: only one fits.
    const both = await Promise.all([ctx.openRound(dp), ctx.openRound(dp)]);
    expect(both.map((r) => r.status).sort()).toEqual([201, 409]);
    const refused = both.find((r) => r.status === 409)?.json;
    expect(refused).toMatchObject({ error: { code: "privacy_budget_exceeded" } });
    expect(await ctx.memory.budgets.reservations(TENANT, "segments", Date.now())).toHaveLength(1);
    // The open round ends without a release (every device stayed away): its reservation goes, and
    // the budget, still unspent, admits the next round.
    const opened = RoundStatus.parse(both.find((r) => r.status === 201)?.json);
    ctx.advance(10 * 60_000);
    await ctx.memory.fireDueAlarms();
    expect((await ctx.call("GET", `/v1/rounds/${opened.roundId}`, ctx.keys.secret.key)).json).toMatchObject({
      stage: "aborted",
    });
    expect(await ctx.memory.budgets.reservations(TENANT, "segments", 0)).toHaveLength(0);
    expect(await ledgerRows(ctx)).toHaveLength(1);
    expect((await ctx.openRound(dp)).status).toBe(201);
  });

  it("minNoiseShares: less noise per device, and a shard below it aborts before unmasking", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.setBudget(50);
    const dp = { clipNorm: 1, targetEpsilon: 2, rounds: 1 };
    const atThreshold = RoundStatus.parse((await ctx.openRound(dp)).json);
    await ctx.runDevices(VECTORS);
    const atFive = RoundStatus.parse((await ctx.openRound({ ...dp, minNoiseShares: 5 })).json);
    const sigma = (s: typeof atThreshold) =>
      s.dp?.mechanism === "distributed_discrete_gaussian" ? localStddev(s.dp) : Number.NaN;
    // Calibrated for 5 shares instead of t = 3: each device adds about sqrt(3/5) of the noise.
    expect(sigma(atFive) / sigma(atThreshold)).toBeGreaterThan(0.7);
    expect(sigma(atFive) / sigma(atThreshold)).toBeLessThan(0.82);
    // Only four devices turn up: four masked inputs are fewer than five, so nothing is unmasked.
    const outcomes = await ctx.runDevices(VECTORS.slice(0, 4));
    expect(outcomes.map((o) => o.status)).toEqual(Array(4).fill("aborted"));
    expect((await ctx.call("GET", `/v1/rounds/${atFive.roundId}`, ctx.keys.secret.key)).json).toMatchObject({
      stage: "aborted",
    });
    const rows = (await ledgerRows(ctx)).map((r) => LedgerEntry.parse(r)).filter(isReleaseEntry);
    expect(rows.map((e) => e.roundId)).toEqual([atThreshold.roundId]);
    expect(rows[0]?.cohort.threshold).toBe(3);
    // A floor above the cohort is a bad request.
    const tooMany = await ctx.openRound({ ...dp, minNoiseShares: 6 });
    expect(tooMany.status).toBe(400);
    expect(tooMany.json).toMatchObject({
      error: { message: expect.stringMatching(/dp\.minNoiseShares: 6/) },
    });
  });

  it("central Gaussian: the coordinator adds the noise, and the entry says so", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.setBudget(20);
    const opened = await ctx.openRound({ mechanism: "central_gaussian", clipNorm: 1, noiseMultiplier: 1.2 });
    expect(opened.status).toBe(201);
    await ctx.runDevices(VECTORS);
    const all = await ledgerRows(ctx);
    const entry = LedgerEntry.parse(all[1]);
    if (entry.kind !== "round") throw new Error("expected a round entry");
    expect(entry).toMatchObject({ mechanism: "central_gaussian", trustModel: "central" });
    expect(entry.events[0]?.event).toMatchObject({
      kind: "poisson_gaussian",
      noiseMultiplier: 1.2,
      samplingRate: 1,
    });
    expect(verifyLedger(all, SIGNER.publicKey).ok).toBe(true);
  });

  it("adaptive clipping: each round's quantile release is in the ledger and sets the next clip", async () => {
    const ctx = setup();
    stop = ctx.stop;
    await ctx.setBudget(50);
    const dp = {
      clipNorm: 0.2,
      targetEpsilon: 4,
      rounds: 2,
      adaptiveClipping: { targetQuantile: 0.5, learningRate: 0.2, countStddev: 1 },
    };
    expect((await ctx.openRound(dp)).status).toBe(201);
    await ctx.runDevices(VECTORS);
    const second = RoundStatus.parse((await ctx.openRound(dp)).json);
    await ctx.runDevices(VECTORS);
    const chain = (await readAll(ctx.memory.ledger, { tenant: TENANT, model: "segments" })).map((e) =>
      LedgerEntry.parse(e),
    );
    expect(chain.map((e) => e.kind)).toEqual(["policy", "round", "clip_quantile", "round", "clip_quantile"]);
    const clip = chain[2];
    if (clip?.kind !== "clip_quantile") throw new Error("expected a quantile release");
    expect(clip.clipRelease.accountedInSeq).toBe(1);
    expect(second.dp?.clipIndicator?.updateClip).toBeCloseTo(clip.clipRelease.nextClip, 12);
    expect(verifyLedger(chain, SIGNER.publicKey).ok).toBe(true);
  });

  it("the audit routes take the auditor key only, and page in (model, seq) order", async () => {
    const ctx = setup();
    stop = ctx.stop;
    expect((await ctx.call("GET", "/v1/audit/ledger", ctx.keys.secret.key)).status).toBe(403);
    expect((await ctx.call("GET", "/v1/audit/ledger", ctx.keys.publishable.key)).status).toBe(403);
    await ctx.setBudget(50);
    for (let r = 0; r < 3; r++) {
      await ctx.openRound({ clipNorm: 1, targetEpsilon: 4, rounds: 4 });
      await ctx.runDevices(VECTORS);
    }
    const seqs: number[] = [];
    let cursor = "";
    for (let page = 0; page < 5; page++) {
      const res = await ctx.call("GET", `/v1/audit/ledger?limit=2&cursor=${cursor}`, ctx.keys.auditor.key);
      const body = res.json as { entries: Array<{ seq: number }>; nextCursor: string | null };
      seqs.push(...body.entries.map((e) => e.seq));
      if (!body.nextCursor) break;
      cursor = body.nextCursor;
    }
    expect(seqs).toEqual([0, 1, 2, 3]);
  });
});
