-- Pull requests of the local-git provider (hosted providers keep their own),
-- their comments, and the reviewer's reviews of any provider's pull requests.
CREATE TABLE pull_requests (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    repository_url  TEXT NOT NULL,
    number          BIGINT NOT NULL,
    provider        TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    source_branch   TEXT NOT NULL,
    target_branch   TEXT NOT NULL,
    base_sha        TEXT NOT NULL,
    head_sha        TEXT NOT NULL,
    state           TEXT NOT NULL,
    merge_commit    TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, repository_url, number)
);

CREATE TABLE pull_request_comments (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL,
    pull_request_id  UUID NOT NULL REFERENCES pull_requests (id) ON DELETE CASCADE,
    body             TEXT NOT NULL,
    path             TEXT,
    line             BIGINT,
    fingerprint      TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX pull_request_comments_by_pr ON pull_request_comments (tenant_id, pull_request_id, id);

CREATE TABLE reviews (
    id                   UUID PRIMARY KEY,
    tenant_id            UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    repository_url       TEXT NOT NULL,
    number               BIGINT NOT NULL,
    head_sha             TEXT NOT NULL,
    findings             JSONB NOT NULL,
    security_score       DOUBLE PRECISION NOT NULL,
    quality_score        DOUBLE PRECISION NOT NULL,
    status               TEXT NOT NULL,
    summary_comment_id   TEXT,
    posted_fingerprints  JSONB NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX reviews_by_pr ON reviews (tenant_id, repository_url, number, created_at);
