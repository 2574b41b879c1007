CREATE TABLE contexts (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    max_tokens   INTEGER NOT NULL,
    trim_policy  TEXT NOT NULL,
    token_count  INTEGER NOT NULL DEFAULT 0,
    item_count   INTEGER NOT NULL DEFAULT 0,
    next_seq     INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE context_items (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL,
    context_id   BLOB NOT NULL REFERENCES contexts (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    role         TEXT NOT NULL,
    content      TEXT NOT NULL,
    blob_key     TEXT,
    byte_len     INTEGER NOT NULL,
    token_count  INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (context_id, seq)
);
CREATE INDEX context_items_tenant ON context_items (tenant_id, context_id, seq);
