-- A tenant's connections to code hosts. Credentials are sealed
-- (AES-256-GCM under the data key named by key_id) before they get here.
CREATE TABLE provider_connections (
    id                  BLOB PRIMARY KEY,
    tenant_id           BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    provider            TEXT NOT NULL,
    base_url            TEXT NOT NULL,
    web_url             TEXT NOT NULL,
    auth_kind           TEXT NOT NULL,
    sealed_credentials  BLOB NOT NULL,
    key_id              TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX provider_connections_web_url ON provider_connections (tenant_id, web_url);
