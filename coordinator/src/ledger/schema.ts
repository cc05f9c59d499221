/**
 * The privacy ledger entry, version 1: the zod schema is the single source of truth for what is
 * stored, hashed, signed, exported, verified and documented in `/openapi.json`. `SPEC.md` beside
 * this file is the written standard; keep the two in step.
 *
 * Five kinds share one chain per (tenant, model): `round` (a released aggregate and what it
 * spent), `clip_quantile` (an adaptive-clipping release), `policy` (the cap, delta and declared
 * DP settings, whenever they change), `key_rotation` (signed by the old and the new key) and
 * `publication` (binds a published model version to the round entry that released its input).
 * Every entry carries the accountant's cumulative state after it, is chained to its predecessor
 * by hash and signed by the coordinator. Unknown members are rejected (`.strict()`): a verifier
 * must never pass an entry with members it does not check.
 */

import * as dp from "@fedprofile/protocol/dp";
import * as z from "zod";
import { toClassic } from "../wire/classic.ts";

/** The protocol's (`zod/mini`) event schema, seen as classic zod for `/openapi.json`. */
const ComposedEvent = toClassic(dp.ComposedEvent);

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));

/** SHA-256 digest, lower-case hex. */
export const Sha256Hex = hex(32);
/** The genesis entry's `prevHash`. */
export const GENESIS_HASH = "0".repeat(64);

/** How the cohort was drawn; amplification is claimed only for a uniform sample. */
export const LedgerSampling = z
  .object({
    /** The coordinator sampled the cohort uniformly (Poisson) from a known population. */
    uniform: z.boolean(),
    /** The sampling rate used (1 when not uniform). */
    rate: z.number().gt(0).max(1),
    /** Size of the population sampled from, when uniform. */
    population: z.number().int().positive().optional(),
  })
  .strict();
export type LedgerSampling = z.infer<typeof LedgerSampling>;

/** Noise parameters as run. */
export const LedgerNoise = z
  .object({
    /** Stddev of the noise on each coordinate of the released aggregate (unscaled units). */
    sigma: z.number().nonnegative().finite(),
    /** Noise multiplier: `sigma` over the L2 sensitivity used by the accountant. */
    noiseMultiplier: z.number().nonnegative().finite(),
    /** Per-client noise stddev (distributed mechanisms). */
    localStddev: z.number().positive().finite().optional(),
    /** Noise shares counted by the accountant: survivors minus assumed colluders. */
    noiseShares: z.number().int().positive().optional(),
    /** Total variance actually present: survivors x per-client variance (distributed), or sigma^2. */
    varianceActual: z.number().nonnegative().finite(),
  })
  .strict();
export type LedgerNoise = z.infer<typeof LedgerNoise>;

/** Who took part. */
export const LedgerCohort = z
  .object({
    /** Clients selected for the round. */
    size: z.number().int().nonnegative(),
    /** Clients whose masked input entered the sum. */
    survivors: z.number().int().nonnegative(),
    /** SecAgg threshold t. */
    threshold: z.number().int().nonnegative().optional(),
    /** Clients assumed to collude with the coordinator (their noise is not counted). */
    colluders: z.number().int().nonnegative(),
  })
  .strict();
export type LedgerCohort = z.infer<typeof LedgerCohort>;

/** A clipping-quantile release (Andrew et al. 2021). */
export const LedgerClipRelease = z
  .object({
    previousClip: z.number().positive().finite(),
    nextClip: z.number().positive().finite(),
    targetQuantile: z.number().gt(0).lt(1),
    learningRate: z.number().positive().finite(),
    countStddev: z.number().positive().finite(),
    noisyFraction: z.number().min(0).max(1),
    /** The count was released inside this round entry's vector; its noise is in that entry's events. */
    accountedInSeq: z.number().int().nonnegative(),
  })
  .strict();
export type LedgerClipRelease = z.infer<typeof LedgerClipRelease>;

/** The accountant's cumulative state after this entry. */
export const LedgerAccountant = z
  .object({
    /** RDP orders, or "default" for dp_accounting's default orders (DEFAULT_RDP_ORDERS). */
    orders: z.union([z.literal("default"), z.array(z.number().gt(1)).min(1)]),
    /** Cumulative RDP at each order. */
    rdp: z.array(z.number().nonnegative()),
  })
  .strict();
export type LedgerAccountant = z.infer<typeof LedgerAccountant>;

/** SHA-256 of what a round released (RFC 8785 bytes of the decoded aggregate). */
export const LedgerRoundRelease = z
  .object({
    /** SHA-256 of the RFC 8785 canonical JSON of the released aggregate (an array of numbers). */
    aggregateSha256: Sha256Hex,
  })
  .strict();
