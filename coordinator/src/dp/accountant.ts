/**
 * The RDP privacy accountant: composes privacy events over rounds and converts the result to
 * (epsilon, delta).
 *
 * RDP composes additively (Mironov 2017, Proposition 1), so `T` rounds of the same event cost
 * `T` times its per-round curve. The curve of each distinct event is computed once and memoised
 * (see {@link eventRdpCurve}); composing a round is then one vector addition.
 */

import {
  assertInteger,
  assertOrders,
  type ComposedEvent,
  DEFAULT_RDP_ORDERS,
  type DpEvent,
  eventKey,
  eventRdpCurve,
} from "@fedprofile/protocol/dp";
import { type DeltaResult, type EpsilonResult, rdpToDelta, rdpToEpsilon } from "./conversion.ts";

/** Same fields, same primitive values (events are flat records). */
function shallowEqual(a: DpEvent, b: DpEvent): boolean {
  if (a.kind !== b.kind) return false;
  let n = 0;
  for (const k in a) {
    if (Reflect.get(a, k) !== Reflect.get(b, k)) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

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
  private readonly log: { event: DpEvent; count: number }[] = [];
  private lastKey = "";
  private lastEvent: DpEvent | null = null;
  private lastCurve: Float64Array | null = null;
  /** Occurrences of `lastEvent` composed but not yet added into `curve` (RDP is linear). */
  private pending = 0;

  constructor(opts: RdpAccountantOptions = {}) {
    // The shared default array is already frozen; reusing it keeps the curve cache keyed once.
    this.orders = opts.orders ? Object.freeze([...opts.orders]) : DEFAULT_RDP_ORDERS;
    assertOrders(this.orders);
    this.curve = new Float64Array(this.orders.length);
  }

  /** Rebuilds an accountant from an event log (the ledger's recorded events). */
  static fromEvents(events: readonly ComposedEvent[], opts: RdpAccountantOptions = {}): RdpAccountant {
    const acc = new RdpAccountant(opts);
    for (const e of events) acc.compose(e.event, e.count);
    return acc;
  }

  private flush(): void {
    if (this.pending === 0 || !this.lastCurve) return;
    const c = this.curve;
    const per = this.lastCurve;
    const n = this.pending;
    for (let k = 0; k < c.length; k++) c[k] = c[k]! + n * per[k]!;
    this.pending = 0;
  }

  /**
   * Adds `count` occurrences of `event`. Consecutive identical events share one log entry, and
   * their curve is added once when next needed, so a round loop costs O(1) per round.
   */
  compose(event: DpEvent, count = 1): this {
    assertInteger("count", count, 1);
    if (event !== this.lastEvent && !(this.lastEvent && shallowEqual(event, this.lastEvent))) {
      const key = eventKey(event);
      if (key !== this.lastKey || !this.lastCurve) {
        const curve = eventRdpCurve(event, this.orders);
        this.flush();
        this.log.push({ event, count: 0 });
        this.lastKey = key;
        this.lastCurve = curve;
      }
      this.lastEvent = event;
    }
    this.pending += count;
    this.log[this.log.length - 1]!.count += count;
    return this;
  }

  /** The accumulated RDP at each order (a copy). */
  rdp(): Float64Array {
    this.flush();
    return new Float64Array(this.curve);
  }

  /** The event log, run-length encoded. */
  events(): readonly ComposedEvent[] {
    return this.log.map((e) => ({ event: e.event, count: e.count }));
  }

  /** The smallest epsilon at `delta`, and the order attaining it. */
  getEpsilon(delta: number): EpsilonResult {
    this.flush();
    return rdpToEpsilon(this.orders, this.curve, delta);
  }

  /** The smallest delta at `epsilon`, and the order attaining it. */
  getDelta(epsilon: number): DeltaResult {
    this.flush();
    return rdpToDelta(this.orders, this.curve, epsilon);
  }

  /** An independent copy (e.g. to project the next round without committing it). */
  clone(): RdpAccountant {
    this.flush();
    const c = new RdpAccountant({ orders: this.orders });
    c.curve.set(this.curve);
    for (const e of this.log) c.log.push({ event: e.event, count: e.count });
    c.lastKey = this.lastKey;
    c.lastEvent = this.lastEvent;
    c.lastCurve = this.lastCurve;
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
