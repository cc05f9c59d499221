import * as z from "zod/mini";
import { DpRoundConfig } from "../dp/config";
import { THREAT_PRESETS } from "../secagg/threat";
import { IssuerName } from "./admission";
import {
  Base64,
  EpochMillis,
  ModelId,
  ParticipantId,
  ParticipantToken,
  RoundId,
  WireVersion,
} from "./common";
import { StageSocketOffer } from "./stage-push";
import { ModelKind, RoundTask } from "./training";

/**
 * How a round combines contributions: `plain-sum` is the walking skeleton's plaintext sum;
 * `secagg` is SecAgg+ (Bonawitz et al. 2017, Bell et al. 2020), where the coordinator learns only
 * the sum.
 */
export const AggregationKind = z.enum(["plain-sum", "secagg"]);
export type AggregationKind = z.infer<typeof AggregationKind>;

/** Round lifecycle: collecting contributions, then closed (published) or aborted. */
export const RoundStage = z.enum(["collecting", "closed", "aborted"]);
export type RoundStage = z.infer<typeof RoundStage>;

/** Maximum vector dimension a round may declare. */
export const MAX_DIMENSION = 1 << 20;

/** Fixed-point encoding of device vectors into SecAgg's integers (see `secagg/encoding.ts`). */
export const FixedPointEncoding = z.strictObject({
  kind: z.literal("fixed-point"),
  clip: z.number().check(z.positive(), z.maximum(1e12), z.describe("values are clipped to [-clip, clip]")),
  valueBits: z.int().check(z.minimum(1), z.maximum(24)),
});
export type FixedPointEncoding = z.infer<typeof FixedPointEncoding>;

/**
 * Operator options of a differentially private round (SecAgg rounds only). The coordinator plans
 * the public {@link DpRoundConfig} from them when the round opens, calibrated for the fewest noise
 * shares any released sum can carry, and refuses the round if the model's budget cap would be
 * passed.
 */
export const DpRoundRequest = z
  .strictObject({
    /**
     * `distributed_discrete_gaussian` (Kairouz, Liu & Steinke 2021): devices add the noise before
     * masking, so even the coordinator sees only a noised sum. `central_gaussian`: the
     * coordinator adds Gaussian noise after unmasking (it must be trusted with the exact sum).
     */
    mechanism: z._default(
      z.enum(["distributed_discrete_gaussian", "central_gaussian"]),
      "distributed_discrete_gaussian",
    ),
    /** L2 clip of each device's update. */
    clipNorm: z.number().check(z.positive(), z.maximum(1e9)),
    /** The epsilon the noise is calibrated to reach over `rounds` such rounds (at the budget's delta). */
    targetEpsilon: z.optional(z.number().check(z.positive(), z.maximum(1000))),
    rounds: z.optional(z.int().check(z.minimum(1), z.maximum(100_000))),
    /** Central mechanism only: the noise multiplier itself, instead of a target. */
    noiseMultiplier: z.optional(z.number().check(z.positive(), z.maximum(1000))),
    /**
     * The fewest devices whose noise any sum the coordinator unmasks must carry: a shard with fewer
     * masked inputs aborts before unmasking, and the noise is calibrated for this many shares
     * instead of the SecAgg threshold t (default t). Raising it towards the expected turnout cuts
     * the noise; the price is that a round with more dropouts aborts.
     */
    minNoiseShares: z.optional(z.int().check(z.minimum(1), z.maximum(65_536))),
    /**
     * Colluding or fake devices the round must tolerate: calibration does not count their noise
     * shares (KLS21 §5). Default `defaultColluders` (5% of the shares, at least 1), never 0.
     */
    colluders: z.optional(z.int().check(z.minimum(0), z.maximum(65_536))),
    /**
     * Distributed rounds: the rounds of the same training run already released. The noise is then
     * calibrated so that those rounds, as the ledger recorded them, and `rounds` rounds like this
     * one reach `targetEpsilon`: what a round's survivors beyond its noise floor saved goes to the
     * rounds after it (a trainer sets it; each round is still checked against the cap).
     */
    priorRounds: z.optional(z.array(RoundId).check(z.maxLength(1000))),
    /** Bits m of the modular arithmetic (KLS21 §4.4); the upload is m bits per coordinate. */
    modulusBits: z._default(z.int().check(z.minimum(8), z.maximum(32)), 24),
    /**
     * Adaptive clipping (Andrew et al. 2021): `clipNorm` is the first round's clip, and each round
     * releases a noised count of devices within the clip, in the same vector and budget, from
     * which the next round's clip follows the target quantile.
     */
    adaptiveClipping: z.optional(
      z.strictObject({
        targetQuantile: z.number().check(z.gt(0), z.lt(1)),
        learningRate: z._default(z.number().check(z.positive(), z.maximum(10)), 0.2),
        countStddev: z.number().check(z.positive(), z.maximum(1e9)),
        minClip: z.optional(z.number().check(z.positive())),
        maxClip: z.optional(z.number().check(z.positive())),
      }),
    ),
  })
  .check(
    z.refine((r) => (r.targetEpsilon === undefined) === (r.rounds === undefined), {
      message: "give targetEpsilon and rounds together",
      path: ["rounds"],
    }),
    z.refine((r) => r.targetEpsilon !== undefined || r.noiseMultiplier !== undefined, {
      message: "give targetEpsilon with rounds, or (central_gaussian) noiseMultiplier",
      path: ["targetEpsilon"],
    }),
    z.refine((r) => r.priorRounds === undefined || r.mechanism === "distributed_discrete_gaussian", {
      message: "priorRounds applies to distributed_discrete_gaussian rounds only",
      path: ["priorRounds"],
    }),
    z.refine((r) => r.noiseMultiplier === undefined || r.mechanism === "central_gaussian", {
      message:
        "noiseMultiplier applies to central_gaussian only; distributed rounds calibrate from targetEpsilon",
      path: ["noiseMultiplier"],
    }),
  );
