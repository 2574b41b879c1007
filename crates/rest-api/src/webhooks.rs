//! Webhook intake. Each tenant has its own endpoint and secret per
//! provider: `POST /webhooks/github/{tenant_id}` (HMAC-SHA256 in
//! `X-Hub-Signature-256`) and `POST /webhooks/gitlab/{tenant_id}`
//! (`X-Gitlab-Token`). The signature is verified, in constant time, before
//! the body is parsed or anything is queued; an unknown tenant and a bad
//! signature get the same answer, so endpoints cannot be probed.
//!
//! Pushes to a registered repository's default branch become `repo.push`;
//! pull/merge requests opened, updated with new commits or reopened become
//! `pull_request.opened|synchronize|reopened`. The delivery id is the
//! idempotency key, so a redelivery has one effect. Events go through the
//! outbox, in the same transaction as nothing else: a crash after the 202
//! cannot lose them.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Json, Router};
use devops_adapters::secrets::SecretValue;
use devops_errors::{ApiError, ErrorCode};
use devops_models::{EventEnvelope, Principal, Scope, TenantId};
use devops_providers::webhooks::{self, WebhookEvent, WebhookFormat};
use devops_runtime::auth::require_scope;
use devops_runtime::http::{AppPath, api_error};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;

/// The intake routes; they authenticate by signature, not by API key.
pub fn intake_routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/github/{tenant_id}", post(github))
        .route("/webhooks/gitlab/{tenant_id}", post(gitlab))
}

/// Management routes, behind API-key authentication.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/webhooks/{provider}/secret", post(rotate_secret))
}

/// The webhook format of a provider named in a path.
fn format(raw: &str) -> Result<&'static dyn WebhookFormat, ApiError> {
    webhooks::format(raw).ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, format!("no webhooks for provider {raw:?}; use github or gitlab"))
    })
}

fn secret_name(tenant: TenantId, provider: &str) -> String {
    format!("tenants/{tenant}/webhooks/{provider}")
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecret {
    /// Shown once: configure it as the webhook's secret (GitHub) or secret
    /// token (GitLab). Rotating replaces it at once.
    pub secret: String,
    /// The path to deliver to, on this API's public address.
    #[schema(example = "/webhooks/github/0193f4c2-7d1e-7a3b-9c4d-5e6f7a8b9c0d")]
    pub path: String,
}

/// Create or rotate the tenant's webhook secret for a provider.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{provider}/secret", tag = "webhooks",
    params(("provider" = String, Path, description = "github or gitlab")),
    responses(
        (status = 201, description = "The new secret", body = WebhookSecret),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
        (status = 404, description = "Unknown provider", body = devops_errors::ErrorBody),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(provider): AppPath<String>,
) -> Result<(StatusCode, Json<WebhookSecret>), ApiError> {
    require_scope(&principal, Scope::Admin)?;
    let provider = format(&provider)?.provider();
    let started = Instant::now();
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let tenant = principal.tenant_id;
    let result = state.secrets.put(&secret_name(tenant, provider), &SecretValue::new(secret.clone())).await;
    state.audit(&principal, "webhook.secret.rotate", format!("webhook:{provider}"), started, result.is_ok()).await;
    result.map_err(api_error)?;
    let path = format!("/webhooks/{provider}/{tenant}");
    Ok((StatusCode::CREATED, Json(WebhookSecret { secret, path })))
}

/// What a delivery became.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAccepted {
    /// The queued event, if the delivery asked for work.
    pub event_id: Option<Uuid>,
    pub event_type: Option<String>,
    /// Why nothing was queued (an event we do not act on, a repository the
    /// tenant has not registered, a push to another branch).
    pub ignored: Option<String>,
}

impl WebhookAccepted {
    fn ignored(reason: impl Into<String>) -> (StatusCode, Json<Self>) {
        (StatusCode::ACCEPTED, Json(Self { event_id: None, event_type: None, ignored: Some(reason.into()) }))
    }
}

fn bad_signature() -> ApiError {
    ApiError::new(ErrorCode::InvalidSignature, "the webhook signature does not verify")
}

/// The tenant's secret, or the same error a wrong signature gets.
async fn tenant_secret(
    state: &AppState,
    raw_tenant: &str,
    provider: &str,
) -> Result<(TenantId, SecretValue), ApiError> {
    let tenant = raw_tenant.parse::<Uuid>().map(TenantId).map_err(|_| bad_signature())?;
    let secret = state.secrets.get(&secret_name(tenant, provider)).await.map_err(api_error)?;
    secret.map(|s| (tenant, s)).ok_or_else(bad_signature)
}

