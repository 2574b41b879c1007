-- Foundation schema: tenants, API keys, audit log, outbox, processed events.
-- pgvector and pg_trgm are enabled here for the code index that builds on it.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE tenants (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    hash          TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE audit_log (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor_key_id  UUID,
    action        TEXT NOT NULL,
    target        TEXT,
    outcome       TEXT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    detail        JSONB NOT NULL,
    at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC);

-- Events written in the same transaction as the state change they announce,
-- then relayed to the queue.
CREATE TABLE outbox (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    envelope      JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    published_at  TIMESTAMPTZ
);
CREATE INDEX outbox_pending ON outbox (created_at) WHERE published_at IS NULL;

-- One row per event that had its effect, so redeliveries have none.
CREATE TABLE processed_events (
    tenant_id        UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    idempotency_key  TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    processed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
);