export type DpRoundRequest = z.infer<typeof DpRoundRequest>;

/** Operator options of a SecAgg round. */
export const SecAggRoundOptions = z.strictObject({
  /** Fixed-point encoding of a round without DP; a DP round's encoding comes from its `dp` plan. */
  encoding: z.optional(FixedPointEncoding),
  /** Largest shard: a larger cohort is split over several shards (hierarchical aggregation). */
  maxShardSize: z._default(z.int().check(z.minimum(2), z.maximum(65_536)), 1000),
  /** Smallest shard the operator accepts: each shard's sum is revealed to the coordinator. */
  minShardSize: z._default(z.int().check(z.minimum(2), z.maximum(65_536)), 100),
  /** Neighbour-graph degree and threshold; chosen from the shard size when omitted. */
  k: z.optional(z.int().check(z.minimum(2), z.maximum(65_536))),
  t: z.optional(z.int().check(z.minimum(1), z.maximum(65_536))),
  consistencyCheck: z._default(z.boolean(), true),
  /**
   * The server threat preset (`../secagg/threat.ts`): `maliciousServer` chooses t > k/2 and
   * requires the consistency check; absent means `honestButCurious`.
   */
  threat: z.optional(z.enum(THREAT_PRESETS)),
  /** Time limit of each protocol stage; a device that misses one is dropped. */
  stageSeconds: z._default(z.int().check(z.minimum(1), z.maximum(24 * 3600)), 60),
});
export type SecAggRoundOptions = z.infer<typeof SecAggRoundOptions>;

