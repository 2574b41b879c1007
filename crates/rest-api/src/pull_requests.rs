//! Pull requests of a registered repository (through pr-manager), their
//! reviews (through the reviewer), and the dead-letter queue.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use devops_errors::{ApiError, ErrorCode};
use devops_models::{Finding, Principal, Review, Scope};
use devops_proto::pull_requests::v1 as pr;
use devops_proto::reviewer::v1 as rv;
use devops_runtime::auth::require_scope;
use devops_runtime::http::{AppJson, AppPath, AppQuery, api_error};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    let base = "/api/v1/repositories/{repository_id}/pull-requests";
    Router::new()
        .route(base, post(create_pull_request).get(list_pull_requests))
        .route(&format!("{base}/{{number}}"), get(get_pull_request))
        .route(&format!("{base}/{{number}}/merge"), post(merge_pull_request))
        .route(&format!("{base}/{{number}}/comments"), post(comment_on_pull_request))
        .route(&format!("{base}/{{number}}/reviews"), post(review_pull_request))
        .route(&format!("{base}/{{number}}/reviews/latest"), get(latest_review))
        .route("/api/v1/reviews/{review_id}", get(get_review))
        .route("/api/v1/dead-letters", get(list_dead_letters))
        .route("/api/v1/dead-letters/redrive", post(redrive_dead_letters))
}

fn grpc_error(status: tonic::Status) -> ApiError {
    ApiError::from(&status)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

/// The repository's URL, which also proves it is the caller's.
async fn repository_url(state: &AppState, principal: &Principal, id: Uuid) -> Result<String, ApiError> {
    Ok(state.store.get_repository(principal.tenant_id, id).await.map_err(api_error)?.url)
}

/// A body whose fields are all optional: serde would also take `[]` for
/// one, which the schema (an object) does not allow.
fn object_body<T: serde::de::DeserializeOwned>(
    body: serde_json::Map<String, serde_json::Value>,
) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::Object(body)).map_err(|err| invalid(err.to_string()))
}

