/**
 * The standardised profile vector: a fixed-length numeric summary of the features, ready for
 * clustering (federated k-means over devices) and for clipping under DP.
 *
 * Transform, per field i: `z_i = clamp((g_i(features) − μ_i) / σ_i, −4, 4)`, where
 * - `g` compresses heavy tails: `log1p` for counts, days and amounts (monetary, which refunds
 *   can make negative, uses the signed `sign(m)·log1p(|m|)`); shares stay in [0, 1];
 * - missing values are imputed: no order yet means recency = `RECENCY_CAP_DAYS` (never bought
 *   ≈ bought long ago) and average order value 0; an unknown price level or conversion rate
 *   takes the reference mean, so it contributes z = 0;
 * - `μ`, `σ` are reference statistics. The defaults were measured on the 4,338 customers of
 *   UCI Online Retail replayed as of 2011-12-10 (`fedprofile replay --reference`, re-measured
 *   for issue 14's per-order refunds and per-unit prices), except
 *   view-to-purchase, which that data set cannot show (a prior: 10% ± 15%). A global model
 *   may ship its own reference (`profileVector(features, reference)`).
 * - the clamp at ±4 σ bounds every coordinate, so the vector's L2 norm is at most
 *   4·√(dimension): a known sensitivity bound for clipping.
 */
import {
  DEFAULT_VECTOR_REFERENCE,
  RECENCY_CAP_DAYS,
  VECTOR_FIELDS,
  type VectorField,
  type VectorReference,
  Z_CLAMP,
} from "@fedprofile/protocol/models";
import type { Features } from "./features";

export {
  DEFAULT_VECTOR_REFERENCE,
  RECENCY_CAP_DAYS,
  VECTOR_FIELDS,
  type VectorField,
  type VectorReference,
  Z_CLAMP,
} from "@fedprofile/protocol/models";

const signedLog1p = (x: number) => Math.sign(x) * Math.log1p(Math.abs(x));

/**
 * The transformed, not yet standardised, value `g_i` of each field (`null` = missing, to be
 * imputed with the reference mean).
 */
export function transformedFields(features: Features): Record<VectorField, number | null> {
  const recency = Math.min(Math.max(features.recencyDays ?? RECENCY_CAP_DAYS, 0), RECENCY_CAP_DAYS);
  return {
    recency: Math.log1p(recency),
    frequency: Math.log1p(features.frequency),
    monetary: signedLog1p(features.monetary),
    avg_order_value: Math.log1p(Math.max(features.avgOrderValue ?? 0, 0)),
    tenure: Math.log1p(Math.max(features.tenureDays ?? 0, 0)),
    activity: Math.log1p(features.activity),
    avg_unit_price: features.avgUnitPrice === null ? null : Math.log1p(features.avgUnitPrice),
    refund_share: features.revenue > 0 ? Math.min(features.refunds / features.revenue, 1) : 0,
    view_to_purchase: features.viewToPurchase,
  };
}

/** The standardised vector (see the module comment), in `VECTOR_FIELDS` order. */
export function profileVector(
  features: Features,
  reference: VectorReference = DEFAULT_VECTOR_REFERENCE,
): number[] {
  const values = transformedFields(features);
  return VECTOR_FIELDS.map((field) => {
    const { mean, sd } = reference[field];
    const value = values[field];
    if (value === null || sd <= 0) return 0;
    return Math.min(Math.max((value - mean) / sd, -Z_CLAMP), Z_CLAMP);
  });
}
