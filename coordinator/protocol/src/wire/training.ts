/**
 * Wire schemas of the training runtime: how an operator declares a model, what a device is asked
 * to compute in a round (its task), and what a published model version carries. One schema per
 * message; types are derived with `z.infer`.
 */
import * as z from "zod/mini";
import { VECTOR_FIELDS } from "../models/profile-vector";
import { THREAT_PRESETS } from "../secagg/threat";
import { EpochMillis, ModelId, RoundId, WireVersion } from "./common";

/** A field of the standardised profile vector (`models/profile-vector.ts`). */
export const VectorFieldName = z.enum(VECTOR_FIELDS);

const positiveUpTo = (max: number) => z.number().check(z.positive(), z.maximum(max));
const intIn = (min: number, max: number) => z.int().check(z.minimum(min), z.maximum(max));

/** The data-independent initialisation of k-means: a DP coreset over a public grid (see `coordinator/src/models/kmeans.ts`). */
export const KMeansInitSpec = z.strictObject({
  /** Fields that index the grid's cells; each is cut at the `gridBins`-quantiles of N(0, 1). */
  gridFields: z._default(z.array(VectorFieldName).check(z.minLength(1), z.maxLength(4)), [
    "recency",
    "frequency",
    "monetary",
  ]),
  gridBins: z._default(intIn(2, 12), 6),
  /** Fields whose DP histograms give the published quantiles (tag thresholds). */
  histogramFields: z._default(z.array(VectorFieldName).check(z.maxLength(VECTOR_FIELDS.length)), [
    "recency",
    "frequency",
    "monetary",
    "tenure",
  ]),
  histogramBins: z._default(intIn(4, 128), 32),
  /** Value a device puts in its histogram bin (trades histogram noise against sensitivity). */
  histogramWeight: z._default(positiveUpTo(64), 1),
  /**
   * Centroids per segment in the first Lloyd round: the coreset is clustered into `overseed · k`
   * centroids, refined by one DP Lloyd round in the full space, then merged to k on the server
   * (1 turns it off). Costs no budget: a device still fills one block.
   */
  overseed: z._default(intIn(1, 4), 2),
  /**
   * Share of the run's privacy budget (zCDP/RDP scale, which composes linearly) that the
   * initialisation round gets; the Lloyd rounds share the rest equally.
   */
  budgetShare: z._default(z.number().check(z.positive(), z.maximum(0.9)), 0.5),
});
export type KMeansInitSpec = z.infer<typeof KMeansInitSpec>;

/** Hyper-parameters of federated k-means over the standardised profile vector. */
export const KMeansSpec = z
  .strictObject({
    k: intIn(2, 16),
    /** L2 clip of a device's standardised vector (its norm is at most 12 before clipping). */
    clip: z._default(positiveUpTo(64), 4),
    /** Value a device puts in its cluster's count slot: the count's share of the sensitivity. */
    countWeight: z._default(positiveUpTo(64), 2),
    /**
     * Shrinks each Lloyd step's noisy mean towards the centroid it improves on, by the positive-part
     * James–Stein factor of its noise (James & Stein 1961): a small cluster's mean, whose noise is
     * of the size of its move, barely moves. Post-processing; `false` takes the raw noisy means.
     */
    shrink: z._default(z.boolean(), true),
    /** Converged when no centroid moves more than this (standardised units) in a round. */
    tolerance: z._default(positiveUpTo(10), 0.02),
    init: z._default(KMeansInitSpec, {
      gridFields: ["recency", "frequency", "monetary"],
      gridBins: 6,
      histogramFields: ["recency", "frequency", "monetary", "tenure"],
      histogramBins: 32,
      histogramWeight: 1,
      overseed: 2,
      budgetShare: 0.5,
    }),
  })
  .check(
    z.refine((s) => new Set(s.init.gridFields).size === s.init.gridFields.length, {
      message: "init.gridFields: each field at most once",
      path: ["init", "gridFields"],
    }),
    z.refine((s) => s.k * s.init.overseed <= 32, {
      message: "init.overseed: k · overseed must be at most 32 centroids",
      path: ["init", "overseed"],
    }),
    z.refine((s) => s.init.gridBins ** s.init.gridFields.length <= 4096, {
      message: "init: gridBins^gridFields.length must be at most 4096 cells",
      path: ["init", "gridBins"],
    }),
  );
