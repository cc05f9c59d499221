import * as z from "zod/mini";
import { Base64, ModelId, RoundId, WireVersion } from "./common";

/** A published model version: the aggregate of one round. */
export const ModelVersion = z.object({
  v: WireVersion,
  modelId: ModelId,
  version: z.int().check(z.positive()),
  roundId: RoundId,
  dimension: z.int().check(z.positive()),
  contributions: z.int().check(z.positive()),
  aggregation: z.string(),
  weights: Base64.check(z.describe("base64 of `dimension` little-endian float64s")),
  publishedAt: z.iso.datetime(),
});
export type ModelVersion = z.infer<typeof ModelVersion>;

const { weights: _weights, ...summaryShape } = ModelVersion.shape;
/** Summary row of a model version, without its weights (shapes spread rather than `z.omit`, which costs the SDK's bundle). */
export const ModelVersionSummary = z.object(summaryShape);
export type ModelVersionSummary = z.infer<typeof ModelVersionSummary>;

export const ModelVersionPage = z.object({
  v: WireVersion,
  items: z.array(ModelVersionSummary),
  nextCursor: z.nullable(z.string()),
});
export type ModelVersionPage = z.infer<typeof ModelVersionPage>;

export const HealthResponse = z.object({
  v: WireVersion,
  status: z.literal("ok"),
  service: z.literal("fedprofile-coordinator"),
  time: z.iso.datetime(),
});
export type HealthResponse = z.infer<typeof HealthResponse>;
