-- Contexts: an agent's working memory, ordered items under a token budget.
CREATE TABLE contexts (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    max_tokens   BIGINT NOT NULL,
    trim_policy  TEXT NOT NULL,
    token_count  BIGINT NOT NULL DEFAULT 0,
    item_count   BIGINT NOT NULL DEFAULT 0,
    next_seq     BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE context_items (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL,
    context_id   UUID NOT NULL REFERENCES contexts (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    role         TEXT NOT NULL,
    -- Inline content, or the first part of a large item whose whole lives in the blob store.
    content      TEXT NOT NULL,
    blob_key     TEXT,
    byte_len     BIGINT NOT NULL,
    token_count  BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (context_id, seq)
);
CREATE INDEX context_items_tenant ON context_items (tenant_id, context_id, seq);
CREATE INDEX context_items_trgm ON context_items USING gin (lower(content) gin_trgm_ops);