export type KMeansSpec = z.infer<typeof KMeansSpec>;
export type KMeansSpecInput = z.input<typeof KMeansSpec>;

/**
 * Hyper-parameters of federated collaborative filtering on implicit feedback (FCF, Ammad-ud-din
 * et al. 2019; confidence of Hu, Koren & Volinsky 2008). Layout and sensitivity:
 * `models/fcf-layout.ts`.
 */
export const FcfSpec = z
  .strictObject({
    rank: z._default(intIn(2, 128), 32),
    /**
     * Items per round's block; a round vector has rank² + blockSize·(rank + 2) values whatever the
     * catalogue (930 at rank 32: 32,644, under 2^15 once the DP rotation pads it).
     */
    blockSize: z._default(intIn(1, 8192), 930),
    /** HKV's α: confidence c = 1 + α·w of a touched item. */
    alpha: z._default(positiveUpTo(1000), 10),
    /** Implicit-signal weights w: distinct orders, cart adds and views of an item. */
    purchaseWeight: z._default(z.number().check(z.nonnegative(), z.maximum(100)), 1),
    cartWeight: z._default(z.number().check(z.nonnegative(), z.maximum(100)), 0.3),
    viewWeight: z._default(z.number().check(z.nonnegative(), z.maximum(100)), 0.05),
    /** L2 regularisation λ of the user solve, and of the item gradient (per contributor). */
    lambda: z._default(positiveUpTo(1000), 0.1),
    clipGram: z._default(positiveUpTo(1000), 1),
    clipItems: z._default(positiveUpTo(1000), 4),
    clipCurvature: z._default(positiveUpTo(1000), 4),
    clipCounts: z._default(positiveUpTo(1000), 2),
    /**
     * A bought item's count slot holds this (the trainer divides it out): with every part under
     * one noise σ, a larger scale buys the DP counts (popularity, and the curvature with
     * `curvature: "counts"`) precision at a small cost to the other parts' (the L2 split of the
     * sensitivity, as in Andrew et al. 2021's shared-budget count).
     */
    countScale: z._default(positiveUpTo(1000), 1),
    /**
     * `released`: h_j is released per round (its own clip); `counts`: the curvature slots stay 0,
     * take no sensitivity, and the trainer estimates h_j = count_j·α·w_purchase·tr(G)/n from the
     * DP counts (post-processing).
     */
    curvature: z._default(z.enum(["released", "counts"]), "released"),
    /**
     * Weight of the DP popularity in the device's ranking: (x·y_j)/sd + w·z_j, z the standardised
     * log DP counts (`popularityZ` in the SDK). 0: the factor score alone.
     */
    popularityWeight: z._default(z.number().check(z.nonnegative(), z.maximum(100)), 0),
    /**
     * `mm`: the gradient preconditioned by G + (h_j + λ)I, a majorise-minimise step (step size
     * `learningRate`, 1 is the full step); `adam` (Kingma & Ba 2015) and `adagrad` (Duchi et al.
     * 2011) as FCF uses them.
     */
    optimizer: z._default(z.enum(["mm", "adam", "adagrad"]), "mm"),
    learningRate: z._default(positiveUpTo(10), 1),
    /**
     * `mm`: the preconditioner's h_j is divided by this. 1 keeps the guaranteed majoriser (the
     * trace bounds the largest eigenvalue); larger trusts that an item's buyers spread over that
     * many directions of the factor space, and converges faster. Default 4: on 481 Online Retail
     * customers at rank 8, 24 rounds without DP reach HR@10 0.464 (sampled) / 0.079 (full) with 4,
     * 0.437 / 0.077 with 2, and 16 overshoots (0.376 / 0.042 in 12 rounds); ALS 0.491 / 0.079.
     */
    curvatureSpread: z._default(z.number().check(z.minimum(1), z.maximum(128)), 4),
    /**
     * Trust region of the server step: no item row moves more than this (L2) in one round, and a
     * row is projected back into the ball of radius `maxFactorNorm`. Under DP noise the
     * preconditioned step can be unbounded in a direction G barely spans; this keeps the
     * published factors, and the YᵀY devices solve against, bounded (Conn, Gould & Toint 2000).
     */
    trustRadius: z._default(positiveUpTo(100), 4),
    maxFactorNorm: z._default(positiveUpTo(1000), 10),
    /** Seed of the public initial item factors (N(0, initScale²/rank) each). */
    seed: z._default(intIn(0, 2 ** 31), 1),
    initScale: z._default(positiveUpTo(10), 0.3),
  })
  .check(
    z.refine((s) => s.rank * s.rank + s.blockSize * (s.rank + 2) <= 65_536, {
      message: "rank² + blockSize·(rank + 2) must be at most 65,536 (the round's dimension)",
      path: ["blockSize"],
    }),
  );
