/**
 * Wire schemas of the training runtime: how an operator declares a model, what a device is asked
 * to compute in a round (its task), and what a published model version carries. One schema per
 * message; types are derived with `z.infer`.
 */
import * as z from "zod";
import { VECTOR_FIELDS } from "../models/profile-vector";
import { EpochMillis, ModelId, RoundId, WireVersion } from "./common";

/** A field of the standardised profile vector (`models/profile-vector.ts`). */
export const VectorFieldName = z.enum(VECTOR_FIELDS);

/** The data-independent initialisation of k-means: a DP coreset over a public grid (see `models/kmeans.ts`). */
export const KMeansInitSpec = z
  .object({
    /** Fields that index the grid's cells; each is cut at the `gridBins`-quantiles of N(0, 1). */
    gridFields: z.array(VectorFieldName).min(1).max(4).default(["recency", "frequency", "monetary"]),
    gridBins: z.number().int().min(2).max(12).default(6),
    /** Fields whose DP histograms give the published quantiles (tag thresholds). */
    histogramFields: z
      .array(VectorFieldName)
      .max(VECTOR_FIELDS.length)
      .default(["recency", "frequency", "monetary", "tenure"]),
    histogramBins: z.number().int().min(4).max(128).default(32),
    /** Value a device puts in its histogram bin (trades histogram noise against sensitivity). */
    histogramWeight: z.number().positive().max(64).default(1),
  })
  .strict();
export type KMeansInitSpec = z.infer<typeof KMeansInitSpec>;

/** Hyper-parameters of federated k-means over the standardised profile vector. */
export const KMeansSpec = z
  .object({
    k: z.number().int().min(2).max(16),
    /** L2 clip of a device's standardised vector (its norm is at most 12 before clipping). */
    clip: z.number().positive().max(64).default(4),
    /** Value a device puts in its cluster's count slot: the count's share of the sensitivity. */
    countWeight: z.number().positive().max(64).default(2),
    /** Converged when no centroid moves more than this (standardised units) in a round. */
    tolerance: z.number().positive().max(10).default(0.02),
    init: KMeansInitSpec.default(KMeansInitSpec.parse({})),
  })
  .strict()
  .refine((s) => new Set(s.init.gridFields).size === s.init.gridFields.length, {
    message: "init.gridFields: each field at most once",
    path: ["init", "gridFields"],
  })
  .refine((s) => s.init.gridBins ** s.init.gridFields.length <= 4096, {
    message: "init: gridBins^gridFields.length must be at most 4096 cells",
    path: ["init", "gridBins"],
  });
export type KMeansSpec = z.infer<typeof KMeansSpec>;
export type KMeansSpecInput = z.input<typeof KMeansSpec>;

/** The DP of a whole training run: the noise of every round is calibrated so that the run reaches `targetEpsilon`. */
export const TrainingDp = z
  .object({
    mechanism: z
      .enum(["distributed_discrete_gaussian", "central_gaussian"])
      .default("distributed_discrete_gaussian"),
    /** Epsilon of the whole training (initialisation and every iteration), at the budget's delta. */
    targetEpsilon: z.number().positive().max(1000),
    /** The model's budget cap (default `targetEpsilon`): a round that would pass it is never opened. */
    epsilonCap: z.number().positive().max(1000).optional(),
    /** The population behind delta = 1/population^1.1 (default: the cohort's maximum). */
    population: z.number().int().min(2).max(1e10).optional(),
    /**
     * The fewest noise shares any released sum carries (see `models/trainer.ts` for the default:
     * the survivors of each shard's expected fill at 30% dropout, never below t).
     */
    minNoiseShares: z.number().int().min(1).max(65_536).optional(),
    modulusBits: z.number().int().min(8).max(32).default(24),
  })
  .strict();
export type TrainingDp = z.infer<typeof TrainingDp>;

/** Who takes part in each round. */
export const TrainingCohort = z
  .object({
    minDevices: z.number().int().min(2).max(100_000),
    maxDevices: z.number().int().min(2).max(100_000),
    maxShardSize: z.number().int().min(2).max(65_536).default(1000),
    minShardSize: z.number().int().min(2).max(65_536).default(100),
  })
  .strict()
  .refine((c) => c.maxDevices >= c.minDevices, {
    message: "maxDevices must be at least minDevices",
    path: ["maxDevices"],
  });
export type TrainingCohort = z.infer<typeof TrainingCohort>;

/** When rounds run and when training stops. */
export const TrainingSchedule = z
  .object({
    /** Pause between the end of one round and the opening of the next. */
    cadenceSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 24 * 3600)
      .default(0),
    /** Time limit of each SecAgg stage; the join window is one stage. */
    stageSeconds: z.number().int().min(1).max(3600).default(60),
    /** Iterations after the initialisation round at the most. */
    maxRounds: z.number().int().min(1).max(1000).default(10),
    /** Stop once the centroids stop moving (`spec.tolerance`). */
    untilConverged: z.boolean().default(true),
    /** Consecutive aborted rounds after which training stops. */
    maxFailures: z.number().int().min(1).max(100).default(5),
  })
  .strict();
