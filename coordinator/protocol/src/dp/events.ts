/**
 * Privacy events: a serialisable description of every release, in the spirit of dp_accounting's
 * `DpEvent`. The ledger stores these, and an auditor recomputes the budget from them alone, so
 * each event carries every parameter its RDP curve depends on and nothing derived.
 */

import * as z from "zod/mini";
import {
  discreteGaussianRdp,
  distributedDiscreteGaussianRdpParams,
  type SkellamParams,
  skellamRdp,
} from "./distributed-accounting.ts";
import { assertOrders, gaussianRdp, laplaceRdp, poissonSubsampledGaussianRdp, zcdpRdp } from "./rdp.ts";

const rate = z.number().check(z.minimum(0), z.maximum(1));
const positive = z.number().check(z.positive());
const nonNegative = z.number().check(z.nonnegative());
const count = z.int().check(z.positive());

/** The Gaussian mechanism with noise multiplier `sigma / sensitivity`, no sampling. */
export const GaussianEvent = z.strictObject({ kind: z.literal("gaussian"), noiseMultiplier: nonNegative });
export type GaussianEvent = z.infer<typeof GaussianEvent>;

/**
 * The Poisson-subsampled Gaussian (MTZ19). `samplingRate` is the rate actually used for
 * amplification: 1 unless the cohort really was sampled uniformly from a known population.
 */
export const PoissonGaussianEvent = z.strictObject({
  kind: z.literal("poisson_gaussian"),
  samplingRate: rate,
  noiseMultiplier: nonNegative,
});
export type PoissonGaussianEvent = z.infer<typeof PoissonGaussianEvent>;

/** One round of the distributed discrete Gaussian (KLS21), in the client's units. */
export const DistributedDiscreteGaussianEvent = z.strictObject({
  kind: z.literal("distributed_discrete_gaussian"),
  samplingRate: rate,
  gamma: positive,
  localStddev: positive,
  noiseShares: count,
  l2Sensitivity: positive,
  beta: z.number().check(z.minimum(0), z.lt(1)),
  dim: count,
});
export type DistributedDiscreteGaussianEvent = z.infer<typeof DistributedDiscreteGaussianEvent>;

/** One round of the distributed Skellam mechanism (AKL21). */
export const SkellamEvent = z.strictObject({
  kind: z.literal("skellam"),
  samplingRate: rate,
  scale: positive,
  centralStddev: positive,
  l2Sensitivity: positive,
  beta: z.number().check(z.minimum(0), z.lt(1)),
  dim: count,
});
export type SkellamEvent = z.infer<typeof SkellamEvent>;

/** The Laplace mechanism with `eps0 = sensitivity / scale` (local-DP profile publishing). */
export const LaplaceEvent = z.strictObject({ kind: z.literal("laplace"), eps0: nonNegative });
export type LaplaceEvent = z.infer<typeof LaplaceEvent>;

/** A `rho`-zCDP release (e.g. a single discrete Gaussian, CKS20). */
export const ZcdpEvent = z.strictObject({ kind: z.literal("zcdp"), rho: nonNegative });
export type ZcdpEvent = z.infer<typeof ZcdpEvent>;

/** Any leaf privacy event. */
export const DpEvent = z.discriminatedUnion("kind", [
  GaussianEvent,
  PoissonGaussianEvent,
  DistributedDiscreteGaussianEvent,
  SkellamEvent,
  LaplaceEvent,
  ZcdpEvent,
]);
export type DpEvent = z.infer<typeof DpEvent>;

/** An event repeated `count` times (dp_accounting `SelfComposedDpEvent`). */
export const ComposedEvent = z.strictObject({ event: DpEvent, count });
export type ComposedEvent = z.infer<typeof ComposedEvent>;

const keyCache = new WeakMap<object, string>();

/**
 * A cache key for an event: its JSON. Events are treated as immutable, so the key is memoised
 * per object. Two equal events written with their fields in different orders get different
 * keys, which only costs a cache miss (and a separate log entry), never a wrong curve.
 */
export function eventKey(event: DpEvent): string {
  const hit = keyCache.get(event);
  if (hit !== undefined) return hit;
  const key = JSON.stringify(event);
  keyCache.set(event, key);
  return key;
}

const ordersKeyCache = new WeakMap<readonly number[], string>();

function ordersKey(orders: readonly number[]): string {
  let k = ordersKeyCache.get(orders);
  if (k === undefined) {
    k = orders.join(",");
    ordersKeyCache.set(orders, k);
  }
  return k;
}

function skellamParams(e: SkellamEvent): SkellamParams {
  return {
    samplingRate: e.samplingRate,
    scale: e.scale,
    centralStddev: e.centralStddev,
    l2Sensitivity: e.l2Sensitivity,
    beta: e.beta,
    dim: e.dim,
  };
}

/** The per-occurrence RDP of one event at one order. */
export function eventRdp(event: DpEvent, order: number): number {
  switch (event.kind) {
    case "gaussian":
      return gaussianRdp(event.noiseMultiplier, order);
    case "poisson_gaussian":
      return poissonSubsampledGaussianRdp(event.samplingRate, event.noiseMultiplier, order);
    case "distributed_discrete_gaussian":
      return discreteGaussianRdp(distributedDiscreteGaussianRdpParams(event), order);
    case "skellam":
      return skellamRdp(skellamParams(event), order);
    case "laplace":
      return laplaceRdp(event.eps0, order);
    case "zcdp":
      return zcdpRdp(event.rho, order);
  }
}

const MAX_CACHE = 512;
const curveCache = new Map<string, Map<string, Float64Array>>();
let cached = 0;

/**
 * The per-occurrence RDP curve of an event at `orders`, memoised: a federated model runs the
 * same event every round, so the expensive series is computed once per (event, orders).
 * The returned array is shared and must not be modified.
 */
export function eventRdpCurve(event: DpEvent, orders: readonly number[]): Float64Array {
  const ok = ordersKey(orders);
  const ek = eventKey(event);
  let byEvent = curveCache.get(ok);
  const hit = byEvent?.get(ek);
  if (hit) return hit;
  assertOrders(orders);
  const curve = new Float64Array(orders.length);
  for (let k = 0; k < orders.length; k++) curve[k] = eventRdp(event, orders[k]!);
  if (cached >= MAX_CACHE) clearRdpCache();
  if (!byEvent) {
    byEvent = new Map();
    curveCache.set(ok, byEvent);
  }
  byEvent.set(ek, curve);
  cached++;
  return curve;
}

/** Drops every memoised curve (benchmarks use it to time a cold start). */
export function clearRdpCache(): void {
  curveCache.clear();
  cached = 0;
}

/** Describes the trust model an event's noise implies, for ledger entries and reports. */
export function eventTrustModel(event: DpEvent): "distributed" | "central" | "local" {
  switch (event.kind) {
    case "distributed_discrete_gaussian":
    case "skellam":
      return "distributed";
    case "laplace":
      return "local";
    default:
      return "central";
  }
}
