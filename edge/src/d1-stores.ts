/**
 * D1 implementations of the coordinator's storage ports. SQL lives here and only here.
 */
import type {
  AdmissionIssuerStore,
  ApiKeyKind,
  ApiKeyRecord,
  ModelDraft,
  ModelStore,
  RoundIndex,
  Tenant,
  TenantStore,
  TrainingStore,
} from "@fedprofile/coordinator";
import {
  AdmissionIssuerStatus,
  ModelDeclaration,
  ModelVersion,
  RoundInfo,
  type RoundStage,
  TrainingRound,
  WIRE_VERSION,
} from "@fedprofile/coordinator/wire";

const KINDS: readonly ApiKeyKind[] = ["publishable", "secret", "auditor"];
const isKind = (kind: string): kind is ApiKeyKind => (KINDS as readonly string[]).includes(kind);

export class D1TenantStore implements TenantStore {
  constructor(private readonly db: D1Database) {}

  async findTenant(tenantId: string): Promise<Tenant | null> {
    const row = await this.db
      .prepare("SELECT id, name, created_at FROM tenants WHERE id = ?")
      .bind(tenantId)
      .first<{ id: string; name: string; created_at: number }>();
    return row ? { id: row.id, name: row.name, createdAt: row.created_at } : null;
  }

  async findApiKey(tenantId: string, keyHash: string): Promise<ApiKeyRecord | null> {
    const row = await this.db
      .prepare("SELECT kind, revoked_at FROM api_keys WHERE key_hash = ? AND tenant_id = ?")
      .bind(keyHash, tenantId)
      .first<{ kind: string; revoked_at: number | null }>();
    if (!row || !isKind(row.kind)) return null;
    return { tenantId, kind: row.kind, revokedAt: row.revoked_at };
  }
}

/** Inserts a tenant and its key digests in one batch (used by the seed step and tests). */
export async function insertTenant(
  db: D1Database,
  tenant: Tenant,
  keys: Partial<Record<ApiKeyKind, { keyHash: string }>>,
): Promise<void> {
  const statements = [
    db
      .prepare("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)")
      .bind(tenant.id, tenant.name, tenant.createdAt),
    ...Object.entries(keys).map(([kind, { keyHash }]) =>
      db
        .prepare("INSERT INTO api_keys (key_hash, tenant_id, kind, created_at) VALUES (?, ?, ?, ?)")
        .bind(keyHash, tenant.id, kind, tenant.createdAt),
    ),
  ];
  await db.batch(statements);
}

interface ModelRow {
  model_id: string;
  version: number;
  round_id: string;
  dimension: number;
  contributions: number;
  aggregation: string;
  weights?: string;
  published_at: number;
  kind?: string | null;
  params?: string | null;
}

function summaryOf(row: ModelRow) {
  return {
    v: WIRE_VERSION,
    modelId: row.model_id,
    version: row.version,
    roundId: row.round_id,
    dimension: row.dimension,
    contributions: row.contributions,
    aggregation: row.aggregation,
    publishedAt: new Date(row.published_at).toISOString(),
  };
}

/** Rows are parsed, not cast: the stored params must still be a valid k-means model. */
function versionOf(row: ModelRow): ModelVersion {
  return ModelVersion.parse({
    ...summaryOf(row),
    weights: row.weights ?? "",
    ...(row.kind ? { kind: row.kind } : {}),
    ...(row.params ? { params: JSON.parse(row.params) } : {}),
  });
}

const MODEL_COLUMNS =
  "model_id, version, round_id, dimension, contributions, aggregation, weights, published_at, kind, params";

export class D1ModelStore implements ModelStore {
  constructor(private readonly db: D1Database) {}