export type FcfSpec = z.infer<typeof FcfSpec>;
export type FcfSpecInput = z.input<typeof FcfSpec>;

/** The public catalogue an FCF model recommends from: item (product) ids, optional categories. */
export const Catalogue = z
  .strictObject({
    items: z
      .array(z.string().check(z.minLength(1), z.maxLength(64)))
      .check(z.minLength(2), z.maxLength(200_000)),
    /** One category per item (same order), or null; `recommend()` filters on it. */
    categories: z.optional(z.array(z.nullable(z.string().check(z.maxLength(128))))),
  })
  .check(
    z.refine((c) => new Set(c.items).size === c.items.length, {
      message: "catalogue.items: each id at most once",
      path: ["items"],
    }),
    z.refine((c) => c.categories === undefined || c.categories.length === c.items.length, {
      message: "catalogue.categories: one per item",
      path: ["categories"],
    }),
  );
export type Catalogue = z.infer<typeof Catalogue>;

/** The DP of a whole training run: the noise of every round is calibrated so that the run reaches `targetEpsilon`. */
export const TrainingDp = z.strictObject({
  mechanism: z._default(
    z.enum(["distributed_discrete_gaussian", "central_gaussian"]),
    "distributed_discrete_gaussian",
  ),
  /** Epsilon of the whole training (initialisation and every iteration), at the budget's delta. */
  targetEpsilon: positiveUpTo(1000),
  /** The model's budget cap (default `targetEpsilon`): a round that would pass it is never opened. */
  epsilonCap: z.optional(positiveUpTo(1000)),
  /** The population behind delta = 1/population^1.1 (default: the cohort's maximum). */
  population: z.optional(intIn(2, 1e10)),
  /**
   * The fewest noise shares any released sum carries (see `coordinator/src/models/trainer.ts` for
   * the default: the survivors of each shard's expected fill at 30% dropout, never below t).
   */
  minNoiseShares: z.optional(intIn(1, 65_536)),
  modulusBits: z._default(intIn(8, 32), 24),
});
export type TrainingDp = z.infer<typeof TrainingDp>;

/** Who takes part in each round. */
export const TrainingCohort = z
  .strictObject({
    minDevices: intIn(2, 100_000),
    maxDevices: intIn(2, 100_000),
    maxShardSize: z._default(intIn(2, 65_536), 1000),
    minShardSize: z._default(intIn(2, 65_536), 100),
    /** The server threat preset of every round (`../secagg/threat.ts`); recorded in the policy entry. */
    threat: z.optional(z.enum(THREAT_PRESETS)),
  })
  .check(
    z.refine((c) => c.maxDevices >= c.minDevices, {
      message: "maxDevices must be at least minDevices",
      path: ["maxDevices"],
    }),
  );
export type TrainingCohort = z.infer<typeof TrainingCohort>;

