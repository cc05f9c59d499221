/**
 * The public transform behind the standardised profile vector, shared by the device (which
 * computes `z`) and the trainer (which reads centroids back in real units). Because it is public
 * and fixed, standardising spends no privacy budget (issue 9: "a public, documented transform").
 *
 * Per field i: `z_i = clamp((g_i(x) − μ_i) / σ_i, −4, 4)` with `g = log1p` for counts, days and
 * amounts (signed for monetary, which refunds can make negative) and the identity for shares.
 * `μ`, `σ` were measured on the 4,338 customers of UCI Online Retail replayed as of 2011-12-10
 * (`fedprofile replay --reference`, re-measured for per-order refunds and per-unit prices),
 * except view-to-purchase (a prior: 10% ± 15%).
 */

/** Field names, in vector order. */
export const VECTOR_FIELDS = [
  "recency",
  "frequency",
  "monetary",
  "avg_order_value",
  "tenure",
  "activity",
  "avg_unit_price",
  "refund_share",
  "view_to_purchase",
] as const;

/** One field name of the vector. */
export type VectorField = (typeof VECTOR_FIELDS)[number];

/** Reference mean and standard deviation of each transformed field. */
export type VectorReference = Record<VectorField, { mean: number; sd: number }>;

/** Recency imputed for visitors without an order, and the cap of recency (days). */
export const RECENCY_CAP_DAYS = 730;

/** Largest |z| of a coordinate: the vector's L2 norm is at most 4·√9 = 12. */
export const Z_CLAMP = 4;

/** Default reference statistics (see the module comment for their provenance). */
export const DEFAULT_VECTOR_REFERENCE: VectorReference = {
  recency: { mean: 3.8284, sd: 1.3444 },
  frequency: { mean: 1.3456, sd: 0.683 },
  monetary: { mean: 6.5572, sd: 1.2938 },
  avg_order_value: { mean: 5.6511, sd: 0.7447 },
  tenure: { mean: 5.1527, sd: 0.8844 },
  activity: { mean: 0.1636, sd: 0.2833 },
  avg_unit_price: { mean: 1.0748, sd: 0.3867 },
  refund_share: { mean: 0.0186, sd: 0.075 },
  view_to_purchase: { mean: 0.1, sd: 0.15 },
};

/** Fields whose `g` is the identity (shares in [0, 1]); every other field is log1p-compressed. */
const SHARE_FIELDS: ReadonlySet<VectorField> = new Set(["refund_share", "view_to_purchase"]);

/** Real-unit value of coordinate `z` of `field`: the inverse of the transform (before the clamp). */
export function realValue(
  field: VectorField,
  z: number,
  reference: VectorReference = DEFAULT_VECTOR_REFERENCE,
) {
  const { mean, sd } = reference[field];
  const g = z * sd + mean;
  if (SHARE_FIELDS.has(field)) return g;
  if (field === "monetary") return Math.sign(g) * Math.expm1(Math.abs(g));
  return Math.expm1(g);
}

/** A point of the standardised space, in real units per field (days, orders, money, shares). */
export function realUnits(
  point: ArrayLike<number>,
  reference: VectorReference = DEFAULT_VECTOR_REFERENCE,
): Record<VectorField, number> {
  const out = {} as Record<VectorField, number>;
  VECTOR_FIELDS.forEach((field, i) => {
    out[field] = realValue(field, point[i] ?? 0, reference);
  });
  return out;
}
