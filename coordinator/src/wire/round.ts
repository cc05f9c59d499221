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

/** How a round combines contributions. `plain-sum` is the walking skeleton's plaintext sum. */
export const AggregationKind = z.enum(["plain-sum"]);
export type AggregationKind = z.infer<typeof AggregationKind>;

/** Round lifecycle: collecting contributions, then closed (published) or aborted. */
export const RoundStage = z.enum(["collecting", "closed", "aborted"]);
export type RoundStage = z.infer<typeof RoundStage>;

/** Maximum vector dimension a round may declare. */
export const MAX_DIMENSION = 1 << 20;

/** Operator request (secret key) to open a round for a model. */
export const OpenRoundRequest = z
  .object({
    v: WireVersion,
    modelId: ModelId,
    dimension: z.number().int().min(1).max(MAX_DIMENSION),
    minContributions: z.number().int().min(1).max(100_000),
    maxContributions: z.number().int().min(1).max(100_000),
    deadlineSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600),
  })
  .strict()
  .refine((r) => r.maxContributions >= r.minContributions, {
    message: "maxContributions must be at least minContributions",
    path: ["maxContributions"],
  });
export type OpenRoundRequest = z.infer<typeof OpenRoundRequest>;

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
