/**
 * The ledger's storage port. `edge/` implements it over a D1 table; tests and the CLI use the
 * in-memory implementation. The store is append-only: an implementation must reject an entry
 * whose `seq` is not exactly one past the chain's head (a unique key on (tenant, model, seq) and
 * a conditional insert do this in SQL).
 */

import { PrivacyError } from "../dp/errors.ts";
import type { LedgerEntry } from "./schema.ts";

/** One hash chain: a tenant's model. */
export interface LedgerScope {
  readonly tenant: string;
  readonly model: string;
}

/** A page request: entries with `seq > afterSeq`, at most `limit`. */
export interface LedgerPageRequest {
  readonly afterSeq?: number;
  readonly limit: number;
}

/** Storage for signed ledger entries. */
export interface LedgerStore {
  /** Appends `entry`; rejects if `entry.seq` is not the head's `seq + 1` (0 for an empty chain). */
  append(entry: LedgerEntry): Promise<void>;
  /** The last entry of the chain, or null. */
  head(scope: LedgerScope): Promise<LedgerEntry | null>;
  /** Entries in `seq` order, after `afterSeq`. */
  list(scope: LedgerScope, page: LedgerPageRequest): Promise<LedgerEntry[]>;
}

/** Thrown by a store when an append would not extend the chain head. */
export class LedgerConflictError extends PrivacyError {
  constructor(message: string) {
    super("ledger_conflict", message, 409);
  }
}

/** Reads a whole chain through the paged `list`. */
export async function readAll(
  store: LedgerStore,
  scope: LedgerScope,
  pageSize = 500,
): Promise<LedgerEntry[]> {
  const out: LedgerEntry[] = [];
  let after: number | undefined;
  for (;;) {
    const page = await store.list(
      scope,
      after === undefined ? { limit: pageSize } : { afterSeq: after, limit: pageSize },
    );
    out.push(...page);
    if (page.length < pageSize) return out;
    after = page[page.length - 1]!.seq;
  }
}

/** An in-memory {@link LedgerStore} (tests, the CLI's file mode, local simulation). */
export class MemoryLedgerStore implements LedgerStore {
  private readonly chains = new Map<string, LedgerEntry[]>();

  private key(scope: LedgerScope): string {
    return JSON.stringify([scope.tenant, scope.model]);
  }

  async append(entry: LedgerEntry): Promise<void> {
    const k = this.key(entry);
    const chain = this.chains.get(k) ?? [];
    const expected = chain.length;
    if (entry.seq !== expected) {
      throw new LedgerConflictError(
        `append of seq ${entry.seq} to ${entry.tenant}/${entry.model}: head expects ${expected}`,
      );
    }
    chain.push(entry);
    this.chains.set(k, chain);
  }

  async head(scope: LedgerScope): Promise<LedgerEntry | null> {
    const chain = this.chains.get(this.key(scope));
    return chain?.[chain.length - 1] ?? null;
  }

  async list(scope: LedgerScope, page: LedgerPageRequest): Promise<LedgerEntry[]> {
    const chain = this.chains.get(this.key(scope)) ?? [];
    const start = page.afterSeq === undefined ? 0 : page.afterSeq + 1;
    return chain.slice(start, start + page.limit);
  }
}