  async publish(tenantId: string, draft: ModelDraft, publishedAt: number): Promise<ModelVersion> {
    // One statement computes the next version, so two publishers cannot take the same one;
    // UNIQUE (tenant_id, round_id) makes a retried publish of the same round a no-op.
    await this.db
      .prepare(
        `INSERT INTO model_versions (tenant_id, ${MODEL_COLUMNS})
         SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
         FROM model_versions WHERE tenant_id = ?1 AND model_id = ?2
         ON CONFLICT (tenant_id, round_id) DO NOTHING`,
      )
      .bind(
        tenantId,
        draft.modelId,
        draft.roundId,
        draft.dimension,
        draft.contributions,
        draft.aggregation,
        draft.weights,
        publishedAt,
        draft.kind ?? null,
        draft.params === undefined ? null : JSON.stringify(draft.params),
      )
      .run();
    const row = await this.db
      .prepare(`SELECT ${MODEL_COLUMNS} FROM model_versions WHERE tenant_id = ? AND round_id = ?`)
      .bind(tenantId, draft.roundId)
      .first<ModelRow>();
    if (!row) throw new Error(`model version for round ${draft.roundId} was not stored`);
    return versionOf(row);
  }

  async latest(tenantId: string, modelId: string): Promise<ModelVersion | null> {
    const row = await this.db
      .prepare(
        `SELECT ${MODEL_COLUMNS} FROM model_versions WHERE tenant_id = ? AND model_id = ? ORDER BY version DESC LIMIT 1`,
      )
      .bind(tenantId, modelId)
      .first<ModelRow>();
    return row ? versionOf(row) : null;
  }

  /** The newest version number alone: one indexed MAX, no weights read (check-in). */
  async latestVersion(tenantId: string, modelId: string): Promise<number | null> {
    const row = await this.db
      .prepare("SELECT MAX(version) AS version FROM model_versions WHERE tenant_id = ? AND model_id = ?")
      .bind(tenantId, modelId)
      .first<{ version: number | null }>();
    return row?.version ?? null;
  }

  async get(tenantId: string, modelId: string, version: number): Promise<ModelVersion | null> {
    const row = await this.db
      .prepare(
        `SELECT ${MODEL_COLUMNS} FROM model_versions WHERE tenant_id = ? AND model_id = ? AND version = ?`,
      )
      .bind(tenantId, modelId, version)
      .first<ModelRow>();
    return row ? versionOf(row) : null;
  }

  async list(tenantId: string, modelId: string, page: { limit: number; cursor: string | null }) {
    const before = page.cursor === null ? Number.MAX_SAFE_INTEGER : Number(page.cursor);
    const { results } = await this.db
      .prepare(
        `SELECT model_id, version, round_id, dimension, contributions, aggregation, published_at
         FROM model_versions WHERE tenant_id = ? AND model_id = ? AND version < ?
         ORDER BY version DESC LIMIT ?`,
      )
      .bind(tenantId, modelId, before, page.limit + 1)
      .all<ModelRow>();
    const items = results.slice(0, page.limit).map(summaryOf);
    const last = items.at(-1);
    return {
      v: WIRE_VERSION,
      items,
      nextCursor: results.length > page.limit && last ? String(last.version) : null,
    };
  }
}

interface RoundRow {
  round_id: string;
  model_id: string;
  aggregation: string;
  stage: string;
  dimension: number;
  min_contributions: number;
  max_contributions: number;
  opened_at: number;
  closes_at: number;
  secagg: string | null;
  dp: string | null;
  task: string | null;
}

const ROUND_COLUMNS =
  "round_id, model_id, aggregation, stage, dimension, min_contributions, max_contributions, opened_at, closes_at, secagg, dp, task";

/** Rows are parsed, not cast: a corrupted row fails loudly here rather than downstream. */
function roundOf(row: RoundRow): RoundInfo {
  return RoundInfo.parse({
    roundId: row.round_id,
    modelId: row.model_id,
    aggregation: row.aggregation,
    stage: row.stage,
    dimension: row.dimension,
    minContributions: row.min_contributions,
    maxContributions: row.max_contributions,
    openedAt: row.opened_at,
    closesAt: row.closes_at,
    ...(row.secagg === null ? {} : { secagg: JSON.parse(row.secagg) }),
    ...(row.dp === null ? {} : { dp: JSON.parse(row.dp) }),
    ...(row.task === null ? {} : { task: JSON.parse(row.task) }),
  });
}

