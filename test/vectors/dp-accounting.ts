/**
 * Typed access to the reference DP-accounting vectors (`dp_accounting.json` beside this file, with
 * its README): dp_accounting 0.6.0, TF Privacy a749ce4, Opacus and mpmath-exact RDP.
 * Every section is validated with zod; non-finite numbers arrive as the string "Infinity".
 */

import * as z from "zod";
import raw from "./dp_accounting.json" with { type: "json" };

const num = z.union([z.number(), z.literal("Infinity"), z.literal("-Infinity")]).transform(Number);

const CurveRow = z.object({
  noise_multiplier: z.number(),
  sampling_rate: z.number(),
  rdp_dp_accounting: z.array(num),
  rdp_tfp_a749ce4: z.array(num),
  rdp_mpmath_exact: z.array(num),
});

const EpsRow = z.object({
  noise_multiplier: z.number(),
  sampling_rate: z.number(),
  steps: z.number(),
  delta: z.number(),
  epsilon: num,
  optimal_order: z.number(),
  epsilon_mpmath_exact_rdp: num,
  optimal_order_mpmath_exact_rdp: z.number(),
});

const DeltaRow = z.object({
  noise_multiplier: z.number(),
  sampling_rate: z.number(),
  steps: z.number(),
  epsilon: z.number(),
  delta: num,
  optimal_order: z.number(),
  delta_mpmath_exact_rdp: num,
  optimal_order_mpmath_exact_rdp: z.number(),
});

const Classic = z.object({
  name: z.string(),
  noise_multiplier: z.number(),
  sampling_rate: z.number(),
  steps: z.number(),
  delta: z.number(),
  default_orders: z.object({ epsilon: num, optimal_order: z.number(), epsilon_tfp_a749ce4: num }),
  tfp_cli_orders: z.object({ epsilon: num, optimal_order: z.number(), epsilon_tfp_a749ce4: num }),
  pld: z.object({ epsilon_pessimistic: num }).optional(),
});

const PldRow = z.object({
  noise_multiplier: z.number(),
  sampling_rate: z.number(),
  steps: z.number(),
  delta: z.number(),
  epsilon_pld_pessimistic: num,
  epsilon_prv_opacus_lower: num,
  epsilon_prv_opacus_upper: num,
  epsilon_rdp_dp_accounting: num,
});

const GaussRow = z.object({
  noise_multiplier: z.number(),
  compositions: z.number(),
  delta: z.number(),
  epsilon_rdp_default_orders: num,
  optimal_order: z.number(),
  epsilon_exact: num,
});

const GaussDeltaRow = z.object({
  noise_multiplier: z.number(),
  compositions: z.number(),
  epsilon: z.number(),
  delta_exact: num,
  delta_rdp_default_orders: num,
  optimal_order: z.number(),
});

const AnalyticRow = z.object({
  epsilon: z.number(),
  delta: z.number(),
  sensitivity: z.number(),
  sigma_dp_accounting_get_sigma_gaussian: z.number(),
});

const Zcdp = z.object({
  gaussian_rho: z.array(z.object({ sensitivity: z.number(), sigma: z.number(), rho: z.number() })),
  delta_for_epsilon_rows: z.array(
    z.object({
      rho: z.number(),
      epsilon: z.number(),
      delta_cks_default_orders: num,
      optimal_order: z.number(),
    }),
  ),
  rho_to_epsilon: z.object({
    rows: z.array(
      z.object({
        rho: z.number(),
        delta: z.number(),
        epsilon_cks_default_orders: num,
        optimal_order_default: z.number(),
        epsilon_exact_gaussian_same_rho: num,
      }),
    ),
  }),
  discrete_gaussian: z.object({
    rows: z.array(
      z.object({
        sigma: z.number(),
        sensitivity: z.number(),
        compositions: z.number(),
        delta: z.number(),
        epsilon_rdp_zcdp_default_orders: num,
        optimal_order: z.number(),
        epsilon_rdp_orders_2_to_128_256: num,
      }),
    ),
  }),
});

const Laplace = z.object({
  rows: z.array(
    z.object({
      laplace_scale_b: z.number(),
      compositions: z.number(),
      delta: z.number(),
      epsilon_rdp_default_orders: num,
      optimal_order: z.number(),
      epsilon_basic_composition: num,
    }),
  ),
  rdp_rows: z.array(z.object({ laplace_scale_b: z.number(), order: z.number(), rdp: num, rdp_mpmath: num })),
});

const CalibrationRow = z.object({
  target_epsilon: z.number(),
  delta: z.number(),
  sampling_rate: z.number(),
  steps: z.number(),
  noise_multiplier_rdp: z.number(),
  rdp_tol: z.number(),
  noise_multiplier_pld: z.number(),
  noise_multiplier_rdp_federated_tfp_a749ce4: z.number(),
});

const Distributed = z.object({
  ddgauss_epsilon_rows: z.array(
    z.object({
      gamma: z.number(),
      num_clients: z.number(),
      local_stddev: z.number(),
      l2_sens: z.number(),
      beta: z.number(),
      dim: z.number(),
      q: z.number(),
      steps: z.number(),
      delta: z.number(),
      epsilon: num,
      optimal_order: z.number(),
      epsilon_no_rounding_inflation: num,
      optimal_order_no_rounding: z.number(),
    }),
  ),
  compute_rdp_dgaussian_rows: z.array(
    z.object({
      q: z.number(),
      l1_scale: z.number(),
      l2_scale: z.number(),
      tau: z.number(),
      dim: z.number(),
      steps: z.number(),
      orders: z.array(z.number()),
      rdp: z.array(num),
    }),
  ),
  skellam_epsilon_rows: z.array(
    z.object({
      scale: z.number(),
      central_stddev: z.number(),
      l2_sens: z.number(),
      beta: z.number(),
      dim: z.number(),
      q: z.number(),
      steps: z.number(),
      delta: z.number(),
      epsilon: num,
      optimal_order: z.number(),
      epsilon_no_rounding_inflation: num,
      optimal_order_no_rounding: z.number(),
    }),
  ),
  skellam_rdp_single_rows: z.array(
    z.object({
      l1_sens: z.number(),
      l2_sens: z.number(),
      central_var: z.number(),
      scale: z.number(),
      rdp_by_order: z.record(z.string(), num),
    }),
  ),
});

const Vectors = z.object({
  meta: z.object({ rdp_default_orders: z.array(z.number()) }),
  rdp_curves_per_step: z.object({ rows: z.array(CurveRow) }),
  rdp_poisson_gaussian: z.object({ rows: z.array(EpsRow) }),
  rdp_poisson_gaussian_delta_for_epsilon: z.object({ rows: z.array(DeltaRow) }),
  dpsgd_classic_cases: z.array(Classic),
  pld_poisson_gaussian: z.object({ rows: z.array(PldRow) }),
  gaussian_no_subsampling: z.object({
    rows: z.array(GaussRow),
    delta_for_epsilon_rows: z.array(GaussDeltaRow),
    analytic_gaussian_sigma_rows: z.array(AnalyticRow),
  }),
  zcdp: Zcdp,
  laplace: Laplace,
  calibration: z.object({ rows: z.array(CalibrationRow) }),
  distributed_dp: Distributed,
});

/** The parsed reference vectors. */
export const dpVectors = Vectors.parse(raw);
export type DpVectors = z.infer<typeof Vectors>;

/** `|a - b| / |b|` (absolute difference when `b` is 0). */
export function relErr(a: number, b: number): number {
  if (a === b) return 0;
  return b === 0 ? Math.abs(a) : Math.abs(a - b) / Math.abs(b);
}
