/**
 * Conversion of an RDP curve to an (epsilon, delta) guarantee.
 *
 * The rule set is Google dp_accounting's `compute_epsilon` / `compute_delta`
 * (rdp_privacy_accountant.py, commit b5b0286e313b), which implements the improved conversion of
 * Canonne, Kamath & Steinke 2020 (arXiv:2004.00010, Proposition 12) and Asoodeh et al. 2020
 * (arXiv:2001.05990, Eq. 20):
 *   `eps(alpha) = rdp + log1p(-1/alpha) - log(delta * alpha) / (alpha - 1)`
 * minimised over the orders, together with the KL-divergence shortcut
 * `delta^2 + expm1(-rdp) > 0  =>  eps = 0` (Pinsker-type bound `delta <= sqrt(1 - exp(-KL))`).
 * Orders at or below 1.01 are not used (the bound is numerically unstable as alpha -> 1).
 */

import { assertFinite, assertInRange } from "./numeric.ts";

/** An epsilon (or delta) and the order that attained it. */
export interface EpsilonResult {
  /** The privacy loss bound epsilon. */
  readonly epsilon: number;
  /** The RDP order that attains the minimum (0 when no order applies). */
  readonly optimalOrder: number;
}

/** A delta and the order that attained it. */
export interface DeltaResult {
  /** The failure probability bound delta. */
  readonly delta: number;
  /** The RDP order that attains the minimum. */
  readonly optimalOrder: number;
}

function checkCurve(orders: ArrayLike<number>, rdp: ArrayLike<number>): void {
  if (orders.length !== rdp.length) {
    throw new RangeError(`orders and rdp must have the same length (${orders.length} vs ${rdp.length})`);
  }
  if (orders.length === 0) throw new RangeError("orders must not be empty");
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i]!;
    if (!(a >= 1)) throw new RangeError(`Renyi divergence order must be at least 1, got ${a}`);
    if (Number.isNaN(rdp[i]!)) throw new TypeError(`rdp[${i}] is NaN`);
  }
}

/**
 * The smallest epsilon for which the RDP curve implies (epsilon, delta)-DP, and its order
 * (dp_accounting `compute_epsilon`). `delta = 0` gives 0 only when every RDP value is 0.
 */
export function rdpToEpsilon(
  orders: ArrayLike<number>,
  rdp: ArrayLike<number>,
  delta: number,
): EpsilonResult {
  assertInRange("delta", delta, 0, 1);
  checkCurve(orders, rdp);
  if (delta === 0) {
    for (let i = 0; i < rdp.length; i++) {
      if (rdp[i] !== 0) return { epsilon: Number.POSITIVE_INFINITY, optimalOrder: 0 };
    }
    return { epsilon: 0, optimalOrder: 0 };
  }
  let best = Number.POSITIVE_INFINITY;
  let bestIdx = 0;
  const logDelta = Math.log(delta);
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i]!;
    const r = rdp[i]!;
    let eps: number;
    if (r < 0) {
      // dp_accounting treats a negative divergence (numerical noise from extreme events) as 0.
      eps = 0;
    } else if (delta * delta + Math.expm1(-r) > 0) {
      eps = 0;
    } else if (a > 1.01) {
      eps = r + Math.log1p(-1 / a) - (logDelta + Math.log(a)) / (a - 1);
    } else {
      eps = Number.POSITIVE_INFINITY;
    }
    // Strict "<" keeps the first minimiser, like numpy.argmin.
    if (eps < best || (i === 0 && eps === best)) {
      best = eps;
      bestIdx = i;
    }
  }
  return { epsilon: Math.max(0, best), optimalOrder: orders[bestIdx]! };
}

/**
 * The smallest delta for which the RDP curve implies (epsilon, delta)-DP, and its order
 * (dp_accounting `compute_delta`): the minimum over orders of
 * `min(0.5 log1p(-exp(-rdp)), (alpha - 1)(rdp - eps + log1p(-1/alpha)) - log(alpha))` in log space.
 */
export function rdpToDelta(orders: ArrayLike<number>, rdp: ArrayLike<number>, epsilon: number): DeltaResult {
  assertFinite("epsilon", epsilon);
  if (epsilon < 0) throw new RangeError(`epsilon cannot be negative, got ${epsilon}`);
  checkCurve(orders, rdp);
  let best = Number.POSITIVE_INFINITY;
  let bestIdx = 0;
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i]!;
    const r = rdp[i]!;
    let logDelta: number;
    if (r <= 0) logDelta = Number.NEGATIVE_INFINITY;
    else logDelta = 0.5 * Math.log1p(-Math.exp(-r));
    if (a > 1.01) {
      const bound = (a - 1) * (r - epsilon + Math.log1p(-1 / a)) - Math.log(a);
      if (bound < logDelta) logDelta = bound;
    }
    if (logDelta < best || (i === 0 && logDelta === best)) {
      best = logDelta;
      bestIdx = i;
    }
  }
  return { delta: Math.min(Math.exp(best), 1), optimalOrder: orders[bestIdx]! };
}
