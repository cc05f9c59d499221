import * as z from "zod";
import {
  Base64,
  EpochMillis,
  ModelId,
  ParticipantId,
  ParticipantToken,
  RoundId,
  WireVersion,
} from "./common";

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

/** Operator options of a SecAgg round. */
export const SecAggRoundOptions = z
  .object({
    encoding: FixedPointEncoding,
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
  })
  .strict()
  .refine((r) => r.maxContributions >= r.minContributions, {
    message: "maxContributions must be at least minContributions",
    path: ["maxContributions"],
  })
  .refine((r) => (r.aggregation === "secagg") === (r.secagg !== undefined), {
    message: 'secagg options are required for, and only for, aggregation "secagg"',
    path: ["secagg"],
  });
export type OpenRoundRequest = z.infer<typeof OpenRoundRequest>;
/** The request as a client writes it (defaults may be omitted). */
export type OpenRoundInput = z.input<typeof OpenRoundRequest>;

/** Public SecAgg parameters of a round, as devices see them at check-in. */
export const SecAggRoundInfo = z.object({
  encoding: FixedPointEncoding,
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