export class D1RoundIndex implements RoundIndex {
  constructor(private readonly db: D1Database) {}

  async insert(tenantId: string, info: RoundInfo): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO rounds (tenant_id, ${ROUND_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        tenantId,
        info.roundId,
        info.modelId,
        info.aggregation,
        info.stage,
        info.dimension,
        info.minContributions,
        info.maxContributions,
        info.openedAt,
        info.closesAt,
        info.secagg === undefined ? null : JSON.stringify(info.secagg),
        info.dp === undefined ? null : JSON.stringify(info.dp),
        info.task === undefined ? null : JSON.stringify(info.task),
      )
      .run();
  }

  async findOpen(tenantId: string, modelId: string, now: number): Promise<RoundInfo | null> {
    const row = await this.db
      .prepare(
        `SELECT ${ROUND_COLUMNS} FROM rounds
         WHERE tenant_id = ? AND model_id = ? AND stage = 'collecting' AND closes_at > ?
         ORDER BY opened_at DESC LIMIT 1`,
      )
      .bind(tenantId, modelId, now)
      .first<RoundRow>();
    return row ? roundOf(row) : null;
  }

  async countOpen(tenantId: string, modelId: string): Promise<number> {
    const row = await this.db
      .prepare(
        "SELECT COUNT(*) AS open FROM rounds WHERE tenant_id = ? AND model_id = ? AND stage = 'collecting'",
      )
      .bind(tenantId, modelId)
      .first<{ open: number }>();
    return row?.open ?? 0;
  }

  async reserveOpen(
    tenantId: string,
    modelId: string,
    roundId: string,
    limit: number,
    now: number,
    expiresAt: number,
  ): Promise<boolean> {
    // One statement: D1 runs it alone, so two opens racing cannot both see a free place.
    const result = await this.db
      .prepare(
        `INSERT INTO round_reservations (tenant_id, model_id, round_id, expires_at)
         SELECT ?1, ?2, ?3, ?4 WHERE
           (SELECT COUNT(*) FROM rounds WHERE tenant_id = ?1 AND model_id = ?2 AND stage = 'collecting')
           + (SELECT COUNT(*) FROM round_reservations p WHERE p.tenant_id = ?1 AND p.model_id = ?2
                AND p.expires_at > ?5
                AND NOT EXISTS (SELECT 1 FROM rounds r WHERE r.tenant_id = p.tenant_id AND r.round_id = p.round_id))
           < ?6`,
      )
      .bind(tenantId, modelId, roundId, expiresAt, now, limit)
      .run();
    return result.meta.changes === 1;
  }

  async releaseOpen(tenantId: string, roundId: string): Promise<void> {
    await this.db
      .prepare("DELETE FROM round_reservations WHERE tenant_id = ? AND round_id = ?")
      .bind(tenantId, roundId)
      .run();
  }

  async get(tenantId: string, roundId: string): Promise<RoundInfo | null> {
    const row = await this.db
      .prepare(`SELECT ${ROUND_COLUMNS} FROM rounds WHERE tenant_id = ? AND round_id = ?`)
      .bind(tenantId, roundId)
      .first<RoundRow>();
    return row ? roundOf(row) : null;
  }

  async markEnded(
    tenantId: string,
    roundId: string,
    stage: RoundStage,
    modelVersion: number | null,
  ): Promise<void> {
    await this.db
      .prepare("UPDATE rounds SET stage = ?, model_version = ? WHERE tenant_id = ? AND round_id = ?")
      .bind(stage, modelVersion, tenantId, roundId)
      .run();
  }
}

