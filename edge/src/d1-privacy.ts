/**
 * D1 implementations of the privacy ports: budget caps and the append-only ledger table.
 */
import {
  type AuditLedgerStore,
  type BudgetReservation,
  FedprofileError,
  type PrivacyBudget,
  type PrivacyBudgetStore,
} from "@fedprofile/coordinator";
import { DpEvent } from "@fedprofile/coordinator/dp";
import {
  type LedgerCheckpoint,
  LedgerCheckpoint as LedgerCheckpointSchema,
  LedgerConflictError,
  type LedgerEntry,
  LedgerEntry as LedgerEntrySchema,
  type LedgerPageRequest,
  type LedgerScope,
} from "@fedprofile/coordinator/ledger";

export class D1PrivacyBudgetStore implements PrivacyBudgetStore {
  constructor(private readonly db: D1Database) {}

  async get(tenantId: string, modelId: string): Promise<PrivacyBudget | null> {
    const row = await this.db
      .prepare(
        `SELECT epsilon_cap, delta, population, updated_at, version FROM privacy_budgets
         WHERE tenant_id = ? AND model_id = ?`,
      )
      .bind(tenantId, modelId)
      .first<{
        epsilon_cap: number;
        delta: number;
        population: number | null;
        updated_at: number;
        version: number;
      }>();
    return row
      ? {
          epsilonCap: row.epsilon_cap,
          delta: row.delta,
          population: row.population,
          updatedAt: row.updated_at,
          version: row.version,
        }
      : null;
  }

  async set(tenantId: string, modelId: string, budget: Omit<PrivacyBudget, "version">): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO privacy_budgets (tenant_id, model_id, epsilon_cap, delta, population, updated_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, model_id) DO UPDATE SET
           epsilon_cap = excluded.epsilon_cap, delta = excluded.delta,
           population = excluded.population, updated_at = excluded.updated_at,
           version = privacy_budgets.version + 1`,
      )
      .bind(tenantId, modelId, budget.epsilonCap, budget.delta, budget.population, budget.updatedAt)
      .run();
  }

  async reservations(tenantId: string, modelId: string, now: number): Promise<BudgetReservation[]> {
    const { results } = await this.db
      .prepare(
        `SELECT round_id, event, expires_at FROM privacy_reservations
         WHERE tenant_id = ? AND model_id = ? AND expires_at > ?`,
      )
      .bind(tenantId, modelId, now)
      .all<{ round_id: string; event: string; expires_at: number }>();
    return results.map((row) => ({
      roundId: row.round_id,
      event: DpEvent.parse(JSON.parse(row.event)),
      expiresAt: row.expires_at,
    }));
  }

  async reserve(
    tenantId: string,
    modelId: string,
    expectedVersion: number,
    reservation: BudgetReservation,
  ): Promise<boolean> {
    // One transaction: the version bump names this call's token, and the insert happens only
    // under that token, so of two callers that read the same version exactly one reserves.
    const token = crypto.randomUUID();
    const [bump] = await this.db.batch([
      this.db
        .prepare(
          `UPDATE privacy_budgets SET version = version + 1, reserve_token = ?
           WHERE tenant_id = ? AND model_id = ? AND version = ?`,
        )
        .bind(token, tenantId, modelId, expectedVersion),
      this.db
        .prepare(
          `INSERT INTO privacy_reservations (tenant_id, model_id, round_id, event, expires_at)
           SELECT ?1, ?2, ?3, ?4, ?5
           WHERE (SELECT reserve_token FROM privacy_budgets WHERE tenant_id = ?1 AND model_id = ?2) = ?6
           ON CONFLICT (tenant_id, model_id, round_id) DO UPDATE SET
             event = excluded.event, expires_at = excluded.expires_at`,
        )
        .bind(
          tenantId,
          modelId,
          reservation.roundId,
          JSON.stringify(reservation.event),
          reservation.expiresAt,
          token,
        ),
    ]);
    return (bump?.meta.changes ?? 0) === 1;
  }

  async release(tenantId: string, modelId: string, roundId: string): Promise<void> {
    await this.db
      .prepare("DELETE FROM privacy_reservations WHERE tenant_id = ? AND model_id = ? AND round_id = ?")
      .bind(tenantId, modelId, roundId)
      .run();
  }
}

interface LedgerRow {
  tenant_id: string;
  model_id: string;
  seq: number;
  prev_hash: string;
  hash: string;
  signature: string;
  body: string;
}

const LEDGER_COLUMNS = "tenant_id, model_id, seq, prev_hash, hash, signature, body";

/**
 * A row as the auditor receives it: the columns over the JSON body, so a change to any column
 * shows in the verified entry. A body that is not JSON stays a string, for the verifier to name.
 */
function rawEntryOf(row: LedgerRow): unknown {
  let body: unknown;
  try {
    body = JSON.parse(row.body);
  } catch {
    body = { body: row.body };
  }
  const fields = typeof body === "object" && body !== null && !Array.isArray(body) ? body : { body };
  return {
    ...fields,
    tenant: row.tenant_id,
    model: row.model_id,
    seq: row.seq,
    prevHash: row.prev_hash,
    hash: row.hash,
    signature: row.signature,
  };
}

function entryOf(row: LedgerRow): LedgerEntry {
  const parsed = LedgerEntrySchema.safeParse(rawEntryOf(row));
  if (!parsed.success) {
    // Fails closed: no budget figure or DP round is served from a chain that does not parse.
    throw new FedprofileError(
      "privacy_ledger_corrupt",
      `privacy_ledger row ${row.tenant_id}/${row.model_id}#${row.seq} is not a valid entry; run fedprofile audit verify`,
      500,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

export class D1LedgerStore implements AuditLedgerStore {
  constructor(private readonly db: D1Database) {}

