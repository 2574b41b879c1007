-- Repositories and their code index. Search is exact and in-process
-- (crates/store/src/code.rs); embeddings are little-endian f32 blobs.
CREATE TABLE repositories (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url                  TEXT NOT NULL,
    name                 TEXT NOT NULL,
    state                TEXT NOT NULL,
    last_indexed_commit  TEXT,
    embedder             TEXT,
    file_count           INTEGER NOT NULL DEFAULT 0,
    chunk_count          INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    indexed_at           TEXT,
    UNIQUE (tenant_id, url)
);

CREATE TABLE code_chunks (
    id             INTEGER PRIMARY KEY,
    tenant_id      BLOB NOT NULL,
    repository_id  BLOB NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    path           TEXT NOT NULL,
    language       TEXT NOT NULL,
    symbol         TEXT NOT NULL,
    start_line     INTEGER NOT NULL,
    end_line       INTEGER NOT NULL,
    content_hash   TEXT NOT NULL,
    content        TEXT NOT NULL,
    search_text    TEXT NOT NULL,
    embedder       TEXT NOT NULL,
    embedding      BLOB NOT NULL
);
CREATE INDEX code_chunks_file ON code_chunks (tenant_id, repository_id, path);
CREATE INDEX code_chunks_hash ON code_chunks (tenant_id, embedder, content_hash);
