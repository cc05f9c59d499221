/**
 * What the auditor and budget routes answer, in `zod/mini` like every wire schema: the typed
 * client (`../client`) parses them in the CLI and the compliance dashboard, and the coordinator
 * documents them through classic-zod views (`coordinator/src/wire/privacy.ts`). One schema each.
 */
import * as z from "zod/mini";
import { EpochMillis, ModelId, WireVersion } from "./common";

/** A model's budget position, as the ledger's head states it (`GET /v1/privacy/budgets/{modelId}`). */
export const PrivacyBudgetStatus = z.object({
  v: WireVersion,
  modelId: ModelId,
  epsilonCap: z.number().check(z.positive()),
  delta: z.number().check(z.gt(0), z.lt(1)),
  population: z.nullable(z.int().check(z.positive())),
  /** Cumulative epsilon spent at `delta`, from the accountant state in the ledger head. */
  epsilonSpent: z.number().check(z.nonnegative()),
  remaining: z.number(),
  /** Ledger entries of this model's chain. */
  entries: z.int().check(z.nonnegative()),
  headHash: z.nullable(z.string()),
  updatedAt: EpochMillis,
});
export type PrivacyBudgetStatus = z.infer<typeof PrivacyBudgetStatus>;

/** The coordinator's ledger-signing public key (`GET /v1/audit/public-key`; auditors pin it). */
export const LedgerPublicKey = z.object({
  v: WireVersion,
  algorithm: z.literal("Ed25519"),
  /** 32 bytes, lower-case hex. */
  publicKey: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
  /** First 16 hex digits of SHA-256(publicKey), as recorded in every entry. */
  keyId: z.string().check(z.regex(/^[0-9a-f]{16}$/)),
});
export type LedgerPublicKey = z.infer<typeof LedgerPublicKey>;

/**
 * One page of `GET /v1/audit/ledger`: raw rows, verbatim as stored (the verifier parses and names
 * a malformed one), in (model, seq) order; `nextCursor` continues it.
 */
export const LedgerPage = z.strictObject({
  v: z.literal(1),
  entries: z.array(z.unknown()).check(z.describe("signed ledger entries, verbatim as stored")),
  nextCursor: z.nullable(z.string()),
});
export type LedgerPage = z.infer<typeof LedgerPage>;