interface TrainingRoundRow {
  round_id: string;
  phase: string;
  iteration: number;
  stage: string;
  outcome: string;
  contributors: number;
  model_version: number | null;
  metrics: string;
  ended_at: number;
}

/** Declared models and their round history in D1. */
export class D1TrainingStore implements TrainingStore {
  constructor(private readonly db: D1Database) {}

  async putDeclaration(tenantId: string, modelId: string, declaration: ModelDeclaration, at: number) {
    await this.db
      .prepare(
        `INSERT INTO model_declarations (tenant_id, model_id, kind, declaration, declared_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, model_id) DO UPDATE SET kind = excluded.kind, declaration = excluded.declaration, declared_at = excluded.declared_at`,
      )
      .bind(tenantId, modelId, declaration.kind, JSON.stringify(declaration), at)
      .run();
  }

  async getDeclaration(tenantId: string, modelId: string): Promise<ModelDeclaration | null> {
    const row = await this.db
      .prepare("SELECT declaration FROM model_declarations WHERE tenant_id = ? AND model_id = ?")
      .bind(tenantId, modelId)
      .first<{ declaration: string }>();
    return row ? ModelDeclaration.parse(JSON.parse(row.declaration)) : null;
  }

  async listModels(tenantId: string): Promise<string[]> {
    const { results } = await this.db
      .prepare("SELECT model_id FROM model_declarations WHERE tenant_id = ? ORDER BY model_id")
      .bind(tenantId)
      .all<{ model_id: string }>();
    return results.map((r) => r.model_id);
  }

  async appendRound(tenantId: string, modelId: string, round: TrainingRound): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO training_rounds (tenant_id, model_id, round_id, phase, iteration, stage, outcome, contributors, model_version, metrics, ended_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, round_id) DO NOTHING`,
      )
      .bind(
        tenantId,
        modelId,
        round.roundId,
        round.phase,
        round.iteration,
        round.stage,
        round.outcome,
        round.contributors,
        round.modelVersion,
        JSON.stringify(round.metrics),
        round.endedAt,
      )
      .run();
  }

  async rounds(tenantId: string, modelId: string, limit: number): Promise<TrainingRound[]> {
    const { results } = await this.db
      .prepare(
        `SELECT round_id, phase, iteration, stage, outcome, contributors, model_version, metrics, ended_at
         FROM training_rounds WHERE tenant_id = ? AND model_id = ? ORDER BY ended_at DESC, round_id LIMIT ?`,
      )
      .bind(tenantId, modelId, limit)
      .all<TrainingRoundRow>();
    return results.map((row) =>
      TrainingRound.parse({
        roundId: row.round_id,
        phase: row.phase,
        iteration: row.iteration,
        stage: row.stage,
        outcome: row.outcome,
        contributors: row.contributors,
        modelVersion: row.model_version,
        metrics: JSON.parse(row.metrics),
        endedAt: row.ended_at,
      }),
    );
  }
}

/** The tenants' registered Privacy Pass issuers (read when a round opens, not on a join). */
export class D1AdmissionIssuerStore implements AdmissionIssuerStore {
  constructor(private readonly db: D1Database) {}

  async get(tenantId: string): Promise<AdmissionIssuerStatus | null> {
    const row = await this.db
      .prepare("SELECT issuer FROM admission_issuers WHERE tenant_id = ?")
      .bind(tenantId)
      .first<{ issuer: string }>();
    return row ? AdmissionIssuerStatus.parse(JSON.parse(row.issuer)) : null;
  }

  async put(tenantId: string, issuer: AdmissionIssuerStatus): Promise<void> {
    await this.db
      .prepare(
        `INSERT INTO admission_issuers (tenant_id, issuer, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (tenant_id) DO UPDATE SET issuer = excluded.issuer, updated_at = excluded.updated_at`,
      )
      .bind(tenantId, JSON.stringify(issuer), issuer.updatedAt)
      .run();
  }
}
