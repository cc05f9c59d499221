import * as wire from "@fedprofile/protocol/wire";
import * as z from "zod";
import { LedgerCheckpoint, LedgerEntry } from "../ledger/schema";
import { toClassic } from "./classic";

// The protocol's schemas, seen as classic zod so these classic objects stay documentable.
const WireVersion = toClassic(wire.WireVersion);
const ModelId = toClassic(wire.ModelId);

/**
 * Operator request (secret key) setting a model's privacy budget: the epsilon cap and the delta
 * every figure is stated at. Without `delta` it is 1/population^1.1 (DESIGN.md, privacy model).
 */
export const PrivacyBudgetRequest = z
  .object({
    v: WireVersion,
    epsilonCap: z.number().positive().max(1000),
    delta: z.number().gt(0).lt(1).optional(),
    /** Users the model may ever see; sets the default delta. */
    population: z.number().int().min(2).max(1e12).optional(),
  })
  .strict()
  .refine((r) => r.delta !== undefined || r.population !== undefined, {
    message: "give delta, or population (delta is then 1/population^1.1)",
    path: ["delta"],
  });
export type PrivacyBudgetRequest = z.infer<typeof PrivacyBudgetRequest>;

/** Query of the auditor's ledger pages: every model of the tenant, or one. */
export const LedgerQuery = z.object({
  model: ModelId.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z
    .string()
    .regex(/^([a-z][a-z0-9-]{1,62}:[0-9]{1,15})?$/, "cursor: as returned by the previous page")
    .optional(),
});
export type LedgerQuery = z.infer<typeof LedgerQuery>;

/**
 * One page of raw ledger rows (the protocol's `LedgerPage`, under the name the routes use). The
 * budget and public-key answers are the protocol's `PrivacyBudgetStatus` and `LedgerPublicKey`.
 */
export const LedgerRowsPage = z
  .object({
    v: WireVersion,
    // Documents every row as a LedgerEntry while serving it raw: auditors verify rows as stored,
    // including one that no longer parses, so the page itself does not parse them.
    entries: z.array(z.union([LedgerEntry, z.unknown()])),
    nextCursor: z.string().nullable(),
  })
  .strict();
export type LedgerRowsPage = z.infer<typeof LedgerRowsPage>;

/** Query of the checkpoint route: one chain. */
export const CheckpointQuery = z.object({ model: ModelId });
export type CheckpointQuery = z.infer<typeof CheckpointQuery>;

/** The signed head of one chain (null while the chain is empty). */
export const CheckpointResponse = z.object({ v: WireVersion, checkpoint: LedgerCheckpoint.nullable() });
export type CheckpointResponse = z.infer<typeof CheckpointResponse>;

/** Query of the published-checkpoints route: one chain, the newest `limit` (default 100). */
export const PublishedCheckpointsQuery = z.object({
  model: ModelId,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type PublishedCheckpointsQuery = z.infer<typeof PublishedCheckpointsQuery>;
