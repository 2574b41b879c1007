-- Repositories and their code index: chunks with a pgvector embedding
-- (HNSW, cosine), full-text terms (GIN) and symbol trigrams (GIN).
CREATE TABLE repositories (
    id                   UUID PRIMARY KEY,
    tenant_id            UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url                  TEXT NOT NULL,
    name                 TEXT NOT NULL,
    state                TEXT NOT NULL,
    last_indexed_commit  TEXT,
    embedder             TEXT,
    file_count           BIGINT NOT NULL DEFAULT 0,
    chunk_count          BIGINT NOT NULL DEFAULT 0,
    last_error           TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    indexed_at           TIMESTAMPTZ,
    UNIQUE (tenant_id, url)
);

CREATE TABLE code_chunks (
    id             BIGSERIAL PRIMARY KEY,
    tenant_id      UUID NOT NULL,
    repository_id  UUID NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    path           TEXT NOT NULL,
    language       TEXT NOT NULL,
    symbol         TEXT NOT NULL,
    start_line     INTEGER NOT NULL,
    end_line       INTEGER NOT NULL,
    content_hash   TEXT NOT NULL,
    content        TEXT NOT NULL,
    search_text    TEXT NOT NULL,
    search_tsv     TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED,
    embedder       TEXT NOT NULL,
    embedding      vector(384) NOT NULL
);
CREATE INDEX code_chunks_file ON code_chunks (tenant_id, repository_id, path);
CREATE INDEX code_chunks_hash ON code_chunks (tenant_id, embedder, content_hash);
CREATE INDEX code_chunks_embedding ON code_chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX code_chunks_tsv ON code_chunks USING gin (search_tsv);
CREATE INDEX code_chunks_symbol_trgm ON code_chunks USING gin (lower(symbol) gin_trgm_ops);
