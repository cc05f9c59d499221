/**
 * The trainer: one per (tenant, model), it owns the global model and runs its training by itself.
 * It opens each round (with the task devices compute), applies the round's decoded DP aggregate
 * with the kind's server update, publishes the next version, and stops on convergence, on its
 * round limit, after repeated aborts, or when the next round would pass the budget cap (the
 * privacy planner refuses it before any device is invited). In the spirit of TFF's iterative
 * process (`initialize`, `next`) and Flower's strategy (`configure_fit`, `aggregate_fit`).
 *
 * Runtime-neutral: a Durable Object hosts it in `edge/` (its alarm drives the schedule), an
 * in-process object in tests and the simulator. Every operation is serialised.
 */

import { bytesToBase64, bytesToBase64url } from "@fedprofile/protocol/bytes";
import type {
  ModelDeclaration,
  ModelStatus,
  RoundTask,
  TrainingPhase,
  TrainingRound,
} from "@fedprofile/protocol/wire";
import {
  encodeFloat64Vector,
  type OpenRoundRequest,
  type RoundStatus,
  WIRE_VERSION,
} from "@fedprofile/protocol/wire";
import { PrivacyBudgetExceededError } from "../dp/errors";
import { FedprofileError, NotFoundError } from "../errors";
import { jsonSha256 } from "../ledger/chain";
import type { Clock, ModelStore, RoundStateStore, TrainingStore } from "../ports";
import type { RoundPrivacy } from "../rounds/round-privacy";
import { createSerialQueue } from "../rounds/serial-queue";
import { applyFcf, type FcfState, fcfTask, initialFcfState, publishFcf } from "./fcf";
import { applyKMeans, initialKMeansState, type KMeansState, kmeansPlannedRounds, kmeansTask } from "./kmeans";

/** The global model of any kind, between rounds. */
export type ModelState = KMeansState | FcfState;

const isFcfState = (m: ModelState): m is FcfState => "kind" in m && m.kind === "fcf";

/** The state a fresh run of `declaration` starts from. */
export function initialModelState(declaration: ModelDeclaration): ModelState {
  return declaration.kind === "fcf"
    ? initialFcfState(declaration.spec, declaration.catalogue.items.length)
    : initialKMeansState();
}

/** What a trainer-driven round hands back when it ends. */
export interface RoundResult {
  roundId: string;
  modelId: string;
  stage: "closed" | "aborted";
  outcome: string;
  contributors: number;
  /** The decoded noisy aggregate (closed rounds). */
  weights: number[] | null;
  /** Noise standard deviation per coordinate of `weights`. */
  noiseStddev: number;
}

/** The rounds a trainer drives. */
export interface TrainerRounds {
  open(tenantId: string, request: OpenRoundRequest, task: RoundTask): Promise<RoundStatus>;
  /** The result of an ended round, or null while it runs. */
  result(tenantId: string, roundId: string): Promise<RoundResult | null>;
}

/** The trainer as a round (or the HTTP layer) sees it. */
export interface TrainerHandle {
  declare(tenantId: string, modelId: string, declaration: ModelDeclaration): Promise<ModelStatus>;
  status(): Promise<ModelStatus | null>;
  roundEnded(result: RoundResult): Promise<void>;
}

export interface TrainerHost extends TrainerHandle {
  alarm(): Promise<void>;
}

/** The trainer's serialisable state. */
export interface TrainerState {
  kind: "trainer";
  tenantId: string;
  modelId: string;
  declaration: ModelDeclaration;
  declaredAt: number;
  model: ModelState;
  roundsOpened: number;
  /** Consecutive rounds that aborted. */
  failures: number;
  current: { roundId: string; phase: TrainingPhase; iteration: number; pollAt: number } | null;
  nextRoundAt: number | null;
  latestVersion: number | null;
  stoppedReason: string | null;
  /**
   * The rounds this run opened (k-means: the planner composes their ledger entries as the run's
   * prior spend, see `DpRoundRequest.priorRounds`). Absent in state saved before it existed.
   */
  runRounds?: string[];
}

export interface TrainerHostOptions {
  store: RoundStateStore<TrainerState>;
  rounds: TrainerRounds;
  models: ModelStore;
  training: TrainingStore;
  privacy?: RoundPrivacy;
  clock?: Clock;
}

/** How long after a round's last stage deadline the trainer asks for its result. */
const RESULT_GRACE_MS = 40_000;
/** Re-ask this often while a round's result is not there yet. */
const POLL_MS = 10_000;
/** SecAgg+ stages with the consistency check (the trainer always turns it on). */
const STAGES = 5;

