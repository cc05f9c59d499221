-- Public SecAgg parameters of a round (JSON: encoding, shard count, stage time limit), shown to
-- devices at check-in. NULL for plain-sum rounds.
ALTER TABLE rounds ADD COLUMN secagg TEXT;
