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
use devops_runtime::auth::require_scope;
use devops_runtime::http::{AppPath, api_error};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Github,
    Gitlab,
}

impl Provider {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "github" => Ok(Provider::Github),
            "gitlab" => Ok(Provider::Gitlab),
            other => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no webhooks for provider {other:?}; use github or gitlab"),
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
        }
    }
}

fn secret_name(tenant: TenantId, provider: Provider) -> String {
    format!("tenants/{tenant}/webhooks/{}", provider.as_str())
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
    let provider = Provider::parse(&provider)?;
    let started = Instant::now();
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let tenant = principal.tenant_id;
    let result = state.secrets.put(&secret_name(tenant, provider), &SecretValue::new(secret.clone())).await;
    state
        .audit(&principal, "webhook.secret.rotate", format!("webhook:{}", provider.as_str()), started, result.is_ok())
        .await;
    result.map_err(api_error)?;
    let path = format!("/webhooks/{}/{tenant}", provider.as_str());
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

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The tenant's secret, or the same error a wrong signature gets.
async fn tenant_secret(
    state: &AppState,
    raw_tenant: &str,
    provider: Provider,
) -> Result<(TenantId, SecretValue), ApiError> {
    let tenant = raw_tenant.parse::<Uuid>().map(TenantId).map_err(|_| bad_signature())?;
    let secret = state.secrets.get(&secret_name(tenant, provider)).await.map_err(api_error)?;
    secret.map(|s| (tenant, s)).ok_or_else(bad_signature)
}

/// `X-Hub-Signature-256: sha256=<hex>` over the raw body.
fn verify_github(secret: &SecretValue, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let signature =
        header(headers, "x-hub-signature-256").and_then(|v| v.strip_prefix("sha256=")).ok_or_else(bad_signature)?;
    let signature = hex::decode(signature).map_err(|_| bad_signature())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).map_err(|_| bad_signature())?;
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| bad_signature())
}

fn verify_gitlab(secret: &SecretValue, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = header(headers, "x-gitlab-token").ok_or_else(bad_signature)?;
    if bool::from(token.as_bytes().ct_eq(secret.expose().as_bytes())) { Ok(()) } else { Err(bad_signature()) }
}

/// A delivery id: the provider's, bounded, printable.
fn delivery_id(headers: &HeaderMap, names: &[&str]) -> Result<String, ApiError> {
    names
        .iter()
        .find_map(|name| header(headers, name))
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!("a delivery id header ({}) is required", names.join(" or ")),
            )
        })
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|err| ApiError::new(ErrorCode::MalformedJson, format!("webhook body: {err}")))
}

fn text<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// What a delivery asks for, before the repository is matched.
enum Work {
    Push {
        branch: String,
        default_branch: String,
        after: String,
    },
    PullRequest {
        action: &'static str,
        number: u64,
        head_sha: String,
        head_ref: String,
        base_ref: String,
        title: String,
    },
}

/// The repository's URLs and the work, or why the delivery needs none.
type Delivery = Result<(Vec<String>, Work), String>;