/// Verifies, then parses and queues one delivery.
async fn deliver(
    state: &AppState,
    format: &'static dyn WebhookFormat,
    raw_tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(StatusCode, Json<WebhookAccepted>), ApiError> {
    let coded = |err: devops_providers::Error| ApiError::from_coded(&err);
    let (tenant, secret) = tenant_secret(state, raw_tenant, format.provider()).await?;
    format.verify(headers, body, secret.expose().as_bytes()).map_err(|_| bad_signature())?;
    let delivery = format.delivery_id(headers).map_err(coded)?;
    let event = format.parse(headers, body).map_err(coded)?;
    accept(state, tenant, format.provider(), &delivery, event).await
}

/// Queues the event `work` asks for, if the tenant registered the repository.
async fn accept(
    state: &AppState,
    tenant: TenantId,
    provider: &str,
    delivery: &str,
    event: WebhookEvent,
) -> Result<(StatusCode, Json<WebhookAccepted>), ApiError> {
    let urls = match &event {
        WebhookEvent::Push { repository_urls, .. } | WebhookEvent::PullRequest { repository_urls, .. } => {
            repository_urls.clone()
        }
        WebhookEvent::Ignored(reason) => return Ok(WebhookAccepted::ignored(reason.clone())),
    };
    let mut repository = None;
    for url in urls.iter().filter_map(|u| state.url_policy.identity(u)) {
        let candidates =
            if url.ends_with(".git") { vec![url.clone()] } else { vec![format!("{url}.git"), url.clone()] };
        for candidate in candidates {
            if let Some(found) = state.store.find_repository(tenant, &candidate).await.map_err(api_error)? {
                repository = Some(found);
                break;
            }
        }
        if repository.is_some() {
            break;
        }
    }
    let Some(repository) = repository else {
        return Ok(WebhookAccepted::ignored("the repository is not registered for this tenant"));
    };
    let (event_type, payload) = match event {
        WebhookEvent::Ignored(reason) => return Ok(WebhookAccepted::ignored(reason)),
        WebhookEvent::Push { branch, default_branch, after, .. } => {
            if !default_branch.is_empty() && branch != default_branch {
                return Ok(WebhookAccepted::ignored(format!("a push to {branch:?}, not the default branch")));
            }
            (
                "repo.push".to_owned(),
                serde_json::json!({ "repository_url": repository.url, "git_ref": branch, "after": after }),
            )
        }
        WebhookEvent::PullRequest { action, number, head_sha, head_ref, base_ref, title, .. } => {
            if number == 0 {
                return Err(ApiError::new(ErrorCode::InvalidArgument, "the pull request has no number"));
            }
            (
                format!("pull_request.{}", action.as_str()),
                serde_json::json!({
                    "provider": provider, "repository_url": repository.url, "number": number,
                    "head_sha": head_sha, "head_ref": head_ref, "base_ref": base_ref, "title": title,
                }),
            )
        }
    };
    let mut event = EventEnvelope::new(event_type.clone(), tenant, format!("{provider}:{delivery}"), payload);
    devops_telemetry::inject_trace_context(&mut event.trace_context);
    state.store.enqueue_outbox(tenant, &event).await.map_err(api_error)?;
    tracing::info!(%tenant, event_type, event_id = %event.id, provider, "webhook queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookAccepted { event_id: Some(event.id), event_type: Some(event_type), ignored: None }),
    ))
}

/// A GitHub delivery.
#[utoipa::path(
    post, path = "/webhooks/github/{tenant_id}", tag = "webhooks", security(()),
    params(
        ("tenant_id" = String, Path, description = "The tenant the webhook belongs to"),
        ("X-Hub-Signature-256" = String, Header, description = "sha256=<HMAC-SHA256 of the body with the tenant's secret>"),
        ("X-GitHub-Event" = String, Header, description = "push, pull_request, ping, …"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery id; the idempotency key"),
    ),
    request_body(content = Object, description = "GitHub's webhook payload"),
    responses(
        (status = 202, description = "Queued, or ignored with the reason", body = WebhookAccepted),
        (status = 400, description = "Malformed body or missing delivery id", body = devops_errors::ErrorBody),
        (status = 401, description = "The signature does not verify (or no secret is set)", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
    )
)]
pub async fn github(
    State(state): State<AppState>,
    AppPath(tenant): AppPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookAccepted>), ApiError> {
    deliver(&state, &webhooks::GITHUB, &tenant, &headers, &body).await
}

/// A GitLab delivery.
#[utoipa::path(
    post, path = "/webhooks/gitlab/{tenant_id}", tag = "webhooks", security(()),
    params(
        ("tenant_id" = String, Path, description = "The tenant the webhook belongs to"),
        ("X-Gitlab-Token" = String, Header, description = "The tenant's secret token"),
        ("X-Gitlab-Event" = String, Header, description = "Push Hook, Merge Request Hook, …"),
        ("X-Gitlab-Event-UUID" = String, Header, description = "The delivery id; the idempotency key"),
    ),
    request_body(content = Object, description = "GitLab's webhook payload"),
    responses(
        (status = 202, description = "Queued, or ignored with the reason", body = WebhookAccepted),
        (status = 400, description = "Malformed body or missing delivery id", body = devops_errors::ErrorBody),
        (status = 401, description = "The token does not match (or no secret is set)", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
    )
)]
pub async fn gitlab(
    State(state): State<AppState>,
    AppPath(tenant): AppPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookAccepted>), ApiError> {
    deliver(&state, &webhooks::GITLAB, &tenant, &headers, &body).await
}
