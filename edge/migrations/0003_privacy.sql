-- Differential privacy: per-model budget caps, the append-only privacy ledger, and each round's
-- public DP configuration (shown to devices at check-in).
CREATE TABLE privacy_budgets (
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  model_id TEXT NOT NULL,
  epsilon_cap REAL NOT NULL,
  delta REAL NOT NULL,
  population INTEGER,
  updated_at INTEGER NOT NULL,
  -- Optimistic concurrency: bumped by every change and reservation; the token names the winner.
  version INTEGER NOT NULL DEFAULT 1,
  reserve_token TEXT,
  PRIMARY KEY (tenant_id, model_id)
);

-- The planned privacy event (JSON) of each open DP round, counted against the cap until the
-- round ends, so rounds open at the same time cannot together pass it.
CREATE TABLE privacy_reservations (
  tenant_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  round_id TEXT NOT NULL,
  event TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, model_id, round_id)
);

-- One signed, hash-chained entry per row. Every column feeds the entry an auditor verifies
-- (`body` holds the remaining fields as JSON), so changing any of them breaks its hash or its
-- chain link. The triggers keep honest code append-only; the chain catches anyone else.
CREATE TABLE privacy_ledger (
  tenant_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  signature TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (tenant_id, model_id, seq)
);

CREATE TRIGGER privacy_ledger_no_update BEFORE UPDATE ON privacy_ledger
BEGIN
  SELECT RAISE(ABORT, 'privacy_ledger is append-only');
END;

CREATE TRIGGER privacy_ledger_no_delete BEFORE DELETE ON privacy_ledger
BEGIN
  SELECT RAISE(ABORT, 'privacy_ledger is append-only');
END;

ALTER TABLE rounds ADD COLUMN dp TEXT;