export type TrainingSchedule = z.infer<typeof TrainingSchedule>;

/** `PUT /v1/models/{modelId}` (secret key): declare, or re-declare, a model. */
export const ModelDeclaration = z
  .object({
    v: WireVersion,
    kind: z.literal("kmeans"),
    spec: KMeansSpec,
    dp: TrainingDp,
    cohort: TrainingCohort,
    schedule: TrainingSchedule.default(TrainingSchedule.parse({})),
  })
  .strict();
export type ModelDeclaration = z.infer<typeof ModelDeclaration>;
export type ModelDeclarationInput = z.input<typeof ModelDeclaration>;

/** Phases of a k-means training run. */
export const KMeansPhase = z.enum(["init", "lloyd"]);
export type KMeansPhase = z.infer<typeof KMeansPhase>;

/**
 * What a device computes in a trainer's round, handed out at check-in: the kind, the phase, the
 * spec, and the model version the round improves on (devices pull it by version, with an ETag).
 */
export const RoundTask = z
  .object({
    kind: z.literal("kmeans"),
    phase: KMeansPhase,
    iteration: z.number().int().nonnegative(),
    spec: KMeansSpec,
    baseVersion: z.number().int().positive().nullable(),
  })
  .strict();
export type RoundTask = z.infer<typeof RoundTask>;

/** Thresholds of the SDK's tag rules, from the trainer's DP quantiles (real units). */
export const PublishedTagThresholds = z
  .object({
    newMaxTenureDays: z.number().nonnegative(),
    highValueMinMonetary: z.number(),
    loyalMinFrequency: z.number().positive(),
    lapsedMinRecencyDays: z.number().nonnegative(),
    atRiskMinRecencyDays: z.number().nonnegative(),
  })
  .partial()
  .strict();
export type PublishedTagThresholds = z.infer<typeof PublishedTagThresholds>;

/** One segment of a published k-means model. */
export const Segment = z.object({
  id: z.number().int().nonnegative(),
  label: z.string(),
  /** The centroid in the standardised space (vector order). */
  centroid: z.array(z.number()),
  /** The centroid in real units: days, orders, money, shares. */
  real: z.record(VectorFieldName, z.number()),
  /** Devices in the segment, as the last round's noisy count estimated (rounded, never negative). */
  size: z.number().nonnegative(),
});
export type Segment = z.infer<typeof Segment>;

/** What a k-means model version carries besides its weights (the flattened centroids). */
export const KMeansModelParams = z.object({
  kind: z.literal("kmeans"),
  phase: KMeansPhase,
  iteration: z.number().int().nonnegative(),
  fields: z.array(VectorFieldName),
  reference: z.record(VectorFieldName, z.object({ mean: z.number(), sd: z.number().positive() })),
  segments: z.array(Segment).min(1),
  tagThresholds: PublishedTagThresholds,
  /** Largest centroid move in this round (standardised units); null for the initialisation. */
  shift: z.number().nonnegative().nullable(),
  converged: z.boolean(),
});
export type KMeansModelParams = z.infer<typeof KMeansModelParams>;

/** One round of a model's training history. */
export const TrainingRound = z.object({
  roundId: RoundId,
  phase: KMeansPhase,
  iteration: z.number().int().nonnegative(),
  stage: z.enum(["closed", "aborted"]),
  outcome: z.string(),
  contributors: z.number().int().nonnegative(),
  modelVersion: z.number().int().positive().nullable(),
  metrics: z.record(z.string(), z.number()),
  endedAt: EpochMillis,
});
export type TrainingRound = z.infer<typeof TrainingRound>;

/** Where a model's training stands. */
export const TrainerPhase = z.enum(["waiting", "in-round", "stopped"]);

/** `GET /v1/models/{modelId}` and the answer to a declaration. */
export const ModelStatus = z.object({
  v: WireVersion,
  modelId: ModelId,
  kind: z.literal("kmeans"),
  declaration: ModelDeclaration,
  trainer: TrainerPhase,
  phase: KMeansPhase,
  iteration: z.number().int().nonnegative(),
  roundsOpened: z.number().int().nonnegative(),
  currentRound: RoundId.nullable(),
  nextRoundAt: EpochMillis.nullable(),
  latestVersion: z.number().int().positive().nullable(),
  stoppedReason: z.string().nullable(),
  declaredAt: EpochMillis,
});
export type ModelStatus = z.infer<typeof ModelStatus>;

export const TrainingRoundPage = z.object({
  v: WireVersion,
  modelId: ModelId,
  rounds: z.array(TrainingRound),
});
export type TrainingRoundPage = z.infer<typeof TrainingRoundPage>;
