-- Signed chain heads the coordinator published (ledger SPEC.md §8.2), kept so that witnesses can
-- fetch every one since they last looked. A checkpoint is signed, so this table needs no chain.
CREATE TABLE ledger_checkpoints (
  tenant_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  timestamp TEXT NOT NULL,
  checkpoint TEXT NOT NULL,
  PRIMARY KEY (tenant_id, model_id, seq, timestamp)
);