/**
 * The default `minNoiseShares`: the survivors, at 30% dropout, of each shard's expected fill when
 * only `minDevices` join. Calibrating for t instead (the SecAgg threshold, about 40% of a shard)
 * needs several times the noise that full turnout does (issue 9: 6.9x at n = 1,000).
 */
export function defaultMinNoiseShares(declaration: ModelDeclaration): number {
  const { minDevices, maxDevices, maxShardSize } = declaration.cohort;
  const shards = Math.max(1, Math.ceil(maxDevices / maxShardSize));
  return Math.max(2, Math.floor(0.7 * Math.floor(minDevices / shards)));
}

/** What a round request depends on: the model, its declaration, its state and its newest version. */
export type RoundBasis = Pick<TrainerState, "modelId" | "declaration" | "model" | "latestVersion"> & {
  /** The run's rounds so far: given, a k-means round is calibrated for what they left. */
  runRounds?: readonly string[] | undefined;
};

/** Most prior rounds a request names (the wire's bound); a longer run falls back to fixed shares. */
const MAX_PRIOR_ROUNDS = 1000;

/** The task of the next round of a model in `state`, its dimension, sensitivity and DP round count. */
function nextTask(state: RoundBasis): {
  task: RoundTask;
  dimension: number;
  sensitivity: number;
  rounds: number;
  priorRounds?: string[];
} {
  const { declaration, model } = state;
  if (declaration.kind === "fcf") {
    const t = fcfTask(declaration.spec, declaration.catalogue.items.length, model);
    if (state.latestVersion === null)
      throw new RangeError("an fcf round needs the published initial factors");
    return {
      task: {
        kind: "fcf",
        phase: "train",
        iteration: model.iteration,
        spec: declaration.spec,
        block: t.block,
        baseVersion: state.latestVersion,
      },
      dimension: t.dimension,
      sensitivity: t.sensitivity,
      // Every round is a gradient step over one block: maxRounds of them in a run.
      rounds: declaration.schedule.maxRounds,
    };
  }
  if (isFcfState(model)) throw new RangeError("a k-means model holds fcf state");
  const t = kmeansTask(declaration.spec, model);
  const prior =
    state.runRounds && state.runRounds.length <= MAX_PRIOR_ROUNDS ? [...state.runRounds] : undefined;
  return {
    task: {
      kind: "kmeans",
      phase: t.phase,
      iteration: model.iteration,
      spec: declaration.spec,
      baseVersion: t.phase === "init" ? null : state.latestVersion,
    },
    dimension: t.dimension,
    sensitivity: t.sensitivity,
    rounds: kmeansPlannedRounds(
      declaration.spec,
      declaration.schedule.maxRounds,
      t.phase,
      prior ? model.iteration : undefined,
    ),
    ...(prior ? { priorRounds: prior } : {}),
  };
}

/** The request that opens the next round of a model in `state` (any `RoundBasis`). */
export function nextRoundRequest(state: RoundBasis): { request: OpenRoundRequest; task: RoundTask } {
  const { declaration } = state;
  const { dp, cohort, schedule } = declaration;
  const { task, dimension, sensitivity, rounds, priorRounds } = nextTask(state);
  return {
    task,
    request: {
      v: WIRE_VERSION,
      modelId: state.modelId,
      dimension,
      minContributions: cohort.minDevices,
      maxContributions: cohort.maxDevices,
      deadlineSeconds: schedule.stageSeconds,
      aggregation: "secagg",
      secagg: {
        maxShardSize: cohort.maxShardSize,
        minShardSize: Math.min(cohort.minShardSize, cohort.maxShardSize),
        consistencyCheck: true,
        stageSeconds: schedule.stageSeconds,
        ...(cohort.threat ? { threat: cohort.threat } : {}),
      },
      dp: {
        mechanism: dp.mechanism,
        clipNorm: sensitivity,
        // fcf: every round the same share; k-means: the init round's share and the Lloyd
        // rounds' shares add up to the run's budget.
        targetEpsilon: dp.targetEpsilon,
        rounds,
        ...(priorRounds ? { priorRounds } : {}),
        minNoiseShares: dp.minNoiseShares ?? defaultMinNoiseShares(declaration),
        modulusBits: dp.modulusBits,
      },
    },
  };
}

/** Why a run that has applied `model` is over by its round limit, or null. */
function roundLimit(declaration: ModelDeclaration, model: ModelState): string | null {
  const { maxRounds } = declaration.schedule;
  if (isFcfState(model)) return model.iteration >= maxRounds ? `max-rounds: ${model.iteration} rounds` : null;
  return model.phase === "lloyd" && model.iteration >= maxRounds
    ? `max-rounds: ${model.iteration} iterations`
    : null;
}

