-- Pull requests of the local-git provider (hosted providers keep their own),
-- their comments, and the reviewer's reviews of any provider's pull requests.
CREATE TABLE pull_requests (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    repository_url  TEXT NOT NULL,
    number          INTEGER NOT NULL,
    provider        TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    source_branch   TEXT NOT NULL,
    target_branch   TEXT NOT NULL,
    base_sha        TEXT NOT NULL,
    head_sha        TEXT NOT NULL,
    state           TEXT NOT NULL,
    merge_commit    TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (tenant_id, repository_url, number)
);

CREATE TABLE pull_request_comments (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL,
    pull_request_id  BLOB NOT NULL REFERENCES pull_requests (id) ON DELETE CASCADE,
    body             TEXT NOT NULL,
    path             TEXT,
    line             INTEGER,
    fingerprint      TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX pull_request_comments_by_pr ON pull_request_comments (tenant_id, pull_request_id, id);

CREATE TABLE reviews (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    repository_url       TEXT NOT NULL,
    number               INTEGER NOT NULL,
    head_sha             TEXT NOT NULL,
    findings             TEXT NOT NULL,
    security_score       REAL NOT NULL,
    quality_score        REAL NOT NULL,
    status               TEXT NOT NULL,
    summary_comment_id   TEXT,
    posted_fingerprints  TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX reviews_by_pr ON reviews (tenant_id, repository_url, number, created_at);
