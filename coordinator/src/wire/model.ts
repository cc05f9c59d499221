import * as z from "zod";
import { Base64, ModelId, RoundId, WireVersion } from "./common";
import { KMeansModelParams } from "./training";

/** A published model version: the aggregate of one round. */
export const ModelVersion = z.object({
  v: WireVersion,
  modelId: ModelId,
  version: z.number().int().positive(),
  roundId: RoundId,
  dimension: z.number().int().positive(),
  contributions: z.number().int().positive(),
  aggregation: z.string(),
  weights: Base64.describe("base64 of `dimension` little-endian float64s"),
  publishedAt: z.string().datetime(),
  /** Set for a trainer's model: its kind and parameters (k-means: segments and tag thresholds). */
  kind: z.literal("kmeans").optional(),
  params: KMeansModelParams.optional(),
});
export type ModelVersion = z.infer<typeof ModelVersion>;

/**
 * The strong ETag of a model version (RFC 9110 §8.8.3): versions are immutable, so the model id
 * and version name the bytes.
 */
export const modelEtag = (model: { modelId: string; version: number }): string =>
  `"${model.modelId}.${model.version}"`;

/** Summary row of a model version, without its weights. */
export const ModelVersionSummary = ModelVersion.omit({ weights: true, params: true });
export type ModelVersionSummary = z.infer<typeof ModelVersionSummary>;

export const ModelVersionPage = z.object({
  v: WireVersion,
  items: z.array(ModelVersionSummary),
  nextCursor: z.string().nullable(),
});
export type ModelVersionPage = z.infer<typeof ModelVersionPage>;

export const HealthResponse = z.object({
  v: WireVersion,
  status: z.literal("ok"),
  service: z.literal("fedprofile-coordinator"),
  time: z.string().datetime(),
});
export type HealthResponse = z.infer<typeof HealthResponse>;