fn check_number(number: u64) -> Result<u64, ApiError> {
    if number == 0 || number > i64::MAX as u64 { Err(invalid("number must be 1 or more")) } else { Ok(number) }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    Add,
    Modify,
    Delete,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct FileChangeRequest {
    #[schema(example = "src/lib.rs", min_length = 1, max_length = 4096)]
    pub path: String,
    pub action: FileAction,
    /// The whole new content (UTF-8); omit for a deletion.
    #[schema(max_length = 10485760)]
    pub content: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreatePullRequest {
    #[schema(min_length = 1, max_length = 512)]
    pub title: String,
    #[schema(max_length = 262144)]
    pub body: Option<String>,
    /// The branch to merge into; default: the default branch.
    #[schema(max_length = 200)]
    pub base_ref: Option<String>,
    #[schema(max_length = 65536)]
    pub commit_message: Option<String>,
    #[schema(min_items = 1, max_items = 1000)]
    pub files: Vec<FileChangeRequest>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PullRequestView {
    pub number: u64,
    pub repository_url: String,
    pub title: String,
    pub body: String,
    /// open, closed or merged.
    pub state: String,
    pub source_branch: String,
    pub target_branch: String,
    pub provider: String,
    pub url: String,
}

impl From<pr::PullRequest> for PullRequestView {
    fn from(p: pr::PullRequest) -> Self {
        let (repository_url, number) = p.r#ref.map(|r| (r.repository_url, r.number)).unwrap_or_default();
        Self {
            number,
            repository_url,
            title: p.title,
            body: p.body,
            state: p.state,
            source_branch: p.source_branch,
            target_branch: p.target_branch,
            provider: p.provider,
            url: p.url,
        }
    }
}

fn pr_ref(principal: &Principal, repository_url: String, number: u64) -> Option<pr::PullRequestRef> {
    Some(pr::PullRequestRef { tenant_id: principal.tenant_id.to_string(), repository_url, number })
}

/// Open a pull request from a change set.
#[utoipa::path(
    post, path = "/api/v1/repositories/{repository_id}/pull-requests", tag = "pull-requests",
    params(("repository_id" = Uuid, Path, description = "Repository id")),
    request_body = CreatePullRequest,
    responses(
        (status = 201, description = "Opened", body = PullRequestView),
        (status = 400, description = "Invalid change set", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs write, or the repository is not allowed", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
        (status = 501, description = "The repository's host has no provider yet", body = devops_errors::ErrorBody),
        (status = 503, description = "pr-manager is unavailable", body = devops_errors::ErrorBody),
    )
)]
pub async fn create_pull_request(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
    AppJson(request): AppJson<CreatePullRequest>,
) -> Result<(StatusCode, Json<PullRequestView>), ApiError> {
    require_scope(&principal, Scope::Write)?;
    let url = repository_url(&state, &principal, id).await?;
    let started = Instant::now();
    let files = request
        .files
        .into_iter()
        .map(|file| {
            let kind = match file.action {
                FileAction::Add => pr::file_change::Kind::Add,
                FileAction::Modify => pr::file_change::Kind::Modify,
                FileAction::Delete => pr::file_change::Kind::Delete,
            };
            pr::FileChange {
                kind: kind.into(),
                path: file.path,
                content: file.content.unwrap_or_default().into_bytes(),
            }
        })
        .collect();
    let create = pr::CreateRequest {
        tenant_id: principal.tenant_id.to_string(),
        repository_url: url.clone(),
        title: request.title,
        body: request.body.unwrap_or_default(),
        change_set: Some(pr::ChangeSet {
            base_ref: request.base_ref.unwrap_or_default(),
            message: request.commit_message.unwrap_or_default(),
            files,
        }),
    };
    let result = state.pull_requests.clone().create(create).await;
    state.audit(&principal, "pull_request.create", format!("repository:{url}"), started, result.is_ok()).await;
    let created = result.map_err(grpc_error)?.into_inner();
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// open, closed or merged; default all.
    #[param(pattern = "^(open|closed|merged|all)$")]
    pub state: Option<String>,
    /// The previous page's `next_cursor`.
    #[param(max_length = 20, pattern = "^[0-9]+$")]
    pub cursor: Option<String>,
    /// 1-100, default 30.
    #[param(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "crate::keys::whole_number")]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PullRequestList {
    pub items: Vec<PullRequestView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// List a repository's pull requests, newest first.
#[utoipa::path(
    get, path = "/api/v1/repositories/{repository_id}/pull-requests", tag = "pull-requests",
    params(("repository_id" = Uuid, Path, description = "Repository id"), ListParams),
    responses(
        (status = 200, description = "A page of pull requests", body = PullRequestList),
        (status = 400, description = "Invalid parameters", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository", body = devops_errors::ErrorBody),
        (status = 501, description = "The repository's host has no provider yet", body = devops_errors::ErrorBody),
        (status = 503, description = "pr-manager is unavailable", body = devops_errors::ErrorBody),
    )
)]
pub async fn list_pull_requests(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<Json<PullRequestList>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    let limit = params.limit.unwrap_or(30);
    if !(1..=100).contains(&limit) {
        return Err(invalid("limit must be between 1 and 100"));
    }
    if params.state.as_deref().is_some_and(|s| !matches!(s, "open" | "closed" | "merged" | "all")) {
        return Err(invalid("state must be open, closed, merged or all"));
    }
    if params.cursor.as_deref().is_some_and(|c| c.is_empty() || c.len() > 20 || !c.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid("cursor must be a previous page's next_cursor"));
    }
    let url = repository_url(&state, &principal, id).await?;
    let request = pr::ListRequest {
        tenant_id: principal.tenant_id.to_string(),
        repository_url: url,
        state: params.state.unwrap_or_default(),
        page_token: params.cursor.unwrap_or_default(),
        page_size: limit,
    };
    let page = state.pull_requests.clone().list(request).await.map_err(grpc_error)?.into_inner();
    Ok(Json(PullRequestList {
        items: page.pull_requests.into_iter().map(Into::into).collect(),
        next_cursor: (!page.next_page_token.is_empty()).then_some(page.next_page_token),
    }))
}

/// One pull request.
#[utoipa::path(
    get, path = "/api/v1/repositories/{repository_id}/pull-requests/{number}", tag = "pull-requests",
    params(
        ("repository_id" = Uuid, Path, description = "Repository id"),
        ("number" = u64, Path, description = "Pull request number", minimum = 1),
    ),
    responses(
        (status = 200, description = "The pull request", body = PullRequestView),
        (status = 400, description = "Invalid parameters", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository or pull request", body = devops_errors::ErrorBody),
        (status = 501, description = "The repository's host has no provider yet", body = devops_errors::ErrorBody),
        (status = 503, description = "pr-manager is unavailable", body = devops_errors::ErrorBody),
    )
)]
pub async fn get_pull_request(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath((id, number)): AppPath<(Uuid, u64)>,
) -> Result<Json<PullRequestView>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    let number = check_number(number)?;
    let url = repository_url(&state, &principal, id).await?;
    let request = pr::GetRequest { r#ref: pr_ref(&principal, url, number) };
    Ok(Json(state.pull_requests.clone().get(request).await.map_err(grpc_error)?.into_inner().into()))
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeMethod {
    #[default]
    Merge,
    Squash,
    Rebase,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct MergeRequest {
    /// merge (default), squash or rebase.
    pub method: Option<MergeMethod>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MergeResult {
    pub merged: bool,
    pub merge_commit: Option<String>,
    /// Conflicting paths when not merged; nothing changed then.
    pub conflicts: Vec<String>,
}

/// Merge a pull request.
#[utoipa::path(
    post, path = "/api/v1/repositories/{repository_id}/pull-requests/{number}/merge", tag = "pull-requests",
    params(
        ("repository_id" = Uuid, Path, description = "Repository id"),
        ("number" = u64, Path, description = "Pull request number", minimum = 1),
    ),
    request_body = MergeRequest,
    responses(
        (status = 200, description = "Merged, or the conflicts", body = MergeResult),
        (status = 400, description = "Invalid request", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs write", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository or pull request", body = devops_errors::ErrorBody),
        (status = 409, description = "Not open, or the target branch moved", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
        (status = 501, description = "The repository's host has no provider yet", body = devops_errors::ErrorBody),
        (status = 503, description = "pr-manager is unavailable", body = devops_errors::ErrorBody),
    )
)]
pub async fn merge_pull_request(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath((id, number)): AppPath<(Uuid, u64)>,
    AppJson(body): AppJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<MergeResult>, ApiError> {
    require_scope(&principal, Scope::Write)?;
    let request: MergeRequest = object_body(body)?;
    let number = check_number(number)?;
    let url = repository_url(&state, &principal, id).await?;
    let method = match request.method.unwrap_or_default() {
        MergeMethod::Merge => pr::merge_request::Method::Merge,
        MergeMethod::Squash => pr::merge_request::Method::Squash,
        MergeMethod::Rebase => pr::merge_request::Method::Rebase,
    };
    let started = Instant::now();
    let merge = pr::MergeRequest { r#ref: pr_ref(&principal, url.clone(), number), method: method.into() };
    let result = state.pull_requests.clone().merge(merge).await;
    state.audit(&principal, "pull_request.merge", format!("{url}#{number}"), started, result.is_ok()).await;
    let outcome = result.map_err(grpc_error)?.into_inner();
    Ok(Json(MergeResult {
        merged: outcome.merged,
        merge_commit: (!outcome.merge_commit.is_empty()).then_some(outcome.merge_commit),
        conflicts: outcome.conflicts,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CommentRequest {
    #[schema(min_length = 1, max_length = 65536)]
    pub body: String,
    /// For an inline comment: the file and its line in the new version.
    #[schema(max_length = 4096)]
    pub path: Option<String>,
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::keys::whole_number")]
    pub line: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentCreated {
    pub comment_id: String,
}

/// Comment on a pull request (inline with path and line).
#[utoipa::path(
    post, path = "/api/v1/repositories/{repository_id}/pull-requests/{number}/comments", tag = "pull-requests",
    params(
        ("repository_id" = Uuid, Path, description = "Repository id"),
        ("number" = u64, Path, description = "Pull request number", minimum = 1),
    ),
    request_body = CommentRequest,
    responses(
        (status = 201, description = "Posted", body = CommentCreated),
        (status = 400, description = "Invalid comment", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs write", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository or pull request", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
        (status = 501, description = "The repository's host has no provider yet", body = devops_errors::ErrorBody),
        (status = 503, description = "pr-manager is unavailable", body = devops_errors::ErrorBody),
    )
)]
pub async fn comment_on_pull_request(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath((id, number)): AppPath<(Uuid, u64)>,
    AppJson(request): AppJson<CommentRequest>,
) -> Result<(StatusCode, Json<CommentCreated>), ApiError> {
    require_scope(&principal, Scope::Write)?;
    let number = check_number(number)?;
    if request.line == Some(0) {
        return Err(invalid("line must be 1 or more"));
    }
    let url = repository_url(&state, &principal, id).await?;
    let comment = pr::CommentRequest {
        r#ref: pr_ref(&principal, url, number),
        body: request.body,
        path: request.path.unwrap_or_default(),
        line: request.line.unwrap_or_default(),
    };
    let posted = state.pull_requests.clone().comment(comment).await.map_err(grpc_error)?.into_inner();
    Ok((StatusCode::CREATED, Json(CommentCreated { comment_id: posted.comment_id })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub id: Uuid,
    pub repository_url: String,
    pub number: u64,
    pub head_sha: Option<String>,
    /// computed or posted.
    pub status: String,
    pub security_score: f64,
    pub quality_score: f64,
    /// Most important first.
    pub findings: Vec<FindingView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FindingView {
    pub file: String,
    pub line: u32,
    pub severity: String,
    pub category: String,
    pub rule: String,
    pub message: String,
    pub suggestion: String,
    pub confidence: f64,
}

impl From<Finding> for FindingView {
    fn from(f: Finding) -> Self {
        Self {
            file: f.file,
            line: f.line,
            severity: f.severity.to_string(),
            category: f.category.to_string(),
            rule: f.rule,
            message: f.message,
            suggestion: f.suggestion,
            confidence: f64::from(f.confidence),
        }
    }
}

impl From<Review> for ReviewView {
    fn from(r: Review) -> Self {
        Self {
            id: r.id,
            repository_url: r.repository_url,
            number: r.number,
            head_sha: Some(r.head_sha),
            status: r.status.as_str().to_owned(),
            security_score: r.scores.security,
            quality_score: r.scores.quality,
            findings: r.findings.into_iter().map(Into::into).collect(),
        }
    }
}

fn review_from_message(review: rv::Review) -> Result<ReviewView, ApiError> {
    Ok(ReviewView {
        id: review.id.parse().map_err(|_| ApiError::new(ErrorCode::Internal, "the reviewer returned a bad id"))?,
        repository_url: review.repository_url,
        number: review.number,
        head_sha: None,
        status: review.status,
        security_score: review.security_score,
        quality_score: review.quality_score,
        findings: review
            .findings
            .into_iter()
            .map(|f| FindingView {
                file: f.file,
                line: f.line,
                severity: f.severity,
                category: f.category,
                rule: f.rule,
                message: f.message,
                suggestion: f.suggestion,
                confidence: f.confidence,
            })
            .collect(),
    })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReviewRequest {
    /// Post the review on the pull request (default true).
    pub post: Option<bool>,
}

/// Review a pull request now (and post the review unless `post` is false).
#[utoipa::path(
    post, path = "/api/v1/repositories/{repository_id}/pull-requests/{number}/reviews", tag = "reviews",
    params(
        ("repository_id" = Uuid, Path, description = "Repository id"),
        ("number" = u64, Path, description = "Pull request number", minimum = 1),
    ),
    request_body = ReviewRequest,
    responses(
        (status = 200, description = "The review", body = ReviewView),
        (status = 400, description = "Invalid request", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs write", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository or pull request", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large, or the diff is", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
        (status = 501, description = "The repository's host has no provider yet", body = devops_errors::ErrorBody),
        (status = 503, description = "The reviewer is unavailable", body = devops_errors::ErrorBody),
    )
)]
pub async fn review_pull_request(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath((id, number)): AppPath<(Uuid, u64)>,
    AppJson(body): AppJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<ReviewView>, ApiError> {
    require_scope(&principal, Scope::Write)?;
    let request: ReviewRequest = object_body(body)?;
    let number = check_number(number)?;
    let url = repository_url(&state, &principal, id).await?;
    let review = rv::ReviewPullRequestRequest {
        tenant_id: principal.tenant_id.to_string(),
        repository_url: url,
        number,
        post: request.post.unwrap_or(true),
    };
    let review = state.reviewer.clone().review_pull_request(review).await.map_err(grpc_error)?.into_inner();
    Ok(Json(review_from_message(review)?))
}

/// The newest review of a pull request.
#[utoipa::path(
    get, path = "/api/v1/repositories/{repository_id}/pull-requests/{number}/reviews/latest", tag = "reviews",
    params(
        ("repository_id" = Uuid, Path, description = "Repository id"),
        ("number" = u64, Path, description = "Pull request number", minimum = 1),
    ),
    responses(
        (status = 200, description = "The review", body = ReviewView),
        (status = 400, description = "Invalid parameters", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 404, description = "No such repository, or no review yet", body = devops_errors::ErrorBody),
    )
)]
pub async fn latest_review(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath((id, number)): AppPath<(Uuid, u64)>,
) -> Result<Json<ReviewView>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    let number = check_number(number)?;
    let url = repository_url(&state, &principal, id).await?;
    let review =
        state.store.pull_requests().latest_review(principal.tenant_id, &url, number).await.map_err(api_error)?;
    review
        .map(|r| Json(r.into()))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no review of this pull request yet"))
}

/// One review, by id.
#[utoipa::path(
    get, path = "/api/v1/reviews/{review_id}", tag = "reviews",
    params(("review_id" = Uuid, Path, description = "Review id")),
    responses(
        (status = 200, description = "The review", body = ReviewView),
        (status = 400, description = "Invalid id", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 404, description = "No such review", body = devops_errors::ErrorBody),
    )
)]
pub async fn get_review(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<ReviewView>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    let review = state.store.pull_requests().get_review(principal.tenant_id, id).await.map_err(api_error)?;
    Ok(Json(review.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterParams {
    /// 1-100, default 20.
    #[param(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "crate::keys::whole_number")]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    pub message_id: String,
    /// The event, when the body is one; poison that is not JSON is shown raw.
    pub event: Option<serde_json::Value>,
    pub body: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    pub items: Vec<DeadLetterView>,
}

/// Dead letters, oldest first (platform administrators: they hold every tenant's events).
#[utoipa::path(
    get, path = "/api/v1/dead-letters", tag = "queue",
    params(DeadLetterParams),
    responses(
        (status = 200, description = "Dead letters", body = DeadLetterList),
        (status = 400, description = "Invalid parameters", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs platform:admin", body = devops_errors::ErrorBody),
        (status = 503, description = "The queue is unavailable", body = devops_errors::ErrorBody),
    )
)]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppQuery(params): AppQuery<DeadLetterParams>,
) -> Result<Json<DeadLetterList>, ApiError> {
    require_scope(&principal, Scope::PlatformAdmin)?;
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(invalid("limit must be between 1 and 100"));
    }
    let letters = state.queue.list_dead_letters(limit).await.map_err(api_error)?;
    let items = letters
        .into_iter()
        .map(|letter| match serde_json::from_str::<serde_json::Value>(&letter.body) {
            Ok(event) => DeadLetterView { message_id: letter.message_id, event: Some(event), body: None },
            Err(_) => DeadLetterView { message_id: letter.message_id, event: None, body: Some(letter.body) },
        })
        .collect();
    Ok(Json(DeadLetterList { items }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RedriveRequest {
    /// At most this many (1-1000, default 100).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "crate::keys::whole_number")]
    pub max: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redriven {
    pub moved: u32,
}

/// Move dead letters back onto the queue, oldest first.
#[utoipa::path(
    post, path = "/api/v1/dead-letters/redrive", tag = "queue",
    request_body = RedriveRequest,
    responses(
        (status = 200, description = "How many moved", body = Redriven),
        (status = 400, description = "Invalid request", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs platform:admin", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
        (status = 503, description = "The queue is unavailable", body = devops_errors::ErrorBody),
    )
)]
pub async fn redrive_dead_letters(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppJson(body): AppJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<Redriven>, ApiError> {
    require_scope(&principal, Scope::PlatformAdmin)?;
    let request: RedriveRequest = object_body(body)?;
    let max = request.max.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(invalid("max must be between 1 and 1000"));
    }
    let started = Instant::now();
    let result = state.queue.redrive(max).await;
    state.audit(&principal, "queue.redrive", "dead-letters".into(), started, result.is_ok()).await;
    Ok(Json(Redriven { moved: result.map_err(api_error)? }))
}
