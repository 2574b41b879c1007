-- Same logical schema as migrations/postgres, in SQLite's types: UUIDs are
-- 16-byte blobs, timestamps RFC 3339 text, JSON text.
CREATE TABLE tenants (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    hash          TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    revoked_at    TEXT,
    last_used_at  TEXT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE audit_log (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor_key_id  BLOB,
    action        TEXT NOT NULL,
    target        TEXT,
    outcome       TEXT NOT NULL,
    duration_ms   INTEGER NOT NULL,
    detail        TEXT NOT NULL,
    at            TEXT NOT NULL
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC);

CREATE TABLE outbox (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    envelope      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    published_at  TEXT
);
CREATE INDEX outbox_pending ON outbox (created_at) WHERE published_at IS NULL;

CREATE TABLE processed_events (
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    idempotency_key  TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    processed_at     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
);
