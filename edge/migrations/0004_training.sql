-- The training runtime: declared models, their round history, a round's task, and what a trainer's
-- model version carries besides its weights.
CREATE TABLE model_declarations (
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  model_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  declaration TEXT NOT NULL,
  declared_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, model_id)
);

CREATE TABLE training_rounds (
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  model_id TEXT NOT NULL,
  round_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  iteration INTEGER NOT NULL,
  stage TEXT NOT NULL CHECK (stage IN ('closed', 'aborted')),
  outcome TEXT NOT NULL,
  contributors INTEGER NOT NULL,
  model_version INTEGER,
  metrics TEXT NOT NULL,
  ended_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, round_id)
);
CREATE INDEX training_rounds_by_model ON training_rounds (tenant_id, model_id, ended_at);

ALTER TABLE rounds ADD COLUMN task TEXT;
ALTER TABLE model_versions ADD COLUMN kind TEXT;
ALTER TABLE model_versions ADD COLUMN params TEXT;