/** Operator request (secret key) to open a round for a model. */
export const OpenRoundRequest = z
  .strictObject({
    v: WireVersion,
    modelId: ModelId,
    dimension: z.int().check(z.minimum(1), z.maximum(MAX_DIMENSION)),
    minContributions: z.int().check(z.minimum(1), z.maximum(10_000_000)),
    /** The most devices that may contribute; in a SecAgg round, the cohort size. */
    // 10^7: a SecAgg round's shards open lazily (coordinator/src/rounds/lazy-shards.ts).
    maxContributions: z.int().check(z.minimum(1), z.maximum(10_000_000)),
    deadlineSeconds: z.int().check(z.minimum(1), z.maximum(7 * 24 * 3600)),
    aggregation: z._default(AggregationKind, "plain-sum"),
    /** Required when, and only when, `aggregation` is `secagg`. */
    secagg: z.optional(SecAggRoundOptions),
    /** Differential privacy for this round (needs `aggregation: "secagg"`). */
    dp: z.optional(DpRoundRequest),
  })
  .check(
    z.refine((r) => r.maxContributions >= r.minContributions, {
      message: "maxContributions must be at least minContributions",
      path: ["maxContributions"],
    }),
    z.refine((r) => (r.aggregation === "secagg") === (r.secagg !== undefined), {
      message: 'secagg options are required for, and only for, aggregation "secagg"',
      path: ["secagg"],
    }),
    z.refine((r) => r.dp === undefined || r.aggregation === "secagg", {
      message: 'dp needs aggregation "secagg"',
      path: ["dp"],
    }),
    z.refine((r) => r.secagg === undefined || (r.secagg.encoding === undefined) === (r.dp !== undefined), {
      message:
        "a SecAgg round takes secagg.encoding without dp, and no encoding with dp (the DP plan sets it)",
      path: ["secagg", "encoding"],
    }),
  );
export type OpenRoundRequest = z.infer<typeof OpenRoundRequest>;
/** The request as a client writes it (defaults may be omitted). */
export type OpenRoundInput = z.input<typeof OpenRoundRequest>;

/** What a round's public description says about its privacy, checked by devices' policy floors. */
export const RoundPrivacyInfo = z.strictObject({
  /** Noise shares the calibration assumed in the least-noised revealed sum (before colluders). */
  noiseShares: z.int().check(z.minimum(1)),
  /** Colluding or fake devices assumed: their shares are not counted (KLS21 §5). */
  colluders: z.int().check(z.minimum(0)),
  delta: z.number().check(z.positive(), z.lt(1)),
  /** The model's cumulative epsilon if this round completes, as the coordinator projected it. */
  modelEpsilon: z.number().check(z.nonnegative()),
});
export type RoundPrivacyInfo = z.infer<typeof RoundPrivacyInfo>;

/**
 * How a round admits devices: a Privacy Pass token (RFC 9578 type 2) from `issuerName`, checked
 * against the issuer key `keyId` (token_key_id, RFC 9578 §6.5). One token per join, per round.
 */
export const RoundAdmissionInfo = z.strictObject({
  kind: z.literal("privacypass"),
  issuerName: IssuerName,
  keyId: Base64,
});
export type RoundAdmissionInfo = z.infer<typeof RoundAdmissionInfo>;

/** Public SecAgg parameters of a round, as devices see them at check-in. */
export const SecAggRoundInfo = z.object({
  /** Absent in a DP round: devices encode with the round's `dp` configuration instead. */
  encoding: z.optional(FixedPointEncoding),
  shards: z.int().check(z.positive()),
  stageSeconds: z.int().check(z.positive()),
  /** The smallest shard and its threshold t, so a device can check its policy before joining. */
  minShardSize: z.optional(z.int().check(z.positive())),
  threshold: z.optional(z.int().check(z.positive())),
  consistencyCheck: z.optional(z.boolean()),
  /** A DP round's noise shares, assumed colluders, delta and projected model epsilon. */
  privacy: z.optional(RoundPrivacyInfo),
  /** `maliciousServer` when the round was opened under that preset (devices check the numbers). */
  threat: z.optional(z.enum(THREAT_PRESETS)),
  /** Admission by token; absent: the round admits anyone with the publishable key (development). */
  admission: z.optional(RoundAdmissionInfo),
});

export type SecAggRoundInfo = z.infer<typeof SecAggRoundInfo>;