export type LedgerRoundRelease = z.infer<typeof LedgerRoundRelease>;

/** The privacy policy in force from this entry on. */
export const LedgerPolicy = z
  .object({
    /** What changed it: the budget route, or a model declaration. */
    source: z.enum(["budget", "model_declaration"]),
    epsilonCap: z.number().positive().finite(),
    delta: z.number().gt(0).lt(1),
    /** The population behind the default delta, when the operator gave one. */
    population: z.number().int().positive().nullable(),
    /** Declared DP mechanism of the model's rounds (model declarations). */
    mechanism: z.enum(["distributed_discrete_gaussian", "central_gaussian"]).optional(),
    /** Declared epsilon of the whole training run (model declarations). */
    targetEpsilon: z.number().positive().finite().optional(),
    /** Declared fewest noise shares of any released sum (model declarations). */
    minNoiseShares: z.number().int().positive().optional(),
    /** Declared modulus bits of the SecAgg arithmetic (model declarations). */
    modulusBits: z.number().int().min(1).max(64).optional(),
    /** Declared L2 clip, when the declaration fixes one. */
    clipNorm: z.number().positive().finite().optional(),
    /** Declared threat preset (how many colluders and whether the server may be malicious). */
    threatModel: z.string().min(1).max(64).optional(),
  })
  .strict();
export type LedgerPolicy = z.infer<typeof LedgerPolicy>;

/** The key that signs from the next entry on. */
export const LedgerKeyRotation = z
  .object({
    /** The key signing this entry (the entry's `keyId`), so a verifier pinned to the new key can check the history. */
    previousPublicKey: hex(32),
    /** The new Ed25519 public key, 64 lower-case hex digits. */
    publicKey: hex(32),
    /** Its keyId (first 16 hex digits of SHA-256 of the 32 key bytes). */
    keyId: hex(8),
  })
  .strict();
export type LedgerKeyRotation = z.infer<typeof LedgerKeyRotation>;

/** A published model version, bound to the round entry whose aggregate it was computed from. */
export const LedgerPublication = z
  .object({
    roundId: z.string().min(1).max(64),
    /** `seq` of that round's entry in this chain. */
    roundSeq: z.number().int().nonnegative(),
    /** Equal to that entry's `release.aggregateSha256`. */
    aggregateSha256: Sha256Hex,
    /** The model version number published. */
    modelVersion: z.number().int().positive(),
    /** SHA-256 of the RFC 8785 canonical JSON of `GET /v1/models/{model}/versions/{modelVersion}`. */
    modelVersionSha256: Sha256Hex,
  })
  .strict();
export type LedgerPublication = z.infer<typeof LedgerPublication>;

/** Members every kind carries. */
const common = {
  v: z.literal(1),
  /** Position in this (tenant, model) chain, from 0. */
  seq: z.number().int().nonnegative(),
  tenant: z.string().min(1).max(128),
  model: z.string().min(1).max(128),
  /** The model's round number; other kinds carry the number of the last round before them (0: none). */
  round: z.number().int().nonnegative(),
  /** ISO 8601 time the entry was written (UTC, `Z`). */
  timestamp: z.iso.datetime(),
  accountant: LedgerAccountant,
  /** The cumulative guarantee after this entry, recomputed by verifiers from `events`. */
  cumulative: z
    .object({ epsilon: z.number().nonnegative(), delta: z.number().gt(0).lt(1), optimalOrder: z.number() })
    .strict(),
  /** The cap in force and what remains of it after this entry. */
  budget: z.object({ epsilonCap: z.number().positive(), remaining: z.number() }).strict(),
  /** SHA-256 of the previous entry (GENESIS_HASH for seq 0). */
  prevHash: Sha256Hex,
  /** First 16 hex digits of SHA-256(32-byte public key) of the key that signs this entry. */
  keyId: hex(8),
};

/** Members of the entries that release data (`round`, `clip_quantile`). */
const release = {
  /** The coordinator's id of the round. */
  roundId: z.string().min(1).max(64).optional(),
  mechanism: z.enum(["distributed_discrete_gaussian", "skellam", "central_gaussian", "none"]),
  /** distributed: clients noise before masking; central: the coordinator adds noise. */
  trustModel: z.enum(["distributed", "central"]),
  noise: LedgerNoise,
  /** L2 clip (sensitivity before rounding inflation). */
  clipNorm: z.number().positive().finite(),
  /** Bits of the modular arithmetic, or null when none. */
  modulusBits: z.number().int().min(1).max(64).nullable(),
  cohort: LedgerCohort,
  sampling: LedgerSampling,
  /** What this entry spends (possibly nothing, for a release accounted in another entry). */
  events: z.array(ComposedEvent),
};

