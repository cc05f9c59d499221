/**
 * The RDP privacy accountant: composes privacy events over rounds and converts the result to
 * (epsilon, delta).
 *
 * RDP composes additively (Mironov 2017, Proposition 1), so `T` rounds of the same event cost
 * `T` times its per-round curve. The curve of each distinct event is computed once and memoised
 * (see {@link eventRdpCurve}); composing a round is then one vector addition.
 */

import { type DeltaResult, type EpsilonResult, rdpToDelta, rdpToEpsilon } from "./conversion.ts";
import { type ComposedEvent, type DpEvent, eventKey, eventRdpCurve } from "./events.ts";
import { assertInteger } from "./numeric.ts";
import { assertOrders, DEFAULT_RDP_ORDERS } from "./rdp.ts";

/** Options for {@link RdpAccountant}. */
export interface RdpAccountantOptions {
  /** RDP orders; defaults to dp_accounting's {@link DEFAULT_RDP_ORDERS}. */
  readonly orders?: readonly number[];
}

/**
 * Composes {@link DpEvent}s and reports (epsilon, delta).
 *
 * Invariant: `rdp()` always equals the sum over the event log of `count * eventRdpCurve(event)`,
 * so an auditor holding the log can recompute every figure.
 */
export class RdpAccountant {
  /** The RDP orders this accountant tracks. */
  readonly orders: readonly number[];
  private readonly curve: Float64Array;
  private readonly log: ComposedEvent[] = [];
  private lastKey = "";

  constructor(opts: RdpAccountantOptions = {}) {
    this.orders = Object.freeze([...(opts.orders ?? DEFAULT_RDP_ORDERS)]);
    assertOrders(this.orders);
    this.curve = new Float64Array(this.orders.length);
  }

  /** Rebuilds an accountant from an event log (the ledger's recorded events). */
  static fromEvents(events: readonly ComposedEvent[], opts: RdpAccountantOptions = {}): RdpAccountant {
    const acc = new RdpAccountant(opts);
    for (const e of events) acc.compose(e.event, e.count);
    return acc;
  }

  /** Adds `count` occurrences of `event`. Consecutive identical events share one log entry. */
  compose(event: DpEvent, count = 1): this {
    assertInteger("count", count, 1);
    const per = eventRdpCurve(event, this.orders);
    const c = this.curve;
    for (let k = 0; k < c.length; k++) c[k] = c[k]! + count * per[k]!;
    const key = eventKey(event);
    const last = this.log[this.log.length - 1];
    if (last && key === this.lastKey) {
      this.log[this.log.length - 1] = { event: last.event, count: last.count + count };
    } else {
      this.log.push({ event, count });
      this.lastKey = key;
    }
    return this;
  }

  /** The accumulated RDP at each order (a copy). */
  rdp(): Float64Array {
    return new Float64Array(this.curve);
  }

  /** The event log, run-length encoded. */
  events(): readonly ComposedEvent[] {
    return this.log.map((e) => ({ event: e.event, count: e.count }));
  }

  /** The smallest epsilon at `delta`, and the order attaining it. */
  getEpsilon(delta: number): EpsilonResult {
    return rdpToEpsilon(this.orders, this.curve, delta);
  }

  /** The smallest delta at `epsilon`, and the order attaining it. */
  getDelta(epsilon: number): DeltaResult {
    return rdpToDelta(this.orders, this.curve, epsilon);
  }

  /** An independent copy (e.g. to project the next round without committing it). */
  clone(): RdpAccountant {
    const c = new RdpAccountant({ orders: this.orders });
    c.curve.set(this.curve);
    for (const e of this.log) c.log.push({ event: e.event, count: e.count });
    c.lastKey = this.lastKey;
    return c;
  }
}

/** Inputs of {@link poissonGaussianEpsilon}. */
export interface PoissonGaussianQuery {
  /** Noise multiplier (noise stddev / L2 sensitivity). */
  readonly noiseMultiplier: number;
  /** Poisson sampling rate; 1 for no amplification. */
  readonly samplingRate: number;
  /** Number of rounds. */
  readonly steps: number;
  /** Target delta. */
  readonly delta: number;
  /** RDP orders (default {@link DEFAULT_RDP_ORDERS}). */
  readonly orders?: readonly number[];
}

/** Epsilon of `steps` rounds of the Poisson-subsampled Gaussian (the DP-SGD / DP-FedAvg question). */
export function poissonGaussianEpsilon(query: PoissonGaussianQuery): EpsilonResult {
  const acc = new RdpAccountant(query.orders ? { orders: query.orders } : {});
  acc.compose(
    { kind: "poisson_gaussian", samplingRate: query.samplingRate, noiseMultiplier: query.noiseMultiplier },
    query.steps,
  );
  return acc.getEpsilon(query.delta);
}

/**
 * The default delta for a population of `n` users: `1 / n^1.1`, strictly below `1/n` so that
 * a mechanism that publishes one random user's record in full cannot satisfy the guarantee.
 */
export function defaultDelta(population: number): number {
  assertInteger("population", population, 1);
  return population ** -1.1;
}
