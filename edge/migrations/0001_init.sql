-- Tenants, their API keys (SHA-256 digests only), the round index and published model versions.
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
  key_hash TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  kind TEXT NOT NULL CHECK (kind IN ('publishable', 'secret', 'auditor')),
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

CREATE TABLE rounds (
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  round_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  aggregation TEXT NOT NULL,
  stage TEXT NOT NULL,
  dimension INTEGER NOT NULL,
  min_contributions INTEGER NOT NULL,
  max_contributions INTEGER NOT NULL,
  opened_at INTEGER NOT NULL,
  closes_at INTEGER NOT NULL,
  model_version INTEGER,
  PRIMARY KEY (tenant_id, round_id)
);
CREATE INDEX rounds_by_model_stage ON rounds (tenant_id, model_id, stage, opened_at);

CREATE TABLE model_versions (
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  model_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  round_id TEXT NOT NULL,
  dimension INTEGER NOT NULL,
  contributions INTEGER NOT NULL,
  aggregation TEXT NOT NULL,
  weights TEXT NOT NULL,
  published_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, model_id, version),
  UNIQUE (tenant_id, round_id)
);