  async append(entry: LedgerEntry): Promise<void> {
    const { tenant, model, seq, prevHash, hash, signature, ...rest } = entry;
    // Inserts only when `seq` extends the head: concurrent appenders cannot both win.
    let changes = 0;
    try {
      const result = await this.db
        .prepare(
          `INSERT INTO privacy_ledger (${LEDGER_COLUMNS})
           SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
           WHERE (SELECT COALESCE(MAX(seq), -1) FROM privacy_ledger WHERE tenant_id = ?1 AND model_id = ?2) = ?3 - 1`,
        )
        .bind(tenant, model, seq, prevHash, hash, signature, JSON.stringify(rest))
        .run();
      changes = result.meta.changes;
    } catch (cause) {
      if (!String(cause).includes("UNIQUE")) throw cause;
    }
    if (changes !== 1) {
      throw new LedgerConflictError(
        `append of seq ${seq} to ${tenant}/${model}: it does not extend the head`,
      );
    }
  }

  async head(scope: LedgerScope): Promise<LedgerEntry | null> {
    const row = await this.db
      .prepare(
        `SELECT ${LEDGER_COLUMNS} FROM privacy_ledger WHERE tenant_id = ? AND model_id = ? ORDER BY seq DESC LIMIT 1`,
      )
      .bind(scope.tenant, scope.model)
      .first<LedgerRow>();
    return row ? entryOf(row) : null;
  }

  async roundEntry(scope: LedgerScope, roundId: string): Promise<LedgerEntry | null> {
    const row = await this.db
      .prepare(
        `SELECT ${LEDGER_COLUMNS} FROM privacy_ledger
         WHERE tenant_id = ? AND model_id = ? AND json_extract(body, '$.roundId') = ? ORDER BY seq LIMIT 1`,
      )
      .bind(scope.tenant, scope.model, roundId)
      .first<LedgerRow>();
    return row ? entryOf(row) : null;
  }

  async list(scope: LedgerScope, page: LedgerPageRequest): Promise<LedgerEntry[]> {
    const { results } = await this.db
      .prepare(
        `SELECT ${LEDGER_COLUMNS} FROM privacy_ledger WHERE tenant_id = ? AND model_id = ? AND seq > ?
         ORDER BY seq LIMIT ?`,
      )
      .bind(scope.tenant, scope.model, page.afterSeq ?? -1, page.limit)
      .all<LedgerRow>();
    return results.map(entryOf);
  }

  async rows(tenantId: string, query: { model?: string; cursor: string | null; limit: number }) {
    const [afterModel = "", afterSeq = "-1"] = query.cursor?.split(":") ?? [];
    const { results } = await this.db
      .prepare(
        `SELECT ${LEDGER_COLUMNS} FROM privacy_ledger
         WHERE tenant_id = ?1 AND (?2 IS NULL OR model_id = ?2)
           AND (model_id > ?3 OR (model_id = ?3 AND seq > ?4))
         ORDER BY model_id, seq LIMIT ?5`,
      )
      .bind(tenantId, query.model ?? null, afterModel, Number(afterSeq), query.limit + 1)
      .all<LedgerRow>();
    const page = results.slice(0, query.limit);
    const last = page.at(-1);
    return {
      rows: page.map(rawEntryOf),
      nextCursor: results.length > query.limit && last ? `${last.model_id}:${last.seq}` : null,
    };
  }

  async scopes(): Promise<LedgerScope[]> {
    const { results } = await this.db
      .prepare("SELECT DISTINCT tenant_id, model_id FROM privacy_ledger ORDER BY tenant_id, model_id")
      .all<{ tenant_id: string; model_id: string }>();
    return results.map((r) => ({ tenant: r.tenant_id, model: r.model_id }));
  }

  async putCheckpoint(checkpoint: LedgerCheckpoint): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO ledger_checkpoints (tenant_id, model_id, seq, timestamp, checkpoint) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      )
      .bind(
        checkpoint.tenant,
        checkpoint.model,
        checkpoint.seq,
        checkpoint.timestamp,
        JSON.stringify(checkpoint),
      )
      .run();
  }

  async checkpoints(scope: LedgerScope, limit: number): Promise<LedgerCheckpoint[]> {
    const { results } = await this.db
      .prepare(
        `SELECT checkpoint FROM ledger_checkpoints WHERE tenant_id = ? AND model_id = ?
         ORDER BY timestamp DESC, seq DESC LIMIT ?`,
      )
      .bind(scope.tenant, scope.model, limit)
      .all<{ checkpoint: string }>();
    // Signed by the coordinator; a row that does not parse is storage damage, so fail closed.
    return results.reverse().map((r) => LedgerCheckpointSchema.parse(JSON.parse(r.checkpoint)));
  }
}