fn github_work(event: &str, payload: &Value) -> Delivery {
    let urls: Vec<String> = ["/repository/clone_url", "/repository/ssh_url", "/repository/html_url"]
        .iter()
        .filter_map(|p| text(payload, p).map(str::to_owned))
        .collect();
    match event {
        "ping" => Err("ping".into()),
        "push" => {
            if payload.get("deleted").and_then(Value::as_bool) == Some(true) {
                return Err("a branch deletion".into());
            }
            let work = Work::Push {
                branch: text(payload, "/ref").unwrap_or_default().trim_start_matches("refs/heads/").to_owned(),
                default_branch: text(payload, "/repository/default_branch").unwrap_or_default().to_owned(),
                after: text(payload, "/after").unwrap_or_default().to_owned(),
            };
            Ok((urls, work))
        }
        "pull_request" => {
            let action = match text(payload, "/action") {
                Some("opened") => "opened",
                Some("synchronize") => "synchronize",
                Some("reopened") => "reopened",
                other => return Err(format!("pull_request action {:?}", other.unwrap_or_default())),
            };
            let work = Work::PullRequest {
                action,
                number: payload
                    .pointer("/pull_request/number")
                    .or_else(|| payload.get("number"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                head_sha: text(payload, "/pull_request/head/sha").unwrap_or_default().to_owned(),
                head_ref: text(payload, "/pull_request/head/ref").unwrap_or_default().to_owned(),
                base_ref: text(payload, "/pull_request/base/ref").unwrap_or_default().to_owned(),
                title: text(payload, "/pull_request/title").unwrap_or_default().to_owned(),
            };
            Ok((urls, work))
        }
        other => Err(format!("{other:?} events")),
    }
}

fn gitlab_work(event: &str, payload: &Value) -> Delivery {
    let urls: Vec<String> = ["/project/git_http_url", "/project/git_ssh_url", "/project/web_url"]
        .iter()
        .filter_map(|p| text(payload, p).map(str::to_owned))
        .collect();
    match event {
        "Push Hook" => {
            let after = text(payload, "/after").unwrap_or_default();
            if after.is_empty() || after.bytes().all(|b| b == b'0') {
                return Err("a branch deletion".into());
            }
            let work = Work::Push {
                branch: text(payload, "/ref").unwrap_or_default().trim_start_matches("refs/heads/").to_owned(),
                default_branch: text(payload, "/project/default_branch").unwrap_or_default().to_owned(),
                after: after.to_owned(),
            };
            Ok((urls, work))
        }
        "Merge Request Hook" => {
            let attributes = payload.get("object_attributes").cloned().unwrap_or(Value::Null);
            // An update without `oldrev` edited the title or labels, not the code.
            let action = match text(&attributes, "/action") {
                Some("open") => "opened",
                Some("reopen") => "reopened",
                Some("update") if attributes.get("oldrev").is_some_and(|v| !v.is_null()) => "synchronize",
                other => return Err(format!("merge request action {:?}", other.unwrap_or_default())),
            };
            let work = Work::PullRequest {
                action,
                number: attributes.get("iid").and_then(Value::as_u64).unwrap_or(0),
                head_sha: text(&attributes, "/last_commit/id").unwrap_or_default().to_owned(),
                head_ref: text(&attributes, "/source_branch").unwrap_or_default().to_owned(),
                base_ref: text(&attributes, "/target_branch").unwrap_or_default().to_owned(),
                title: text(&attributes, "/title").unwrap_or_default().to_owned(),
            };
            Ok((urls, work))
        }
        other => Err(format!("{other:?} events")),
    }
}

/// Queues the event `work` asks for, if the tenant registered the repository.
async fn accept(
    state: &AppState,
    tenant: TenantId,
    provider: Provider,
    delivery: &str,
    delivery_work: Delivery,
) -> Result<(StatusCode, Json<WebhookAccepted>), ApiError> {
    let (urls, work) = match delivery_work {
        Ok(found) => found,
        Err(reason) => return Ok(WebhookAccepted::ignored(reason)),
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
    let (event_type, payload) = match work {
        Work::Push { branch, default_branch, after, .. } => {
            if !default_branch.is_empty() && branch != default_branch {
                return Ok(WebhookAccepted::ignored(format!("a push to {branch:?}, not the default branch")));
            }
            (
                "repo.push".to_owned(),
                serde_json::json!({ "repository_url": repository.url, "git_ref": branch, "after": after }),
            )
        }
        Work::PullRequest { action, number, head_sha, head_ref, base_ref, title, .. } => {
            if number == 0 {
                return Err(ApiError::new(ErrorCode::InvalidArgument, "the pull request has no number"));
            }
            (
                format!("pull_request.{action}"),
                serde_json::json!({
                    "provider": provider.as_str(), "repository_url": repository.url, "number": number,
                    "head_sha": head_sha, "head_ref": head_ref, "base_ref": base_ref, "title": title,
                }),
            )
        }
    };
    let mut event =
        EventEnvelope::new(event_type.clone(), tenant, format!("{}:{delivery}", provider.as_str()), payload);
    devops_telemetry::inject_trace_context(&mut event.trace_context);
    state.store.enqueue_outbox(tenant, &event).await.map_err(api_error)?;
    tracing::info!(%tenant, event_type, event_id = %event.id, provider = provider.as_str(), "webhook queued");
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
    let (tenant, secret) = tenant_secret(&state, &tenant, Provider::Github).await?;
    verify_github(&secret, &headers, &body)?;
    let delivery = delivery_id(&headers, &["x-github-delivery"])?;
    let event = header(&headers, "x-github-event").unwrap_or_default().to_owned();
    let payload = parse_json(&body)?;
    accept(&state, tenant, Provider::Github, &delivery, github_work(&event, &payload)).await
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
    let (tenant, secret) = tenant_secret(&state, &tenant, Provider::Gitlab).await?;
    verify_gitlab(&secret, &headers)?;
    let delivery = delivery_id(&headers, &["x-gitlab-event-uuid", "idempotency-key"])?;
    let event = header(&headers, "x-gitlab-event").unwrap_or_default().to_owned();
    let payload = parse_json(&body)?;
    accept(&state, tenant, Provider::Gitlab, &delivery, gitlab_work(&event, &payload)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        let mut headers = HeaderMap::new();
        let value = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        headers.insert("x-hub-signature-256", value.parse().expect("header"));
        headers
    }

    #[test]
    fn github_signatures_verify_only_with_the_right_secret_and_body() {
        let secret = SecretValue::new("s3cret");
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        assert!(verify_github(&secret, &signed("s3cret", body), body).is_ok());
        assert!(verify_github(&secret, &signed("other", body), body).is_err());
        assert!(verify_github(&secret, &signed("s3cret", body), b"{}").is_err());
        assert!(verify_github(&secret, &HeaderMap::new(), body).is_err());
        let mut bad = HeaderMap::new();
        bad.insert("x-hub-signature-256", "sha256=zz".parse().expect("header"));
        assert_eq!(verify_github(&secret, &bad, body).expect_err("bad hex").code, ErrorCode::InvalidSignature);
    }

    #[test]
    fn gitlab_merge_request_updates_count_only_with_new_commits() {
        let update = serde_json::json!({"object_attributes": {"action": "update", "iid": 3, "title": "t"}});
        assert!(gitlab_work("Merge Request Hook", &update).is_err());
        let pushed = serde_json::json!({"object_attributes": {"action": "update", "iid": 3, "oldrev": "abc"}});
        let work = gitlab_work("Merge Request Hook", &pushed).map(|(_, work)| work);
        assert!(matches!(work, Ok(Work::PullRequest { action: "synchronize", number: 3, .. })));
        let deleted = serde_json::json!({"after": "0000000000000000000000000000000000000000"});
        assert!(gitlab_work("Push Hook", &deleted).is_err());
    }
}