/** A fresh, random round id (for the initial version an fcf run publishes before any round). */
function freshRoundId(): string {
  return `r_${bytesToBase64url(crypto.getRandomValues(new Uint8Array(16))).slice(0, 22)}`;
}

export function trainerStatus(state: TrainerState): ModelStatus {
  return {
    v: WIRE_VERSION,
    modelId: state.modelId,
    kind: state.declaration.kind,
    declaration: state.declaration,
    trainer: state.stoppedReason !== null ? "stopped" : state.current ? "in-round" : "waiting",
    phase: state.model.phase,
    iteration: state.model.iteration,
    roundsOpened: state.roundsOpened,
    currentRound: state.current?.roundId ?? null,
    nextRoundAt: state.stoppedReason === null && !state.current ? state.nextRoundAt : null,
    latestVersion: state.latestVersion,
    stoppedReason: state.stoppedReason,
    declaredAt: state.declaredAt,
  };
}

/** A closed round's server update, by kind, and what it publishes. */
function serverUpdate(state: TrainerState, result: RoundResult & { weights: number[] }) {
  const { declaration, model } = state;
  const info = { noiseStddev: result.noiseStddev, contributors: result.contributors };
  if (declaration.kind === "fcf") {
    if (!isFcfState(model)) throw new RangeError("an fcf model holds k-means state");
    const { spec, catalogue } = declaration;
    const { block } = fcfTask(spec, catalogue.items.length, model);
    const update = applyFcf(spec, catalogue, model, block, result.weights, info);
    return {
      state: update.state as ModelState,
      metrics: update.metrics,
      converged: false,
      draft: {
        dimension: catalogue.items.length * spec.rank,
        weights: bytesToBase64(update.weights),
        kind: "fcf" as const,
        params: update.params,
      },
    };
  }
  if (isFcfState(model)) throw new RangeError("a k-means model holds fcf state");
  const update = applyKMeans(declaration.spec, model, result.weights, { ...info, seed: state.roundsOpened });
  const centroids = update.state.centroids ?? [];
  return {
    state: update.state as ModelState,
    metrics: update.metrics,
    converged: update.converged,
    draft: {
      dimension: centroids.length * (centroids[0]?.length ?? 0),
      weights: encodeFloat64Vector(centroids.flat()),
      kind: "kmeans" as const,
      params: update.params,
    },
  };
}

