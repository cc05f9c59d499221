import * as z from "zod/mini";
import { Base64, ModelId, RoundId, WireVersion } from "./common";
import { ModelKind, ModelParams } from "./training";

/** A published model version: the aggregate of one round. */
export const ModelVersion = z.object({
  v: WireVersion,
  modelId: ModelId,
  version: z.int().check(z.positive()),
  roundId: RoundId,
  dimension: z.int().check(z.positive()),
  contributions: z.int().check(z.positive()),
  aggregation: z.string(),
  weights: Base64.check(
    z.describe(
      "base64 of `dimension` little-endian float64s; an `fcf` model: its int8 item factors with a float32 scale per row",
    ),
  ),
  publishedAt: z.iso.datetime(),
  /** Set for a trainer's model: its kind and parameters (k-means: segments and tag thresholds). */
  kind: z.optional(ModelKind),
  params: z.optional(ModelParams),
});
export type ModelVersion = z.infer<typeof ModelVersion>;

/**
 * The strong ETag of a model version (RFC 9110 §8.8.3): versions are immutable, so the model id
 * and version name the bytes.
 */
export const modelEtag = (model: { modelId: string; version: number }): string =>
  `"${model.modelId}.${model.version}"`;

const { weights: _weights, params: _params, ...summaryShape } = ModelVersion.shape;
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
