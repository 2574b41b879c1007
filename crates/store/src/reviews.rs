//! Pull requests of the local-git provider, their comments, and reviews.
//! The SQL is the same on both back ends; one macro stamps out both.

use async_trait::async_trait;
use chrono::Utc;
use devops_models::{
    Finding, NewComment, NewPullRequest, PullRequest, PullRequestComment, PullRequestState, PullRequestUpdate, Review,
    Scores, TenantId,
};
use sqlx::Row;
use sqlx::types::Json;
use uuid::Uuid;

use crate::sql::{parse, to_i64, to_u64};
use crate::{Error, Page, PostgresStore, Result, SqliteStore};

const PR_COLUMNS: &str = "id, tenant_id, repository_url, number, provider, title, body, source_branch, \
                          target_branch, base_sha, head_sha, state, merge_commit, created_at, updated_at";
const COMMENT_COLUMNS: &str = "id, pull_request_id, body, path, line, fingerprint, created_at, updated_at";
const REVIEW_COLUMNS: &str = "id, tenant_id, repository_url, number, head_sha, findings, security_score, \
                              quality_score, status, summary_comment_id, posted_fingerprints, created_at, updated_at";

/// A concurrent create can take the same number; it retries this often.
const NUMBER_ATTEMPTS: usize = 5;

