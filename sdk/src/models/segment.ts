/**
 * This device's segment under a published k-means model: the nearest centroid. Kept apart from
 * the round half (`./kmeans.ts`) so `getProfile()` carries only this into the tracking core.
 */
import { nearestCentroid } from "@fedprofile/protocol/models";

/** The device's segment: the nearest published centroid. */
export interface SegmentAssignment {
  modelId: string;
  version: number;
  id: number;
  label: string;
  /** Euclidean distance to the centroid in the standardised space. */
  distance: number;
}

/** What the device needs of a published model to contribute to, or be assigned by, it. */
export interface KMeansCentroids {
  segments: ReadonlyArray<{ id: number; label: string; centroid: readonly number[] }>;
}

/** The segment of standardised vector `z` under a published model. */
export function assignSegment(
  model: KMeansCentroids & { modelId: string; version: number },
  z: readonly number[],
): SegmentAssignment {
  const { index, distance } = nearestCentroid(
    model.segments.map((s) => s.centroid),
    z,
  );
  const segment = model.segments[index];
  if (!segment) throw new RangeError("the model has no segments");
  return { modelId: model.modelId, version: model.version, id: segment.id, label: segment.label, distance };
}
