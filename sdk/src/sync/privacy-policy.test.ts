/**
 * The device's privacy floors against the probes of issue 13, finding 2: each is a round the old
 * SDK took part in. A recording client stands for the coordinator; "refused before anything is
 * sent" means no call beyond the check-in reached it.
 */

import type { TokenIssuer } from "@fedprofile/coordinator/admission";
import { planCentralRound, planDistributedRound } from "@fedprofile/coordinator/dp";
import { bytesToBase64 } from "@fedprofile/protocol/bytes";
import { DEFAULT_PRIVACY_POLICY, roundEpsilon } from "@fedprofile/protocol/dp";
import type { RoundInfo, SecAggConfig } from "@fedprofile/protocol/wire";
import { beforeAll, describe, expect, it } from "vitest";
import { stubbedStorefrontIssuer } from "../../../test/secagg/identities";
import type { AdmissionOptions } from "./admission";
import type { CoordinatorClient } from "./coordinator-client";
import { participateInRound } from "./plain-round";

const ROUND_ID = "r_0123456789abcdefABCDEF";
const SEED = "00112233445566778899aabbccddeeff";

/** The storefront's token issuer, served through a fetch stub (each device is a new customer). */
let issuer: TokenIssuer;
let admission: AdmissionOptions;
beforeAll(async () => {
  ({ issuer, admission } = await stubbedStorefrontIssuer());
}, 60_000);

/** A distributed round that meets the production floors: 40 shares, t = 30, ε 1 over 10 rounds. */
function goodRound(): RoundInfo {
  const dp = planDistributedRound({
    dim: 4,
    clipNorm: 1,
    expectedClients: 100,
    modulusBits: 24,
    kStddevs: 6,
    rotationSeed: SEED,
    targetEpsilon: 1,
    delta: 1e-5,
    rounds: 10,
    samplingRate: 1,
    threshold: 40,
    colluders: 2,
  });
  return {
    roundId: ROUND_ID,
    modelId: "segments",
    aggregation: "secagg",
    stage: "collecting",
    dimension: 4,
    minContributions: 40,
    maxContributions: 100,
    openedAt: 0,
    closesAt: 60_000,
    secagg: {
      shards: 1,
      stageSeconds: 60,
      minShardSize: 100,
      threshold: 30,
      consistencyCheck: true,
      privacy: { noiseShares: 40, colluders: 2, delta: 1e-5, modelEpsilon: 0.4 },
      admission: { kind: "privacypass", issuerName: "shop.example", keyId: bytesToBase64(issuer.keyId) },
    },
    dp,
  };
}

/** The SecAgg configuration a shard shows in its advertise-keys view. */
function shardConfig(over: Partial<SecAggConfig> = {}): SecAggConfig {
  return {
    v: 1,
    roundId: ROUND_ID,
    cohortSize: 100,
    k: 40,
    t: 30,
    dimension: 4,
    valueBits: 24,
    modulusBits: 24,
    modularInputs: true,
    graphSeed: "A".repeat(43) + "=",
    consistencyCheck: true,
    ...over,
  };
}

/** A coordinator that records every call; join and the views answer as a real one would. */
function recordingClient(config: SecAggConfig = shardConfig(), dimension = 4) {
  const calls: Array<{ method: string; args: unknown[] }> = [];
  const answers: Record<string, (...args: unknown[]) => unknown> = {
    join: () => ({
      v: 1,
      roundId: ROUND_ID,
      participantId: "p_0123456789abcdefABCDEF",
      participantToken: "t".repeat(32),
      dimension,
      closesAt: 60_000,
      secagg: { shard: 0, slot: 3 },
    }),
    secaggView: () => ({ v: 1, roundId: ROUND_ID, slot: 3, stage: "advertise-keys", config }),
  };
  const client = new Proxy(
    {},
    {
      get:
        (_target, method: string) =>
        async (...args: unknown[]) => {
          calls.push({ method, args });
          const answer = answers[method];
          if (!answer) throw new Error(`sentinel: ${method} reached the coordinator`);
          return answer(...args);
        },
    },
  ) as CoordinatorClient;
  return { client, calls, sent: () => calls.filter((c) => c.method !== "checkin").map((c) => c.method) };
}

async function refusal(round: RoundInfo, config?: SecAggConfig, vector = [1, 4, 0, 0]) {
  const { client, sent } = recordingClient(config, vector.length);
  const error = await participateInRound(client, "segments", () => Float64Array.from(vector), {
    round,
    pollMs: 1,
    admission,
  }).catch((e: unknown) => e);
  return { error, sent: sent() };
}

/** sync() reports a PolicyRefusedError as the `refused-by-policy` outcome, naming the floors. */
function floorsOf(outcome: unknown): string[] {
  expect(outcome).toMatchObject({ status: "refused-by-policy" });
  const floors = (outcome as { floors?: string[] }).floors;
  expect(Array.isArray(floors)).toBe(true);
  return floors ?? [];
}

