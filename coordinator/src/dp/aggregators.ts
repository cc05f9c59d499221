/**
 * Composable aggregation processes in the style of TensorFlow Federated's aggregators
 * (`tff.aggregators`): a factory returns `{ init(), next(state, inputs) }`, `next` returns
 * `{ state, result, measurements }`, and privacy and robustness come as decorators around an
 * inner sum. The state is an explicit record that carries the accounting events, so a simulation
 * can hand them to the accountant or the ledger exactly as a real round would.
 *
 * These processes run both halves of a mechanism in one place (a simulation of the cohort).
 * A real round runs the same functions split across devices and the coordinator:
 * `encodeClientUpdate` on each device, SecAgg in the middle, `decodeAggregate` on the server.
 */

import type {
  ComposedEvent,
  DistributedDiscreteGaussianConfig,
  DpRoundConfig,
} from "@fedprofile/protocol/dp";
import {
  addModular,
  centralRoundEvent,
  clipL2InPlace,
  decodeAggregate,
  distributedRoundEvent,
  encodeClientUpdate,
  l2Norm,
  type RandomSource,
  type RoundSampling,
  seededRandom,
  standardNormal,
} from "@fedprofile/protocol/dp";

/** Nested measurements, one record per decorator layer. */
export type Measurements = { readonly [key: string]: number | boolean | string | Measurements };

/** One step of an aggregation process. */
export interface AggregationOutput<S> {
  /** The next state. */
  readonly state: S;
  /** The aggregate. */
  readonly result: Float64Array;
  /** What happened, for monitoring; never raw client data. */
  readonly measurements: Measurements;
}

/** A stateful aggregation of equal-length vectors. */
export interface AggregationProcess<S> {
  /** The initial state. */
  init(): S;
  /** Aggregates one round of `inputs`. */
  next(state: S, inputs: readonly Float64Array[]): AggregationOutput<S>;
}

function assertInputs(inputs: readonly Float64Array[]): number {
  if (inputs.length === 0) throw new RangeError("an aggregation round needs at least one input");
  const d = inputs[0]!.length;
  for (const x of inputs) if (x.length !== d) throw new RangeError("inputs differ in length");
  return d;
}

/** The plain sum (no privacy); the innermost aggregator. */
export function sumFactory(): AggregationProcess<null> {
  return {
    init: () => null,
    next(state, inputs) {
      const d = assertInputs(inputs);
      const out = new Float64Array(d);
      for (const x of inputs) for (let i = 0; i < d; i++) out[i] = out[i]! + x[i]!;
      return { state, result: out, measurements: { count: inputs.length } };
    },
  };
}

/**
 * Clips every input to L2 norm `clipNorm` before the inner aggregator (McMahan et al. 2018).
 * Invariant: does not increase the sensitivity of the inner aggregate.
 */
export function clipFactory<S>(clipNorm: number, inner: AggregationProcess<S>): AggregationProcess<S> {
  return {
    init: () => inner.init(),
    next(state, inputs) {
      let clipped = 0;
      const copies = inputs.map((x) => {
        const c = Float64Array.from(x);
        if (clipL2InPlace(c, clipNorm) > clipNorm) clipped++;
        return c;
      });
      const r = inner.next(state, copies);
      return {
        state: r.state,
        result: r.result,
        measurements: { clip: { clipNorm, clipped }, inner: r.measurements },
      };
    },
  };
}

/** State of the DP aggregators: the accounting events so far, and the round counter. */
export interface DpState {
  /** Every event this process released, in order. */
  readonly events: readonly ComposedEvent[];
  /** Rounds run. */
  readonly round: number;
}

/** Options shared by the DP aggregators. */
export interface DpAggregatorOptions {
  /** How the cohort was sampled (amplification only for a uniform sample). */
  readonly sampling: RoundSampling;
  /** Randomness for the simulated clients' noise and rounding (default: seeded, for tests). */
  readonly rng?: RandomSource;
  /** Simulated dropouts: how many of the inputs never reach the sum (the last ones). */
  readonly dropouts?: number;
}

function appendEvent(state: DpState, e: ComposedEvent["event"]): DpState {
  return { events: [...state.events, { event: e, count: 1 }], round: state.round + 1 };
}

/**
 * The full distributed-DP pipeline over the cohort: every surviving input is encoded by the
 * client half (clip, rotate, round, noise share, wrap), summed modulo 2^32 as SecAgg would,
 * and decoded by the server half. Records one `distributed_discrete_gaussian` event per round
 * with the survivors as noise shares.
 */
