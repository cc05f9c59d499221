/**
 * The tamper-evident privacy ledger: signed, hash-chained entries per (tenant, model), budget
 * caps checked before rounds, independent verification, and exports.
 *
 * @packageDocumentation
 */

export { LedgerVerificationError, PrivacyBudgetExceededError, PrivacyError } from "../dp/errors.ts";
export * from "./canonical-json.ts";
export * from "./chain.ts";
export * from "./document.ts";
export * from "./ed25519.ts";
export * from "./export.ts";
export * from "./keys.ts";
export * from "./ledger.ts";
export * from "./schema.ts";
export * from "./store.ts";
export * from "./strict-json.ts";
export * from "./verify.ts";