/** When rounds run and when training stops. */
export const TrainingSchedule = z.strictObject({
  /** Pause between the end of one round and the opening of the next. */
  cadenceSeconds: z._default(intIn(0, 30 * 24 * 3600), 0),
  /** Time limit of each SecAgg stage; the join window is one stage. */
  stageSeconds: z._default(intIn(1, 3600), 60),
  /** Iterations after the initialisation round at the most. */
  maxRounds: z._default(intIn(1, 1000), 10),
  /** Stop once the centroids stop moving (`spec.tolerance`). */
  untilConverged: z._default(z.boolean(), true),
  /** Consecutive aborted rounds after which training stops. */
  maxFailures: z._default(intIn(1, 100), 5),
});
export type TrainingSchedule = z.infer<typeof TrainingSchedule>;

const DEFAULT_SCHEDULE = {
  cadenceSeconds: 0,
  stageSeconds: 60,
  maxRounds: 10,
  untilConverged: true,
  maxFailures: 5,
};

/** A k-means (segments) declaration. */
export const KMeansDeclaration = z.strictObject({
  v: WireVersion,
  kind: z.literal("kmeans"),
  spec: KMeansSpec,
  dp: TrainingDp,
  cohort: TrainingCohort,
  schedule: z._default(TrainingSchedule, DEFAULT_SCHEDULE),
});
export type KMeansDeclaration = z.infer<typeof KMeansDeclaration>;

/** An FCF (recommendations) declaration: the public catalogue comes with it. */
export const FcfDeclaration = z.strictObject({
  v: WireVersion,
  kind: z.literal("fcf"),
  spec: FcfSpec,
  catalogue: Catalogue,
  dp: TrainingDp,
  cohort: TrainingCohort,
  schedule: z._default(TrainingSchedule, DEFAULT_SCHEDULE),
});
export type FcfDeclaration = z.infer<typeof FcfDeclaration>;

/** `PUT /v1/models/{modelId}` (secret key): declare, or re-declare, a model. */
export const ModelDeclaration = z.discriminatedUnion("kind", [KMeansDeclaration, FcfDeclaration]);
export type ModelDeclaration = z.infer<typeof ModelDeclaration>;
export type ModelDeclarationInput = z.input<typeof ModelDeclaration>;

/** The kinds of model the trainer runs. */
export const ModelKind = z.enum(["kmeans", "fcf"]);
export type ModelKind = z.infer<typeof ModelKind>;

/** Phases of a k-means training run. */
export const KMeansPhase = z.enum(["init", "lloyd"]);
export type KMeansPhase = z.infer<typeof KMeansPhase>;

/** Phases of any training run: k-means' two, and FCF's `train` (every round is a gradient step). */
export const TrainingPhase = z.enum(["init", "lloyd", "train"]);
export type TrainingPhase = z.infer<typeof TrainingPhase>;

/**
 * What a device computes in a trainer's round, handed out at check-in: the kind, the phase, the
 * spec, and the model version the round improves on (devices pull it by version, with an ETag).
 */
export const KMeansTask = z.strictObject({
  kind: z.literal("kmeans"),
  phase: KMeansPhase,
  iteration: z.int().check(z.nonnegative()),
  spec: KMeansSpec,
  baseVersion: z.nullable(z.int().check(z.positive())),
});
export type KMeansTask = z.infer<typeof KMeansTask>;

/** An FCF round: the item block whose gradient devices send (public, the trainer's choice). */
export const FcfTask = z.strictObject({
  kind: z.literal("fcf"),
  phase: z.literal("train"),
  iteration: z.int().check(z.nonnegative()),
  spec: FcfSpec,
  block: z.strictObject({
    index: z.int().check(z.nonnegative()),
    start: z.int().check(z.nonnegative()),
    size: z.int().check(z.positive()),
  }),
  baseVersion: z.int().check(z.positive()),
});
export type FcfTask = z.infer<typeof FcfTask>;

export const RoundTask = z.discriminatedUnion("kind", [KMeansTask, FcfTask]);
export type RoundTask = z.infer<typeof RoundTask>;