export function distributedDpFactory(
  config: DistributedDiscreteGaussianConfig,
  opts: DpAggregatorOptions,
): AggregationProcess<DpState> {
  const rng = opts.rng ?? seededRandom("fedprofile/dp/aggregators/ddg");
  return {
    init: () => ({ events: [], round: 0 }),
    next(state, inputs) {
      assertInputs(inputs);
      const survivors = inputs.length - (opts.dropouts ?? 0);
      if (survivors < 1) throw new RangeError("every client dropped out");
      let acc: Uint32Array | null = null;
      let clipped = 0;
      for (let c = 0; c < survivors; c++) {
        const enc = encodeClientUpdate(config, inputs[c]!, rng);
        if (enc.preClipNorm > config.clipNorm) clipped++;
        if (!acc) acc = new Uint32Array(enc.values.length);
        addModular(acc, enc.values);
      }
      const dec = decodeAggregate(config, acc!, { survivors });
      const event = distributedRoundEvent(config, { survivors, sampling: opts.sampling });
      const m: Record<string, number | boolean | string | Measurements> = {
        survivors,
        clipped,
        noiseVariance: dec.noiseVariance,
        localStddev: event.localStddev,
        trustModel: "distributed",
      };
      if (dec.clipCount !== undefined) m["clipCount"] = dec.clipCount;
      return { state: appendEvent(state, event), result: dec.sum, measurements: { dp: m } };
    },
  };
}

/**
 * Central Gaussian DP around an inner sum: clip to `clipNorm`, aggregate with `inner`, add
 * `N(0, (z * clipNorm)^2)` per coordinate on the server (McMahan et al. 2018, DP-FedAvg).
 * Records one `poisson_gaussian` event per round.
 */
export function centralGaussianFactory<S>(
  opts: DpAggregatorOptions & { readonly noiseMultiplier: number; readonly clipNorm: number },
  inner: AggregationProcess<S>,
): AggregationProcess<{ inner: S; dp: DpState }> {
  const rng = opts.rng ?? seededRandom("fedprofile/dp/aggregators/central");
  const clipped = clipFactory(opts.clipNorm, inner);
  return {
    init: () => ({ inner: inner.init(), dp: { events: [], round: 0 } }),
    next(state, inputs) {
      const r = clipped.next(state.inner, inputs);
      const sigma = opts.noiseMultiplier * opts.clipNorm;
      const out = r.result.slice();
      for (let i = 0; i < out.length; i++) out[i] = out[i]! + sigma * standardNormal(rng);
      const event = {
        kind: "poisson_gaussian" as const,
        samplingRate: opts.sampling.uniform ? opts.sampling.rate : 1,
        noiseMultiplier: opts.noiseMultiplier,
      };
      return {
        state: { inner: r.state, dp: appendEvent(state.dp, event) },
        result: out,
        measurements: { dp: { sigma, trustModel: "central" }, inner: r.measurements },
      };
    },
  };
}

/**
 * The central mechanism through the fixed-point SecAgg encoding of a {@link DpRoundConfig} of
 * kind `central_gaussian` (what a real central-mode round does).
 */
export function centralSecAggFactory(
  config: Extract<DpRoundConfig, { mechanism: "central_gaussian" }>,
  opts: DpAggregatorOptions,
): AggregationProcess<DpState> {
  const rng = opts.rng ?? seededRandom("fedprofile/dp/aggregators/central-secagg");
  return {
    init: () => ({ events: [], round: 0 }),
    next(state, inputs) {
      assertInputs(inputs);
      const survivors = inputs.length - (opts.dropouts ?? 0);
      let acc: Uint32Array | null = null;
      for (let c = 0; c < survivors; c++) {
        const enc = encodeClientUpdate(config, inputs[c]!, rng);
        if (!acc) acc = new Uint32Array(enc.values.length);
        addModular(acc, enc.values);
      }
      const dec = decodeAggregate(config, acc!, { survivors, rng });
      const event = centralRoundEvent(config, { sampling: opts.sampling });
      const m: Record<string, number | boolean | string | Measurements> = {
        survivors,
        noiseVariance: dec.noiseVariance,
        trustModel: "central",
      };
      if (dec.clipCount !== undefined) m["clipCount"] = dec.clipCount;
      return { state: appendEvent(state, event), result: dec.sum, measurements: { dp: m } };
    },
  };
}

/** The mean L2 norm of the inputs (diagnostic for tests and the simulator). */
export function meanNorm(inputs: readonly Float64Array[]): number {
  return inputs.reduce((s, x) => s + l2Norm(x), 0) / Math.max(1, inputs.length);
}
