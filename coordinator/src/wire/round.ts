import * as z from "zod";
import { DpRoundConfig } from "../dp/config";
import {
  Base64,
  EpochMillis,
  ModelId,
  ParticipantId,
  ParticipantToken,
  RoundId,
  WireVersion,
} from "./common";
import { RoundTask } from "./training";

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
export const FixedPointEncoding = z
  .object({
    kind: z.literal("fixed-point"),
    clip: z.number().positive().max(1e12).describe("values are clipped to [-clip, clip]"),
    valueBits: z.number().int().min(1).max(24),
  })
  .strict();
export type FixedPointEncoding = z.infer<typeof FixedPointEncoding>;

/**
 * Operator options of a differentially private round (SecAgg rounds only). The coordinator plans
 * the public {@link DpRoundConfig} from them when the round opens, calibrated for the fewest noise
 * shares any released sum can carry, and refuses the round if the model's budget cap would be
 * passed.
 */
export const DpRoundRequest = z
  .object({
    /**
     * `distributed_discrete_gaussian` (Kairouz, Liu & Steinke 2021): devices add the noise before
     * masking, so even the coordinator sees only a noised sum. `central_gaussian`: the
     * coordinator adds Gaussian noise after unmasking (it must be trusted with the exact sum).
     */
    mechanism: z
      .enum(["distributed_discrete_gaussian", "central_gaussian"])
      .default("distributed_discrete_gaussian"),
    /** L2 clip of each device's update. */
    clipNorm: z.number().positive().max(1e9),
    /** The epsilon the noise is calibrated to reach over `rounds` such rounds (at the budget's delta). */
    targetEpsilon: z.number().positive().max(1000).optional(),
    rounds: z.number().int().min(1).max(100_000).optional(),
    /** Central mechanism only: the noise multiplier itself, instead of a target. */
    noiseMultiplier: z.number().positive().max(1000).optional(),
    /**
     * The fewest devices whose noise any sum the coordinator unmasks must carry: a shard with fewer
     * masked inputs aborts before unmasking, and the noise is calibrated for this many shares
     * instead of the SecAgg threshold t (default t). Raising it towards the expected turnout cuts
     * the noise; the price is that a round with more dropouts aborts.
     */
    minNoiseShares: z.number().int().min(1).max(65_536).optional(),
    /** Bits m of the modular arithmetic (KLS21 §4.4); the upload is m bits per coordinate. */
    modulusBits: z.number().int().min(8).max(32).default(24),
    /**
     * Adaptive clipping (Andrew et al. 2021): `clipNorm` is the first round's clip, and each round
     * releases a noised count of devices within the clip, in the same vector and budget, from
     * which the next round's clip follows the target quantile.
     */
    adaptiveClipping: z
      .object({
        targetQuantile: z.number().gt(0).lt(1),
        learningRate: z.number().positive().max(10).default(0.2),
        countStddev: z.number().positive().max(1e9),
        minClip: z.number().positive().optional(),
        maxClip: z.number().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((r) => (r.targetEpsilon === undefined) === (r.rounds === undefined), {
    message: "give targetEpsilon and rounds together",
    path: ["rounds"],
  })
  .refine((r) => r.targetEpsilon !== undefined || r.noiseMultiplier !== undefined, {
    message: "give targetEpsilon with rounds, or (central_gaussian) noiseMultiplier",
    path: ["targetEpsilon"],
  })
  .refine((r) => r.noiseMultiplier === undefined || r.mechanism === "central_gaussian", {
    message:
      "noiseMultiplier applies to central_gaussian only; distributed rounds calibrate from targetEpsilon",
    path: ["noiseMultiplier"],
  });
export type DpRoundRequest = z.infer<typeof DpRoundRequest>;

/** Operator options of a SecAgg round. */
export const SecAggRoundOptions = z
  .object({
    /** Fixed-point encoding of a round without DP; a DP round's encoding comes from its `dp` plan. */
    encoding: FixedPointEncoding.optional(),
    /** Largest shard: a larger cohort is split over several shards (hierarchical aggregation). */
    maxShardSize: z.number().int().min(2).max(65_536).default(1000),
    /** Smallest shard the operator accepts: each shard's sum is revealed to the coordinator. */
    minShardSize: z.number().int().min(2).max(65_536).default(100),
    /** Neighbour-graph degree and threshold; chosen from the shard size when omitted. */
    k: z.number().int().min(2).max(65_536).optional(),
    t: z.number().int().min(1).max(65_536).optional(),
    consistencyCheck: z.boolean().default(true),
    /** Time limit of each protocol stage; a device that misses one is dropped. */
    stageSeconds: z
      .number()
      .int()
      .min(1)
      .max(24 * 3600)
      .default(60),
  })
  .strict();
export type SecAggRoundOptions = z.infer<typeof SecAggRoundOptions>;

/** Operator request (secret key) to open a round for a model. */
export const OpenRoundRequest = z
  .object({
    v: WireVersion,
    modelId: ModelId,
    dimension: z.number().int().min(1).max(MAX_DIMENSION),
    minContributions: z.number().int().min(1).max(100_000),
    /** The most devices that may contribute; in a SecAgg round, the cohort size. */
    maxContributions: z.number().int().min(1).max(100_000),
    deadlineSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600),
    aggregation: AggregationKind.default("plain-sum"),
    /** Required when, and only when, `aggregation` is `secagg`. */
    secagg: SecAggRoundOptions.optional(),
    /** Differential privacy for this round (needs `aggregation: "secagg"`). */
    dp: DpRoundRequest.optional(),
  })
  .strict()
  .refine((r) => r.maxContributions >= r.minContributions, {
    message: "maxContributions must be at least minContributions",
    path: ["maxContributions"],
  })
  .refine((r) => (r.aggregation === "secagg") === (r.secagg !== undefined), {
    message: 'secagg options are required for, and only for, aggregation "secagg"',
    path: ["secagg"],
  })
  .refine((r) => r.dp === undefined || r.aggregation === "secagg", {
    message: 'dp needs aggregation "secagg"',
    path: ["dp"],
  })
  .refine((r) => r.secagg === undefined || (r.secagg.encoding === undefined) === (r.dp !== undefined), {
    message: "a SecAgg round takes secagg.encoding without dp, and no encoding with dp (the DP plan sets it)",
    path: ["secagg", "encoding"],
  });
export type OpenRoundRequest = z.infer<typeof OpenRoundRequest>;
/** The request as a client writes it (defaults may be omitted). */
export type OpenRoundInput = z.input<typeof OpenRoundRequest>;

/** Public SecAgg parameters of a round, as devices see them at check-in. */
export const SecAggRoundInfo = z.object({
  /** Absent in a DP round: devices encode with the round's `dp` configuration instead. */
  encoding: FixedPointEncoding.optional(),
  shards: z.number().int().positive(),
  stageSeconds: z.number().int().positive(),
});
export type SecAggRoundInfo = z.infer<typeof SecAggRoundInfo>;

/** Public description of a round, as devices see it at check-in. */
export const RoundInfo = z.object({
  roundId: RoundId,
  modelId: ModelId,
  aggregation: AggregationKind,
  stage: RoundStage,
  dimension: z.number().int().positive(),
  minContributions: z.number().int().positive(),
  maxContributions: z.number().int().positive(),
  openedAt: EpochMillis,
  closesAt: EpochMillis,
  secagg: SecAggRoundInfo.optional(),
  /** The round's public DP configuration (rotation seed, granularity, noise scale), if any. */
  dp: DpRoundConfig.optional(),
  /** A trainer's round: what devices compute (absent in rounds an operator opened by hand). */
  task: RoundTask.optional(),
});
export type RoundInfo = z.infer<typeof RoundInfo>;

/** Full round status, including the outcome once the round has ended. */
export const RoundStatus = RoundInfo.extend({
  v: WireVersion,
  participants: z.number().int().nonnegative(),
  contributions: z.number().int().nonnegative(),
  closedAt: EpochMillis.nullable(),
  outcome: z
    .string()
    .nullable()
    .describe("Why the round ended: `max-contributions`, `deadline`, or an abort reason"),
  modelVersion: z.number().int().positive().nullable(),
});
export type RoundStatus = z.infer<typeof RoundStatus>;

/** A device asks whether a round for `modelId` is open. It sends nothing about itself. */
export const CheckinRequest = z
  .object({
    v: WireVersion,
    modelId: ModelId,
    sdkVersion: z.string().regex(/^[0-9A-Za-z.+-]{1,32}$/, "sdkVersion: 1-32 of [0-9A-Za-z.+-]"),
  })
  .strict();
export type CheckinRequest = z.infer<typeof CheckinRequest>;

export const CheckinResponse = z.object({
  v: WireVersion,
  round: RoundInfo.nullable(),
  latestModelVersion: z.number().int().positive().nullable(),
});
export type CheckinResponse = z.infer<typeof CheckinResponse>;

/** A device joins a collecting round and receives a fresh, round-scoped identity. */
export const JoinRequest = z.object({ v: WireVersion }).strict();
export type JoinRequest = z.infer<typeof JoinRequest>;

export const JoinResponse = z.object({
  v: WireVersion,
  roundId: RoundId,
  participantId: ParticipantId,
  participantToken: ParticipantToken,
  dimension: z.number().int().positive(),
  closesAt: EpochMillis,
  /** In a SecAgg round: the shard this device was admitted to and its slot there. */
  secagg: z
    .object({ shard: z.number().int().nonnegative(), slot: z.number().int().nonnegative() })
    .optional(),
});
export type JoinResponse = z.infer<typeof JoinResponse>;

/** A device's contribution: `vector` is base64 of `dimension` little-endian float64s. */
export const ContributionRequest = z
  .object({
    v: WireVersion,
    participantId: ParticipantId,
    participantToken: ParticipantToken,
    vector: Base64,
  })
  .strict();
export type ContributionRequest = z.infer<typeof ContributionRequest>;

export const ContributionResponse = z.object({
  v: WireVersion,
  accepted: z.literal(true),
  contributions: z.number().int().positive(),
  stage: RoundStage,
});
export type ContributionResponse = z.infer<typeof ContributionResponse>;

/** `GET /v1/tasks`: the tenant's declared models, each with its newest version and open round. */
export const TasksResponse = z.object({
  v: WireVersion,
  tasks: z.array(
    z.object({
      modelId: ModelId,
      kind: z.literal("kmeans"),
      latestVersion: z.number().int().positive().nullable(),
      round: RoundInfo.nullable(),
    }),
  ),
});
export type TasksResponse = z.infer<typeof TasksResponse>;
