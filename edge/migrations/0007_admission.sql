-- Admission by Privacy Pass token (issue 13): each tenant's registered issuer public key. Read when
-- a round opens (the round keeps its own copy), never on a device's join.
CREATE TABLE admission_issuers (
  tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
  issuer TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