/** Thresholds of the SDK's tag rules, from the trainer's DP quantiles (real units). */
export const PublishedTagThresholds = z.strictObject({
  newMaxTenureDays: z.optional(z.number().check(z.nonnegative())),
  highValueMinMonetary: z.optional(z.number()),
  loyalMinFrequency: z.optional(z.number().check(z.positive())),
  lapsedMinRecencyDays: z.optional(z.number().check(z.nonnegative())),
  atRiskMinRecencyDays: z.optional(z.number().check(z.nonnegative())),
});
export type PublishedTagThresholds = z.infer<typeof PublishedTagThresholds>;

/** One segment of a published k-means model. */
export const Segment = z.object({
  id: z.int().check(z.nonnegative()),
  label: z.string(),
  /** The centroid in the standardised space (vector order). */
  centroid: z.array(z.number()),
  /** The centroid in real units: days, orders, money, shares. */
  real: z.record(VectorFieldName, z.number()),
  /** Devices in the segment, as the last round's noisy count estimated (rounded, never negative). */
  size: z.number().check(z.nonnegative()),
});
export type Segment = z.infer<typeof Segment>;

/** What a k-means model version carries besides its weights (the flattened centroids). */
export const KMeansModelParams = z.object({
  kind: z.literal("kmeans"),
  phase: KMeansPhase,
  iteration: z.int().check(z.nonnegative()),
  fields: z.array(VectorFieldName),
  reference: z.record(VectorFieldName, z.object({ mean: z.number(), sd: z.number().check(z.positive()) })),
  segments: z.array(Segment).check(z.minLength(1)),
  tagThresholds: PublishedTagThresholds,
  /** Largest centroid move in this round (standardised units); null for the initialisation. */
  shift: z.nullable(z.number().check(z.nonnegative())),
  converged: z.boolean(),
});
export type KMeansModelParams = z.infer<typeof KMeansModelParams>;

/**
 * What an FCF model version carries besides its weights (the item factors, int8 with a float32
 * scale per row: `models/fcf-layout.ts`). Everything here is public or a DP release.
 */
export const FcfModelParams = z.object({
  kind: z.literal("fcf"),
  iteration: z.int().check(z.nonnegative()),
  /** The spec trained with: devices solve their user factor with its confidences and λ. */
  spec: FcfSpec,
  rank: z.int().check(z.positive()),
  encoding: z.literal("int8-row-scale"),
  items: z.array(z.string()),
  categories: z.optional(z.array(z.nullable(z.string()))),
  /** YᵀY of the published (dequantised) factors, row-major rank × rank: every user's solve needs it. */
  gram: z.array(z.number()),
  /** DP purchase counts per item (the noisy count slots of the rounds so far, rounded, ≥ 0): the cold start. */
  popularity: z.array(z.number().check(z.nonnegative())),
  /** Blocks updated so far, and the block count. */
  blocks: z.int().check(z.positive()),
});
export type FcfModelParams = z.infer<typeof FcfModelParams>;

/** The parameters of a trainer's model version, by kind. */
export const ModelParams = z.discriminatedUnion("kind", [KMeansModelParams, FcfModelParams]);
export type ModelParams = z.infer<typeof ModelParams>;

/** One round of a model's training history. */
export const TrainingRound = z.object({
  roundId: RoundId,
  phase: TrainingPhase,
  iteration: z.int().check(z.nonnegative()),
  stage: z.enum(["closed", "aborted"]),
  outcome: z.string(),
  contributors: z.int().check(z.nonnegative()),
  modelVersion: z.nullable(z.int().check(z.positive())),
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
  kind: ModelKind,
  declaration: ModelDeclaration,
  trainer: TrainerPhase,
  phase: TrainingPhase,
  iteration: z.int().check(z.nonnegative()),
  roundsOpened: z.int().check(z.nonnegative()),
  currentRound: z.nullable(RoundId),
  nextRoundAt: z.nullable(EpochMillis),
  latestVersion: z.nullable(z.int().check(z.positive())),
  stoppedReason: z.nullable(z.string()),
  declaredAt: EpochMillis,
});
export type ModelStatus = z.infer<typeof ModelStatus>;

export const TrainingRoundPage = z.object({
  v: WireVersion,
  modelId: ModelId,
  rounds: z.array(TrainingRound),
});
export type TrainingRoundPage = z.infer<typeof TrainingRoundPage>;
