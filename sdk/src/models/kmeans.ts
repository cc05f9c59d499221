/**
 * The device half of federated k-means: what this device contributes to a round, and which
 * segment it is in. Pure: the profile vector comes in, a clipped vector goes out. The layout, and
 * with it the L2 sensitivity the DP layer calibrates for, is shared with the trainer
 * (`@fedprofile/protocol/models`).
 */
import {
  BLOCK,
  clipL2,
  fieldIndex,
  gridCell,
  histogramBin,
  histogramOffset,
  type KMeansLayoutPhase,
  type KMeansLayoutSpec,
  kmeansDimension,
  nearestCentroid,
} from "@fedprofile/protocol/models";
import type { KMeansCentroids } from "./segment";

/**
 * This device's vector for a round of `phase`: its standardised profile vector `z`, clipped to
 * `spec.clip`, in its cell's (init) or nearest centroid's (lloyd) block, with `countWeight` in the
 * count slot; in the init round, also one `histogramWeight` per histogram field. A Lloyd round has
 * one block per centroid of the base model (k, or up to `overseed · k` in the first). The payload's
 * shape depends only on the spec and the public base model, never on the device's data.
 */
export function contributeKMeans(
  spec: KMeansLayoutSpec,
  phase: KMeansLayoutPhase,
  base: KMeansCentroids | null,
  z: readonly number[],
): Float64Array {
  const centroids = base?.segments.length ?? spec.k;
  if (phase === "lloyd" && (!base || centroids < spec.k || centroids > spec.k * (spec.init.overseed ?? 1))) {
    throw new RangeError(
      `a lloyd round needs the base model's ${spec.k} to ${spec.k * (spec.init.overseed ?? 1)} centroids`,
    );
  }
  const out = new Float64Array(kmeansDimension(spec, phase, centroids));
  const clipped = clipL2(z, spec.clip);
  let block: number;
  if (phase === "init") {
    block = gridCell(spec, z);
    const offset = histogramOffset(spec);
    spec.init.histogramFields.forEach((field, i) => {
      const bin = histogramBin(spec.init.histogramBins, z[fieldIndex(field)] ?? 0);
      out[offset + i * spec.init.histogramBins + bin] = spec.init.histogramWeight;
    });
  } else {
    block = nearestCentroid(
      (base as KMeansCentroids).segments.map((s) => s.centroid),
      z,
    ).index;
  }
  out[block * BLOCK] = spec.countWeight;
  out.set(clipped, block * BLOCK + 1);
  return out;
}
