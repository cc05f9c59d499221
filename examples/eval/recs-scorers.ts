/**
 * The device's own ranking for the recs eval: the factor score blended with the DP popularity
 * exactly as `recommendItems` does (`blendPopularity`, `popularityZ` in the SDK).
 */
import { confidence, gramOf } from "@fedprofile/coordinator/models";
import type { FcfSpec } from "@fedprofile/coordinator/wire";
import {
  blendPopularity,
  type FcfModel,
  popularityZ,
  solveUserFactor,
  type Touched,
} from "../../sdk/src/models/fcf";
import { evaluateRanking, factorScorer, type RecsData, type Scorer, validationSplit } from "./recs-data";

/** (x·y_j)/sd + weight·z_j over the published factors, the users' factors and the DP counts. */
export function fcfScorer(
  data: RecsData,
  factors: Float32Array,
  users: Float64Array[],
  popularity: readonly number[],
  rank: number,
  weight: number,
): Scorer {
  const plain = factorScorer(factors, users, rank);
  if (weight === 0) return plain;
  if (popularity.length !== data.items.length) throw new RangeError("fcfScorer: popularity is not per item");
  const z = popularityZ(popularity);
  return (u, index) => {
    const s = plain(u, index);
    blendPopularity(s, z, weight);
    return s;
  };
}

/** The blend weights `chooseBlendWeight` tries. */
export const BLEND_WEIGHTS = [0, 0.25, 0.5, 1, 2, 4, 8] as const;

/**
 * The popularity weight of the FCF ranking, chosen on a validation split carved from the
 * training interactions (`validationSplit`, as ALS's α and λ are): each validation user's factor
 * is re-solved on the device's way without the validation item, against the trained factors, and
 * the weight with the best HR@10 (sampled + full) wins. The trained factors saw the validation
 * items, which favours the factor score (a smaller weight); under DP the factors' dependence on
 * any one user is bounded by ε. At most `maxUsers` validation users (the first ones) are scored.
 */
export function chooseBlendWeight(
  data: RecsData,
  factors: Float32Array,
  popularity: readonly number[],
  spec: Pick<FcfSpec, "rank" | "lambda" | "alpha" | "purchaseWeight" | "cartWeight" | "viewWeight">,
  seed: number,
  maxUsers = 10_000,
): { weight: number; validation: Array<{ weight: number; hr10Sampled: number; hr10Full: number }> } {
  const r = spec.rank;
  const split = validationSplit(data, seed + 1);
  const validation: RecsData = { ...split, users: split.users.slice(0, maxUsers) };
  const model = evalModel(factors, popularity, r, data.items);
  const weights = {
    alpha: spec.alpha,
    purchase: spec.purchaseWeight,
    cart: spec.cartWeight,
    view: spec.viewWeight,
  };
  const users = validation.users.map((u) =>
    solveUserFactor(
      spec,
      model,
      [...u.items]
        .map(
          ([row, w]): Touched => ({
            row,
            purchases: w,
            confidence: confidence(weights, { purchases: w, carts: 0, views: 0 }),
          }),
        )
        .sort((a, b) => a.row - b.row),
    ),
  );
  const out: Array<{ weight: number; hr10Sampled: number; hr10Full: number }> = [];
  let best = { weight: 0, score: -1 };
  for (const weight of BLEND_WEIGHTS) {
    const m = evaluateRanking(
      validation,
      fcfScorer(validation, factors, users, popularity, r, weight),
      seed + 2,
    );
    out.push({ weight, hr10Sampled: m.hr10Sampled, hr10Full: m.hr10Full });
    if (m.hr10Sampled + m.hr10Full > best.score) best = { weight, score: m.hr10Sampled + m.hr10Full };
  }
  return { weight: best.weight, validation: out };
}

/** An `FcfModel` over eval factors (the published, dequantised ones), for the SDK's solve. */
function evalModel(
  factors: Float32Array,
  popularity: readonly number[],
  rank: number,
  items: string[],
): FcfModel {
  return {
    modelId: "eval",
    version: 1,
    rank,
    items,
    categories: null,
    rows: new Map(),
    factors,
    gram: Float64Array.from(gramOf(factors, items.length, rank)),
    popularity,
  };
}
