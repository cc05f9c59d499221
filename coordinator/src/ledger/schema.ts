/**
 * The privacy ledger entry, version 1: the zod schema is the single source of truth for what is
 * stored, hashed, signed, exported and verified.
 *
 * One entry is written per aggregation round and per clipping-quantile release. Each entry
 * states what it spent (`events`), under which mechanism and trust model, and the accountant's
 * cumulative state after it, and is chained to its predecessor by hash and signed by the
 * coordinator.
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

/** Fields covered by the hash and the signature. */
export const LedgerEntryBody = z
  .object({
    v: z.literal(1),
    /** Position in this (tenant, model) chain, from 0. */
    seq: z.number().int().nonnegative(),
    tenant: z.string().min(1).max(128),
    model: z.string().min(1).max(128),
    kind: z.enum(["round", "clip_quantile"]),
    /** The model's round number. */
    round: z.number().int().nonnegative(),
    /** The coordinator's id of the round (links the entry to the model version it released). */
    roundId: z.string().min(1).max(64).optional(),
    /** ISO 8601 time the entry was written. */
    timestamp: z.iso.datetime(),
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
    accountant: LedgerAccountant,
    cumulative: z
      .object({ epsilon: z.number().nonnegative(), delta: z.number().gt(0).lt(1), optimalOrder: z.number() })
      .strict(),
    budget: z.object({ epsilonCap: z.number().positive(), remaining: z.number() }).strict(),
    clipRelease: LedgerClipRelease.optional(),
    /** SHA-256 of the previous entry (GENESIS_HASH for seq 0). */
    prevHash: Sha256Hex,
    /** First 16 hex digits of SHA-256(coordinator public key): which key signed. */
    keyId: hex(8),
  })
  .strict();
export type LedgerEntryBody = z.infer<typeof LedgerEntryBody>;

/** A stored, signed ledger entry. */
export const LedgerEntry = LedgerEntryBody.extend({
  /** SHA-256 over the canonical JSON (RFC 8785) of the body. */
  hash: Sha256Hex,
  /** Ed25519 signature of the 32-byte hash by the coordinator key, lower-case hex. */
  signature: hex(64),
}).strict();
export type LedgerEntry = z.infer<typeof LedgerEntry>;

/** The auditor API's page of entries: the protocol's wire schema (one definition). */
export { LedgerPage } from "@fedprofile/protocol/wire";
