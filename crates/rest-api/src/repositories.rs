//! Repositories and code search. Registering (or asking to re-index) puts a
//! `repo.push` event on the queue; the worker runs the index through the
//! indexer. Search asks the indexer directly.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use devops_errors::{ApiError, ErrorCode};
use devops_models::{EventEnvelope, IndexState, Principal, Repository, Scope, SearchMode, TenantId};
use devops_proto::indexer::v1 as pb;
use devops_runtime::auth::require_scope;
use devops_runtime::http::{AppJson, AppPath, AppQuery, api_error};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::tenants::PageParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/repositories", post(register_repository).get(list_repositories))
        .route("/api/v1/repositories/{repository_id}", get(get_repository).delete(delete_repository))
        .route("/api/v1/repositories/{repository_id}/index", post(index_repository))
        .route("/api/v1/search", post(search))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRepositoryRequest {
    /// An https or ssh clone URL, scp-style `git@host:owner/repo.git`, or a
    /// path the operator allow-listed (`indexer.allowed_local_paths`).
    #[schema(
        example = "https://github.com/acme/api.git",
        max_length = 2048,
        pattern = r"^((https|ssh)://(git@)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(:[1-9][0-9]{0,3})?/[A-Za-z0-9._~/-]{1,200}|git@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}:[A-Za-z0-9._~-][A-Za-z0-9._~/-]{0,200}|(file://)?/[A-Za-z0-9._~/-]{1,200})$"
    )]
    pub url: String,
    /// Start indexing now (default true).
    #[serde(default)]
    pub index: Option<bool>,
    /// Branch, tag or commit to index; default: the default branch.
    #[serde(default, rename = "ref")]
    #[schema(max_length = 255, pattern = r"^[A-Za-z0-9._/-]*$")]
    pub git_ref: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct IndexRequest {
    /// Branch, tag or commit to index; default: the default branch.
    #[serde(default, rename = "ref")]
    #[schema(max_length = 255, pattern = r"^[A-Za-z0-9._/-]*$")]
    pub git_ref: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RepositoryView {
    pub id: Uuid,
    /// Canonical clone URL, without credentials.
    pub url: String,
    pub name: String,
    pub state: IndexState,
    pub last_indexed_commit: Option<String>,
    pub file_count: u64,
    pub chunk_count: u64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub indexed_at: Option<DateTime<Utc>>,
}

impl From<Repository> for RepositoryView {
    fn from(r: Repository) -> Self {
        Self {
            id: r.id,
            url: r.url,
            name: r.name,
            state: r.state,
            last_indexed_commit: r.last_indexed_commit,
            file_count: r.file_count,
            chunk_count: r.chunk_count,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            indexed_at: r.indexed_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RepositoryList {
    pub items: Vec<RepositoryView>,
    pub next_after: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IndexQueued {
    /// The `repo.push` event that carries the request.
    pub event_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchRequest {
    /// Words, a question or an identifier.
    #[schema(example = "where do we verify webhook signatures", min_length = 1, max_length = 1000)]
    pub query: String,
    /// 1-100, default 10.
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "crate::keys::whole_number")]
    pub limit: Option<u32>,
    /// Repository ids, URLs or owner/name; default: all of the tenant's.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub repositories: Vec<String>,
    /// e.g. `src/**/*.rs`.
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub path_glob: Option<String>,
    #[schema(example = "rust", max_length = 50)]
    pub language: Option<String>,
    /// How to rank; default hybrid.
    pub mode: Option<SearchMode>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    pub repository_id: String,
    pub repository_url: String,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub symbol: String,
    pub language: String,
    /// Reciprocal-rank-fusion score; higher is better.
    pub score: f64,
    pub snippet: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
}

/// Queues a `repo.push` for the repository.
async fn queue_index(state: &AppState, tenant: TenantId, url: &str, git_ref: &str) -> Result<Uuid, ApiError> {
    if git_ref.len() > 255 || git_ref.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "ref must be at most 255 characters without spaces"));
    }
    let event = EventEnvelope::new(
        "repo.push",
        tenant,
        format!("index-request:{}", Uuid::now_v7()),
        serde_json::json!({ "repository_url": url, "git_ref": git_ref }),
    );
    state.store.enqueue_outbox(tenant, &event).await.map_err(api_error)?;
    Ok(event.id)
}

/// Register a repository, and index it unless `index` is false.
#[utoipa::path(
    post, path = "/api/v1/repositories", tag = "repositories",
    request_body = RegisterRepositoryRequest,
    responses(
        (status = 201, description = "Registered", body = RepositoryView),
        (status = 200, description = "Already registered", body = RepositoryView),
        (status = 400, description = "Invalid URL", body = devops_errors::ErrorBody),
        (status = 404, description = "The URL's host does not resolve, or a local path does not exist", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs write, or the URL points somewhere not allowed (SSRF guard)", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
    )
)]
pub async fn register_repository(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppJson(request): AppJson<RegisterRepositoryRequest>,
) -> Result<(StatusCode, Json<RepositoryView>), ApiError> {
    require_scope(&principal, Scope::Write)?;
    let started = Instant::now();
    let checked = state.url_policy.check(&request.url).await.map_err(api_error)?;
    let tenant = principal.tenant_id;
    let existing = state.store.find_repository(tenant, &checked.url).await.map_err(api_error)?;
    let result = state.store.register_repository(tenant, &checked.url, &checked.display_name()).await;
    state
        .audit(&principal, "repository.register", format!("repository:{}", checked.url), started, result.is_ok())
        .await;
    let repo = result.map_err(api_error)?;
    if request.index.unwrap_or(true) {
        queue_index(&state, tenant, &repo.url, request.git_ref.as_deref().unwrap_or_default()).await?;
    }
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(repo.into())))
}