/** Creates the trainer host of one model. */
export function createTrainerHost(options: TrainerHostOptions): TrainerHost {
  const { store, rounds, models, training, privacy } = options;
  const clock = options.clock ?? Date.now;
  const serialised = createSerialQueue();

  async function schedule(state: TrainerState): Promise<void> {
    await store.save(state);
    const at = state.stoppedReason !== null ? null : (state.current?.pollAt ?? state.nextRoundAt);
    if (at === null) await store.deleteAlarm();
    else await store.setAlarm(at);
  }

  const stop = (state: TrainerState, reason: string): TrainerState => ({
    ...state,
    current: null,
    nextRoundAt: null,
    stoppedReason: reason,
  });

  async function openNext(state: TrainerState): Promise<TrainerState> {
    const now = clock();
    const limit = roundLimit(state.declaration, state.model);
    if (limit) return stop(state, limit);
    const { request, task } = nextRoundRequest(state);
    try {
      const opened = await rounds.open(state.tenantId, request, task);
      const stageMs = state.declaration.schedule.stageSeconds * 1000;
      return {
        ...state,
        roundsOpened: state.roundsOpened + 1,
        ...(state.runRounds ? { runRounds: [...state.runRounds, opened.roundId] } : {}),
        current: {
          roundId: opened.roundId,
          phase: task.phase,
          iteration: task.iteration,
          pollAt: opened.openedAt + STAGES * stageMs + RESULT_GRACE_MS,
        },
        nextRoundAt: null,
      };
    } catch (error) {
      // The planner refused the round before any device was invited: the run is over.
      if (error instanceof PrivacyBudgetExceededError) return stop(state, `budget: ${error.message}`);
      if (error instanceof FedprofileError && error.status < 500 && error.status !== 409) {
        return stop(state, `refused: ${error.code}: ${error.message}`);
      }
      const failures = state.failures + 1;
      if (failures >= state.declaration.schedule.maxFailures) {
        return stop(
          state,
          `failed to open ${failures} rounds: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      return {
        ...state,
        failures,
        nextRoundAt: now + Math.max(POLL_MS, state.declaration.schedule.cadenceSeconds * 1000),
      };
    }
  }

  /** Applies a round's result once (results for any other round are ignored). */
  async function apply(state: TrainerState, result: RoundResult): Promise<TrainerState> {
    const current = state.current;
    if (!current || current.roundId !== result.roundId) return state;
    const now = clock();
    const cadence = state.declaration.schedule.cadenceSeconds * 1000;
    const row: TrainingRound = {
      roundId: result.roundId,
      phase: current.phase,
      iteration: current.iteration,
      stage: result.stage,
      outcome: result.outcome,
      contributors: result.contributors,
      modelVersion: null,
      metrics: {},
      endedAt: now,
    };
    if (result.stage === "aborted" || !result.weights) {
      await training.appendRound(state.tenantId, state.modelId, row);
      const failures = state.failures + 1;
      const next = { ...state, current: null, failures, nextRoundAt: now + cadence };
      return failures >= state.declaration.schedule.maxFailures
        ? stop(next, `aborted ${failures} rounds in a row (last: ${result.outcome})`)
        : next;
    }
    const update = serverUpdate(state, { ...result, weights: result.weights });
    const published = await models.publish(
      state.tenantId,
      {
        modelId: state.modelId,
        roundId: result.roundId,
        contributions: Math.max(1, result.contributors),
        aggregation: "secagg",
        ...update.draft,
      },
      now,
    );
    // On the record: this version was computed from the aggregate that round's entry hashed.
    await privacy?.recordPublication(state.tenantId, state.modelId, {
      roundId: result.roundId,
      modelVersion: published.version,
      modelVersionSha256: jsonSha256(published),
    });
    await training.appendRound(state.tenantId, state.modelId, {
      ...row,
      modelVersion: published.version,
      metrics: update.metrics,
    });
    const next: TrainerState = {
      ...state,
      model: update.state,
      current: null,
      failures: 0,
      latestVersion: published.version,
      nextRoundAt: now + cadence,
    };
    if (
      update.converged &&
      state.declaration.kind === "kmeans" &&
      state.declaration.schedule.untilConverged
    ) {
      return stop(next, `converged: no centroid moved more than ${state.declaration.spec.tolerance}`);
    }
    return next;
  }

  async function mustLoad(): Promise<TrainerState> {
    const state = await store.load();
    if (!state) throw new NotFoundError("model not declared");
    return state;
  }

  return {
    declare: (tenantId, modelId, declaration) =>
      serialised(async () => {
        const now = clock();
        const previous = await store.load();
        let state: TrainerState = {
          kind: "trainer",
          tenantId,
          modelId,
          declaration,
          declaredAt: now,
          // A re-declaration starts a new run from its initialisation; versions keep counting.
          model: initialModelState(declaration),
          roundsOpened: previous?.roundsOpened ?? 0,
          failures: 0,
          current: null,
          nextRoundAt: now,
          latestVersion: previous?.latestVersion ?? null,
          stoppedReason: null,
          runRounds: [],
        };
        if (declaration.kind === "fcf" && isFcfState(state.model)) {
          // An fcf run's rounds improve on published factors: publish the public, seeded start.
          const { weights, params } = publishFcf(declaration.spec, declaration.catalogue, state.model);
          const initial = await models.publish(
            tenantId,
            {
              modelId,
              roundId: freshRoundId(),
              dimension: declaration.catalogue.items.length * declaration.spec.rank,
              contributions: 1,
              aggregation: "none",
              weights: bytesToBase64(weights),
              kind: "fcf",
              params,
            },
            now,
          );
          state = { ...state, latestVersion: initial.version };
        }
        await training.putDeclaration(tenantId, modelId, declaration, now);
        await schedule(state);
        return trainerStatus(state);
      }),

    status: () =>
      serialised(async () => {
        const state = await store.load();
        return state ? trainerStatus(state) : null;
      }),

    roundEnded: (result) =>
      serialised(async () => {
        const state = await mustLoad();
        const next = await apply(state, result);
        if (next !== state) await schedule(next);
      }),

    alarm: () =>
      serialised(async () => {
        let state = await store.load();
        if (!state || state.stoppedReason !== null) return;
        const now = clock();
        if (state.current) {
          if (now < state.current.pollAt) return schedule(state);
          // The round's own push may have been lost (a crash between its end and the call): ask.
          const result = await rounds.result(state.tenantId, state.current.roundId);
          if (!result) {
            state = { ...state, current: { ...state.current, pollAt: now + POLL_MS } };
            return schedule(state);
          }
          state = await apply(state, result);
        }
        if (state.stoppedReason === null && !state.current && (state.nextRoundAt ?? 0) <= now) {
          state = await openNext(state);
        }
        await schedule(state);
      }),
  };
}