#[async_trait]
pub trait PullRequestStore: Send + Sync + 'static {
    /// Records a pull request under the next number of its repository.
    async fn create_pull_request(&self, tenant: TenantId, pr: &NewPullRequest) -> Result<PullRequest>;
    async fn get_pull_request(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<PullRequest>;
    /// Newest first within the repository; `after` is a number.
    async fn list_pull_requests(
        &self,
        tenant: TenantId,
        repository_url: &str,
        state: Option<PullRequestState>,
        before_number: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PullRequest>>;
    async fn update_pull_request(&self, tenant: TenantId, id: Uuid, update: &PullRequestUpdate) -> Result<PullRequest>;

    async fn add_comment(
        &self,
        tenant: TenantId,
        pull_request: Uuid,
        comment: &NewComment,
    ) -> Result<PullRequestComment>;
    async fn edit_comment(&self, tenant: TenantId, id: Uuid, body: &str) -> Result<PullRequestComment>;
    async fn list_comments(&self, tenant: TenantId, pull_request: Uuid, page: Page) -> Result<Vec<PullRequestComment>>;

    /// Inserts the review, or replaces the one with its id.
    async fn save_review(&self, review: &Review) -> Result<()>;
    async fn get_review(&self, tenant: TenantId, id: Uuid) -> Result<Review>;
    /// The newest review of a pull request.
    async fn latest_review(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<Option<Review>>;
}

fn validate_text(title: &str, body: &str) -> Result<()> {
    if title.trim().is_empty() || title.len() > 512 {
        return Err(Error::Invalid("a pull request title must be 1-512 bytes".into()));
    }
    if body.len() > 256 * 1024 {
        return Err(Error::Invalid("a body must be at most 256 KiB".into()));
    }
    Ok(())
}

macro_rules! impl_pull_request_store {
    ($store:ty, $row:ty) => {
        impl $store {
            fn pull_request_from(row: &$row) -> Result<PullRequest> {
                let state: String = row.try_get("state")?;
                let provider: String = row.try_get("provider")?;
                let repository_url: String = row.try_get("repository_url")?;
                let number = to_u64(row.try_get("number")?);
                Ok(PullRequest {
                    id: row.try_get("id")?,
                    tenant_id: TenantId(row.try_get("tenant_id")?),
                    url: format!("{repository_url}#pull/{number}"),
                    repository_url,
                    number,
                    provider,
                    title: row.try_get("title")?,
                    body: row.try_get("body")?,
                    source_branch: row.try_get("source_branch")?,
                    target_branch: row.try_get("target_branch")?,
                    base_sha: row.try_get("base_sha")?,
                    head_sha: row.try_get("head_sha")?,
                    state: parse(&state)?,
                    merge_commit: row.try_get("merge_commit")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn comment_from(row: &$row) -> Result<PullRequestComment> {
                let line: Option<i64> = row.try_get("line")?;
                Ok(PullRequestComment {
                    id: row.try_get("id")?,
                    pull_request_id: row.try_get("pull_request_id")?,
                    body: row.try_get("body")?,
                    path: row.try_get("path")?,
                    line: line.and_then(|l| u32::try_from(l).ok()),
                    fingerprint: row.try_get("fingerprint")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn review_from(row: &$row) -> Result<Review> {
                let Json(findings): Json<Vec<Finding>> = row.try_get("findings")?;
                let Json(posted_fingerprints): Json<Vec<String>> = row.try_get("posted_fingerprints")?;
                let status: String = row.try_get("status")?;
                Ok(Review {
                    id: row.try_get("id")?,
                    tenant_id: TenantId(row.try_get("tenant_id")?),
                    repository_url: row.try_get("repository_url")?,
                    number: to_u64(row.try_get("number")?),
                    head_sha: row.try_get("head_sha")?,
                    findings,
                    scores: Scores { security: row.try_get("security_score")?, quality: row.try_get("quality_score")? },
                    status: parse(&status)?,
                    summary_comment_id: row.try_get("summary_comment_id")?,
                    posted_fingerprints,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }
        }

        #[async_trait]
        impl PullRequestStore for $store {
            async fn create_pull_request(&self, tenant: TenantId, pr: &NewPullRequest) -> Result<PullRequest> {
                validate_text(&pr.title, &pr.body)?;
                let sql = format!(
                    "INSERT INTO pull_requests (id, tenant_id, repository_url, number, provider, title, body, \
                         source_branch, target_branch, base_sha, head_sha, state, created_at, updated_at) \
                     SELECT $1, t.id, $3, COALESCE((SELECT MAX(number) FROM pull_requests \
                             WHERE tenant_id = $2 AND repository_url = $3), 0) + 1, \
                         $4, $5, $6, $7, $8, $9, $10, $11, $12, $12 FROM tenants t WHERE t.id = $2 \
                     RETURNING {PR_COLUMNS}"
                );
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let result = sqlx::query(&sql)
                        .bind(Uuid::now_v7())
                        .bind(tenant.0)
                        .bind(&pr.repository_url)
                        .bind(&pr.provider)
                        .bind(&pr.title)
                        .bind(&pr.body)
                        .bind(&pr.source_branch)
                        .bind(&pr.target_branch)
                        .bind(&pr.base_sha)
                        .bind(&pr.head_sha)
                        .bind(PullRequestState::Open.as_str())
                        .bind(Utc::now())
                        .fetch_optional(self.pool())
                        .await
                        .map_err(Error::from);
                    match result {
                        Ok(Some(row)) => return Self::pull_request_from(&row),
                        Ok(None) => return Err(Error::NotFound("tenant")),
                        Err(Error::Conflict(_)) if attempt < NUMBER_ATTEMPTS => continue,
                        Err(err) => return Err(err),
                    }
                }
            }

            async fn get_pull_request(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<PullRequest> {
                let sql = format!(
                    "SELECT {PR_COLUMNS} FROM pull_requests WHERE tenant_id = $1 AND repository_url = $2 AND number = $3"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(repository_url)
                    .bind(to_i64(number))
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(Error::NotFound("pull request"))?;
                Self::pull_request_from(&row)
            }

            async fn list_pull_requests(
                &self,
                tenant: TenantId,
                repository_url: &str,
                state: Option<PullRequestState>,
                before_number: Option<u64>,
                limit: u32,
            ) -> Result<Vec<PullRequest>> {
                let sql = format!(
                    "SELECT {PR_COLUMNS} FROM pull_requests WHERE tenant_id = $1 AND repository_url = $2 \
                     AND ($3 IS NULL OR state = $3) AND ($4 IS NULL OR number < $4) ORDER BY number DESC LIMIT $5"
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(repository_url)
                    .bind(state.map(PullRequestState::as_str))
                    .bind(before_number.map(to_i64))
                    .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
                    .fetch_all(self.pool())
                    .await?;
                rows.iter().map(Self::pull_request_from).collect()
            }

            async fn update_pull_request(
                &self,
                tenant: TenantId,
                id: Uuid,
                update: &PullRequestUpdate,
            ) -> Result<PullRequest> {
                if let Some(title) = &update.title {
                    validate_text(title, update.body.as_deref().unwrap_or_default())?;
                } else if let Some(body) = &update.body {
                    validate_text("-", body)?;
                }
                let sql = format!(
                    "UPDATE pull_requests SET title = COALESCE($3, title), body = COALESCE($4, body), \
                         state = COALESCE($5, state), head_sha = COALESCE($6, head_sha), \
                         merge_commit = COALESCE($7, merge_commit), updated_at = $8 \
                     WHERE tenant_id = $1 AND id = $2 RETURNING {PR_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .bind(&update.title)
                    .bind(&update.body)
                    .bind(update.state.map(PullRequestState::as_str))
                    .bind(&update.head_sha)
                    .bind(&update.merge_commit)
                    .bind(Utc::now())
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(Error::NotFound("pull request"))?;
                Self::pull_request_from(&row)
            }

            async fn add_comment(
                &self,
                tenant: TenantId,
                pull_request: Uuid,
                comment: &NewComment,
            ) -> Result<PullRequestComment> {
                if comment.body.trim().is_empty() || comment.body.len() > 64 * 1024 {
                    return Err(Error::Invalid("a comment must be 1 byte to 64 KiB".into()));
                }
                let sql = format!(
                    "INSERT INTO pull_request_comments (id, tenant_id, pull_request_id, body, path, line, fingerprint, \
                         created_at, updated_at) \
                     SELECT $1, tenant_id, id, $4, $5, $6, $7, $8, $8 FROM pull_requests WHERE tenant_id = $2 AND id = $3 \
                     RETURNING {COMMENT_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(Uuid::now_v7())
                    .bind(tenant.0)
                    .bind(pull_request)
                    .bind(&comment.body)
                    .bind(&comment.path)
                    .bind(comment.line.map(i64::from))
                    .bind(&comment.fingerprint)
                    .bind(Utc::now())
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(Error::NotFound("pull request"))?;
                Self::comment_from(&row)
            }

            async fn edit_comment(&self, tenant: TenantId, id: Uuid, body: &str) -> Result<PullRequestComment> {
                if body.trim().is_empty() || body.len() > 64 * 1024 {
                    return Err(Error::Invalid("a comment must be 1 byte to 64 KiB".into()));
                }
                let sql = format!(
                    "UPDATE pull_request_comments SET body = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                     RETURNING {COMMENT_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .bind(body)
                    .bind(Utc::now())
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(Error::NotFound("comment"))?;
                Self::comment_from(&row)
            }

            async fn list_comments(
                &self,
                tenant: TenantId,
                pull_request: Uuid,
                page: Page,
            ) -> Result<Vec<PullRequestComment>> {
                let sql = format!(
                    "SELECT {COMMENT_COLUMNS} FROM pull_request_comments WHERE tenant_id = $1 AND pull_request_id = $2 \
                     AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(pull_request)
                    .bind(page.after)
                    .bind(i64::from(page.limit.clamp(1, Page::MAX_LIMIT)))
                    .fetch_all(self.pool())
                    .await?;
                rows.iter().map(Self::comment_from).collect()
            }

            async fn save_review(&self, review: &Review) -> Result<()> {
                sqlx::query(
                    "INSERT INTO reviews (id, tenant_id, repository_url, number, head_sha, findings, security_score, \
                         quality_score, status, summary_comment_id, posted_fingerprints, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (id) DO UPDATE SET findings = excluded.findings, \
                         security_score = excluded.security_score, quality_score = excluded.quality_score, \
                         status = excluded.status, summary_comment_id = excluded.summary_comment_id, \
                         posted_fingerprints = excluded.posted_fingerprints, updated_at = excluded.updated_at",
                )
                .bind(review.id)
                .bind(review.tenant_id.0)
                .bind(&review.repository_url)
                .bind(to_i64(review.number))
                .bind(&review.head_sha)
                .bind(Json(&review.findings))
                .bind(review.scores.security)
                .bind(review.scores.quality)
                .bind(review.status.as_str())
                .bind(&review.summary_comment_id)
                .bind(Json(&review.posted_fingerprints))
                .bind(review.created_at)
                .bind(review.updated_at)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn get_review(&self, tenant: TenantId, id: Uuid) -> Result<Review> {
                let sql = format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE tenant_id = $1 AND id = $2");
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(Error::NotFound("review"))?;
                Self::review_from(&row)
            }

            async fn latest_review(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<Option<Review>> {
                let sql = format!(
                    "SELECT {REVIEW_COLUMNS} FROM reviews WHERE tenant_id = $1 AND repository_url = $2 AND number = $3 \
                     ORDER BY created_at DESC, id DESC LIMIT 1"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(repository_url)
                    .bind(to_i64(number))
                    .fetch_optional(self.pool())
                    .await?;
                row.as_ref().map(Self::review_from).transpose()
            }
        }
    };
}

impl_pull_request_store!(PostgresStore, sqlx::postgres::PgRow);
impl_pull_request_store!(SqliteStore, sqlx::sqlite::SqliteRow);