const RoundBody = z
  .object({ ...common, kind: z.literal("round"), ...release, release: LedgerRoundRelease.optional() })
  .strict();
const ClipBody = z
  .object({ ...common, kind: z.literal("clip_quantile"), ...release, clipRelease: LedgerClipRelease })
  .strict();
const PolicyBody = z.object({ ...common, kind: z.literal("policy"), policy: LedgerPolicy }).strict();
const RotationBody = z
  .object({ ...common, kind: z.literal("key_rotation"), rotation: LedgerKeyRotation })
  .strict();
const PublicationBody = z
  .object({ ...common, kind: z.literal("publication"), publication: LedgerPublication })
  .strict();

/** The members covered by the hash and the signature: the entry without `hash`, `signature`, `rotationSignature`. */
export const LedgerEntryBody = z.discriminatedUnion("kind", [
  RoundBody,
  ClipBody,
  PolicyBody,
  RotationBody,
  PublicationBody,
]);
export type LedgerEntryBody = z.infer<typeof LedgerEntryBody>;

const sealed = {
  /** SHA-256 over the RFC 8785 canonical JSON of the body, lower-case hex. */
  hash: Sha256Hex,
  /** Ed25519 signature (RFC 8032) of the 32 raw hash bytes by the key `keyId`, lower-case hex. */
  signature: hex(64),
};

/** A stored, signed ledger entry. */
export const LedgerEntry = z
  .discriminatedUnion("kind", [
    RoundBody.extend(sealed).strict(),
    ClipBody.extend(sealed).strict(),
    PolicyBody.extend(sealed).strict(),
    RotationBody.extend({
      ...sealed,
      /** Ed25519 signature of the same 32 hash bytes by the *new* key. */
      rotationSignature: hex(64),
    }).strict(),
    PublicationBody.extend(sealed).strict(),
  ])
  .meta({ id: "LedgerEntry", description: "A signed privacy ledger entry (coordinator/src/ledger/SPEC.md)" });
export type LedgerEntry = z.infer<typeof LedgerEntry>;

/** The entries that release data and spend budget. */
export type ReleaseEntry = Extract<LedgerEntry, { kind: "round" | "clip_quantile" }>;
/** Bodies of those entries. */
export type ReleaseEntryBody = Extract<LedgerEntryBody, { kind: "round" | "clip_quantile" }>;

/** True for the entries that release data (`round`, `clip_quantile`). */
export function isReleaseEntry(e: LedgerEntry): e is ReleaseEntry {
  return e.kind === "round" || e.kind === "clip_quantile";
}

/** The auditor API's page of entries. */
/** The auditor API's page of entries: the protocol's wire schema (one definition). */
export { LedgerPage } from "@fedprofile/protocol/wire";

/** A signed chain head (in the style of Certificate Transparency's signed tree head, RFC 6962 §3.5). */
export const LedgerCheckpointBody = z
  .object({
    v: z.literal(1),
    /** Domain separation: no entry body has this member. */
    type: z.literal("fedprofile-ledger-checkpoint"),
    tenant: z.string().min(1).max(128),
    model: z.string().min(1).max(128),
    /** The head's seq. */
    seq: z.number().int().nonnegative(),
    /** The head's hash. */
    hash: Sha256Hex,
    /** When the coordinator signed the checkpoint. */
    timestamp: z.iso.datetime(),
    keyId: hex(8),
  })
  .strict();
export type LedgerCheckpointBody = z.infer<typeof LedgerCheckpointBody>;

/** A checkpoint with its signature over SHA-256 of the RFC 8785 bytes of the body. */
export const LedgerCheckpoint = LedgerCheckpointBody.extend({ signature: hex(64) })
  .strict()
  .meta({ id: "LedgerCheckpoint" });
export type LedgerCheckpoint = z.infer<typeof LedgerCheckpoint>;

/**
 * A witness document (SPEC.md §8.2): checkpoints a witness keeps, and what
 * `GET /v1/audit/checkpoints` publishes, so a fetched page can be stored as is.
 */
export const LedgerWitness = z
  .object({
    v: z.literal(1),
    type: z.literal("fedprofile-ledger-witness"),
    checkpoints: z.array(LedgerCheckpoint),
  })
  .strict()
  .meta({ id: "LedgerWitness" });
export type LedgerWitness = z.infer<typeof LedgerWitness>;
