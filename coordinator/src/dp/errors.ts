/**
 * Errors raised by the privacy layer. Each has a stable `code` an operator or a client can
 * switch on and keeps the underlying `cause`; as `FedprofileError`s they reach HTTP clients as
 * the `{error: {code, message}}` envelope with the right status.
 */

import { FedprofileError } from "../errors.ts";

/** Base class of every privacy-layer error. */
export class PrivacyError extends FedprofileError {
  constructor(code: string, message: string, status: number, options?: { cause?: unknown }) {
    super(code, message, status, options);
  }
}

/** What a refused round would have cost. */
export interface BudgetRefusal {
  /** Tenant whose budget is capped. */
  readonly tenant: string;
  /** Model whose budget is capped. */
  readonly model: string;
  /** The configured epsilon cap. */
  readonly epsilonCap: number;
  /** Epsilon spent so far. */
  readonly epsilonSpent: number;
  /** Epsilon after the refused round, had it run. */
  readonly projectedEpsilon: number;
  /** The delta the figures are stated at. */
  readonly delta: number;
}

/**
 * Thrown *before* any device contributes when the next round would push a model's cumulative
 * epsilon past its cap (HTTP 409). The message tells the operator what was spent, what the
 * round would cost, and what to change.
 */
export class PrivacyBudgetExceededError extends PrivacyError {
  /** The figures behind the refusal. */
  readonly refusal: BudgetRefusal;

  constructor(refusal: BudgetRefusal, options?: { cause?: unknown }) {
    const r = refusal;
    super(
      "privacy_budget_exceeded",
      `privacy budget exhausted for tenant "${r.tenant}", model "${r.model}": ` +
        `epsilon spent ${r.epsilonSpent.toFixed(4)} of cap ${r.epsilonCap} (delta ${r.delta.toExponential(2)}); ` +
        `the next round would raise it to ${r.projectedEpsilon.toFixed(4)}. The round was refused before any device ` +
        `contributed. Raise the cap, add noise, lower the sampling rate, or retire the model.`,
      409,
      options,
    );
    this.refusal = refusal;
  }
}

/** A ledger that does not verify (broken chain, bad signature, or a recomputed budget mismatch). */
export class LedgerVerificationError extends PrivacyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ledger_verification_failed", message, 500, options);
  }
}