/** Public description of a round, as devices see it at check-in. */
export const RoundInfo = z.object({
  roundId: RoundId,
  modelId: ModelId,
  aggregation: AggregationKind,
  stage: RoundStage,
  dimension: z.int().check(z.positive()),
  minContributions: z.int().check(z.positive()),
  maxContributions: z.int().check(z.positive()),
  openedAt: EpochMillis,
  closesAt: EpochMillis,
  secagg: z.optional(SecAggRoundInfo),
  /** The round's public DP configuration (rotation seed, granularity, noise scale), if any. */
  dp: z.optional(DpRoundConfig),
  /** A trainer's round: what devices compute (absent in rounds an operator opened by hand). */
  task: z.optional(RoundTask),
});
export type RoundInfo = z.infer<typeof RoundInfo>;

/** Full round status, including the outcome once the round has ended. */
export const RoundStatus = z.object({
  ...RoundInfo.shape,
  v: WireVersion,
  participants: z.int().check(z.nonnegative()),
  contributions: z.int().check(z.nonnegative()),
  closedAt: z.nullable(EpochMillis),
  outcome: z
    .nullable(z.string())
    .check(z.describe("Why the round ended: `max-contributions`, `deadline`, or an abort reason")),
  modelVersion: z.nullable(z.int().check(z.positive())),
});
export type RoundStatus = z.infer<typeof RoundStatus>;

/** A device asks whether a round for `modelId` is open. It sends nothing about itself. */
export const CheckinRequest = z.strictObject({
  v: WireVersion,
  modelId: ModelId,
  sdkVersion: z.string().check(z.regex(/^[0-9A-Za-z.+-]{1,32}$/, "sdkVersion: 1-32 of [0-9A-Za-z.+-]")),
});
export type CheckinRequest = z.infer<typeof CheckinRequest>;

export const CheckinResponse = z.object({
  v: WireVersion,
  round: z.nullable(RoundInfo),
  latestModelVersion: z.nullable(z.int().check(z.positive())),
});
export type CheckinResponse = z.infer<typeof CheckinResponse>;

/** A device joins a collecting round and receives a fresh, round-scoped identity. */
/**
 * A join. `token` is a Privacy Pass token (standard base64 of its 354 bytes) for this round, when
 * the round admits by token (`RoundInfo.secagg.admission`).
 */
export const JoinRequest = z.strictObject({
  v: WireVersion,
  token: z.optional(Base64.check(z.maxLength(1024))),
});
export type JoinRequest = z.infer<typeof JoinRequest>;

export const JoinResponse = z.object({
  v: WireVersion,
  roundId: RoundId,
  participantId: ParticipantId,
  participantToken: ParticipantToken,
  dimension: z.int().check(z.positive()),
  closesAt: EpochMillis,
  /** In a SecAgg round: the shard this device was admitted to and its slot there. */
  secagg: z.optional(
    z.object({
      shard: z.int().check(z.nonnegative()),
      slot: z.int().check(z.nonnegative()),
      /** The shard pushes stage views over this socket (`./stage-push.ts`); absent: poll the view. */
      push: z.optional(StageSocketOffer),
    }),
  ),
});
export type JoinResponse = z.infer<typeof JoinResponse>;

/** A device's contribution: `vector` is base64 of `dimension` little-endian float64s. */
export const ContributionRequest = z.strictObject({
  v: WireVersion,
  participantId: ParticipantId,
  participantToken: ParticipantToken,
  vector: Base64,
});
export type ContributionRequest = z.infer<typeof ContributionRequest>;

export const ContributionResponse = z.object({
  v: WireVersion,
  accepted: z.literal(true),
  contributions: z.int().check(z.positive()),
  stage: RoundStage,
});
export type ContributionResponse = z.infer<typeof ContributionResponse>;

/** `GET /v1/tasks`: the tenant's declared models, each with its newest version and open round. */
export const TasksResponse = z.object({
  v: WireVersion,
  tasks: z.array(
    z.object({
      modelId: ModelId,
      kind: ModelKind,
      latestVersion: z.nullable(z.int().check(z.positive())),
      round: z.nullable(RoundInfo),
    }),
  ),
});
export type TasksResponse = z.infer<typeof TasksResponse>;