/// List the caller's repositories.
#[utoipa::path(
    get, path = "/api/v1/repositories", tag = "repositories",
    params(PageParams),
    responses(
        (status = 200, description = "A page of repositories", body = RepositoryList),
        (status = 400, description = "Invalid parameters", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
    )
)]
pub async fn list_repositories(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<RepositoryList>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    let page = params.page()?;
    let repos = state.store.list_repositories(principal.tenant_id, page).await.map_err(api_error)?;
    let next_after = (repos.len() == page.limit as usize).then(|| repos.last().map(|r| r.id)).flatten();
    Ok(Json(RepositoryList { items: repos.into_iter().map(Into::into).collect(), next_after }))
}

/// One repository and its index state.
#[utoipa::path(
    get, path = "/api/v1/repositories/{repository_id}", tag = "repositories",
    params(("repository_id" = Uuid, Path, description = "Repository id")),
    responses(
        (status = 200, description = "The repository", body = RepositoryView),
        (status = 400, description = "Invalid id", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository", body = devops_errors::ErrorBody),
    )
)]
pub async fn get_repository(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<RepositoryView>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    Ok(Json(state.store.get_repository(principal.tenant_id, id).await.map_err(api_error)?.into()))
}

/// Queue an incremental re-index of a repository.
#[utoipa::path(
    post, path = "/api/v1/repositories/{repository_id}/index", tag = "repositories",
    params(("repository_id" = Uuid, Path, description = "Repository id")),
    request_body = IndexRequest,
    responses(
        (status = 202, description = "Queued", body = IndexQueued),
        (status = 400, description = "Invalid request", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs write", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
    )
)]
pub async fn index_repository(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
    AppJson(request): AppJson<IndexRequest>,
) -> Result<(StatusCode, Json<IndexQueued>), ApiError> {
    require_scope(&principal, Scope::Write)?;
    let repo = state.store.get_repository(principal.tenant_id, id).await.map_err(api_error)?;
    let event_id =
        queue_index(&state, principal.tenant_id, &repo.url, request.git_ref.as_deref().unwrap_or_default()).await?;
    Ok((StatusCode::ACCEPTED, Json(IndexQueued { event_id })))
}

/// Delete a repository and its index.
#[utoipa::path(
    delete, path = "/api/v1/repositories/{repository_id}", tag = "repositories",
    params(("repository_id" = Uuid, Path, description = "Repository id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid id", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository", body = devops_errors::ErrorBody),
    )
)]
pub async fn delete_repository(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_scope(&principal, Scope::Admin)?;
    let started = Instant::now();
    let result = state.store.delete_repository(principal.tenant_id, id).await;
    state.audit(&principal, "repository.delete", format!("repository:{id}"), started, result.is_ok()).await;
    result.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Search the caller's indexed code: hybrid lexical and vector ranking.
#[utoipa::path(
    post, path = "/api/v1/search", tag = "repositories",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Ranked, cited hits", body = SearchResults),
        (status = 400, description = "Invalid request", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 404, description = "A named repository does not exist", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
        (status = 503, description = "The indexer is unavailable", body = devops_errors::ErrorBody),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppJson(request): AppJson<SearchRequest>,
) -> Result<Json<SearchResults>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    let invalid = |message: &str| Err(ApiError::new(ErrorCode::InvalidArgument, message));
    if request.limit.is_some_and(|limit| !(1..=100).contains(&limit)) {
        return invalid("limit must be between 1 and 100");
    }
    if request.query.is_empty() || request.query.chars().count() > 1000 {
        return invalid("query must be 1-1000 characters");
    }
    if request.language.as_ref().is_some_and(|l| l.chars().count() > 50) {
        return invalid("language must be at most 50 characters");
    }
    if request.path_glob.as_ref().is_some_and(|g| g.chars().count() > 500 || g.chars().any(char::is_control)) {
        return invalid("path_glob must be at most 500 printable characters");
    }
    if request.repositories.len() > 100 {
        return invalid("at most 100 repositories");
    }
    let request = pb::SearchRequest {
        tenant_id: principal.tenant_id.to_string(),
        query: request.query,
        limit: request.limit.unwrap_or(10),
        repositories: request.repositories,
        path_glob: request.path_glob.unwrap_or_default(),
        language: request.language.unwrap_or_default(),
        mode: request.mode.unwrap_or_default().as_str().to_owned(),
    };
    let response = state.indexer.clone().search(request).await.map_err(|status| ApiError::from(&status))?;
    Ok(Json(SearchResults {
        hits: response
            .into_inner()
            .hits
            .into_iter()
            .map(|h| SearchHit {
                repository_id: h.repository_id,
                repository_url: h.repository_url,
                path: h.path,
                start_line: h.start_line,
                end_line: h.end_line,
                symbol: h.symbol,
                language: h.language,
                score: h.score,
                snippet: h.snippet,
            })
            .collect(),
    }))
}
