-- Places taken by rounds being opened (issue 11: the open-rounds-per-model limit is atomic). One
-- INSERT ... SELECT ... WHERE count < limit takes a place; it is deleted once the round is in
-- `rounds` or failed to open, and a place whose open crashed expires.
CREATE TABLE round_reservations (
  tenant_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  round_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, round_id)
);
CREATE INDEX round_reservations_by_model ON round_reservations (tenant_id, model_id, expires_at);