describe("device privacy floors (issue 13, finding 2)", () => {
  it("a round that meets the production floors is joined (the floors are not a blanket refusal)", async () => {
    const round = goodRound();
    expect(roundEpsilon(round.dp!, round.secagg!.privacy!)).toBeLessThan(
      DEFAULT_PRIVACY_POLICY.maxEpsilonPerRound,
    );
    const { client, sent } = recordingClient();
    // The fake shard stops at the first message: the device did send its keys for this round.
    await participateInRound(client, "segments", () => Float64Array.of(1, 4, 0, 0), {
      round,
      pollMs: 1,
      admission,
    }).catch((e: unknown) => e);
    expect(sent()).toEqual(["join", "secaggView", "secaggMessage"]);
  }, 30_000); // a blind-RSA token issuance takes seconds on a loaded machine

  it("a round that admits devices without a token is refused (one client could fill it)", async () => {
    const round = goodRound();
    delete round.secagg!.admission;
    const { error, sent } = await refusal(round);
    expect(floorsOf(error)).toEqual(["requireAdmission"]);
    expect(sent).toEqual([]);
  });

  it("localSigma = 2^-60: one device's input would decode exactly; refused before joining", async () => {
    const round = goodRound();
    if (round.dp?.mechanism !== "distributed_discrete_gaussian") throw new Error("unreachable");
    round.dp = { ...round.dp, localSigma: { num: 1, exp2: 60 } };
    const { error, sent } = await refusal(round);
    expect(floorsOf(error)).toContain("maxEpsilonPerRound");
    expect(sent).toEqual([]);
  });

  it("central_gaussian: the device would add no noise; refused", async () => {
    const round = goodRound();
    round.dp = planCentralRound({
      dim: 4,
      clipNorm: 1,
      expectedClients: 100,
      rotationSeed: SEED,
      noiseMultiplier: 1,
    });
    const { error, sent } = await refusal(round);
    expect(floorsOf(error)).toContain("requireDistributedDp");
    expect(sent).toEqual([]);
  });

  it("a clip of 1e-300 is refused", async () => {
    const round = goodRound();
    if (round.dp?.mechanism !== "distributed_discrete_gaussian") throw new Error("unreachable");
    round.dp = { ...round.dp, clipNorm: 1e-300 };
    const { error, sent } = await refusal(round);
    expect(floorsOf(error)).toContain("minClipNorm");
    expect(sent).toEqual([]);
  });

  it("a cohort of 2 with t = 1 and no consistency check is refused at check-in", async () => {
    const round = goodRound();
    round.secagg = { ...round.secagg!, minShardSize: 2, threshold: 1, consistencyCheck: false };
    const { error, sent } = await refusal(round);
    expect(floorsOf(error)).toEqual(
      expect.arrayContaining(["minCohort", "minThreshold", "requireConsistencyCheck"]),
    );
    expect(sent).toEqual([]);
  });

  it("the same cohort shown only in the shard's advertise-keys view: no key leaves the device", async () => {
    const { error, sent } = await refusal(
      goodRound(),
      shardConfig({ cohortSize: 2, k: 2, t: 1, consistencyCheck: false }),
    );
    expect(floorsOf(error)).toEqual(
      expect.arrayContaining(["minCohort", "minThreshold", "requireConsistencyCheck"]),
    );
    // Joining reveals nothing about the device; its keys (and anything after) were never sent.
    expect(sent).toEqual(["join", "secaggView"]);
  }, 30_000);

  it("plain-sum: [1, 4] is never sent in the clear unless the page opts in for development", async () => {
    const round: RoundInfo = { ...goodRound(), aggregation: "plain-sum", dimension: 2 };
    delete round.secagg;
    delete round.dp;
    const { error, sent } = await refusal(round, undefined, [1, 4]);
    expect(floorsOf(error)).toEqual(["allowPlainSum"]);
    expect(sent).toEqual([]);

    const dev = recordingClient(shardConfig(), 2);
    await participateInRound(dev.client, "segments", () => Float64Array.of(1, 4), {
      round,
      policy: "development",
    }).catch(() => undefined);
    expect(dev.sent()).toEqual(["join", "contribute"]);
  });

  it("a round that does not state its noise shares is refused (an old coordinator)", async () => {
    const round = goodRound();
    delete round.secagg!.privacy;
    const { error, sent } = await refusal(round);
    expect(floorsOf(error)).toContain("minNoiseShares");
    expect(sent).toEqual([]);
  });

  it("too many assumed colluders, or a model past its ε ceiling, is refused", async () => {
    const round = goodRound();
    round.secagg!.privacy = { noiseShares: 40, colluders: 35, delta: 1e-5, modelEpsilon: 12 };
    const { error } = await refusal(round);
    expect(floorsOf(error)).toEqual(expect.arrayContaining(["minNoiseShares", "maxEpsilonPerModel"]));
  });

  it("a non-finite value never leaves the device", async () => {
    const round: RoundInfo = { ...goodRound(), aggregation: "plain-sum", dimension: 2 };
    delete round.secagg;
    delete round.dp;
    const dev = recordingClient(shardConfig(), 2);
    const error = await participateInRound(dev.client, "segments", () => Float64Array.of(1e308 * 10, 4), {
      round,
      policy: "development",
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "non_finite_value" });
    expect(dev.sent()).toEqual(["join"]);
  });
});
