use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use devops_errors::{ApiError, ErrorCode};
use devops_models::{ApiKey, ApiKeySecret, AuditEntry, Principal, Scope, TenantId};
use devops_runtime::auth::require_scope;
use devops_runtime::http::{AppJson, AppPath, AppQuery, api_error};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::tenants::PageParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/keys", get(list_keys).post(create_key))
        .route("/api/v1/keys/{key_id}", get(get_key).delete(revoke_key))
        .route("/api/v1/audit", get(list_audit))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    /// What the key is for, e.g. `ci-bot`.
    #[schema(example = "ci-bot")]
    pub name: String,
    /// At least one; none may exceed the caller's own.
    pub scopes: Vec<Scope>,
    /// When the key stops working; omit for a key that does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub key: ApiKey,
    /// The token to send as `Authorization: Bearer …`. Shown only here.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<ApiKey>,
    pub next_after: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditParams {
    /// At most this many entries, newest first (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEntry>,
}

/// Validates a key request against the caller and stores the new key.
pub(crate) async fn mint_key(
    state: &AppState,
    principal: &Principal,
    tenant: TenantId,
    request: CreateKeyRequest,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let invalid = |msg: &str| ApiError::new(ErrorCode::InvalidArgument, msg);
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("name must be 1-100 printable characters"));
    }
    if request.scopes.is_empty() {
        return Err(invalid("scopes must name at least one scope"));
    }
    if request.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(invalid("expires_at must be in the future"));
    }
    let ceiling = principal.max_scope();
    if request.scopes.iter().any(|s| ceiling.is_none_or(|max| !max.grants(*s))) {
        return Err(ApiError::new(ErrorCode::Forbidden, "a key cannot be given a scope its creator lacks"));
    }
    let started = Instant::now();
    let (secret, record) = ApiKeySecret::generate(name, request.scopes, request.expires_at);
    let result = state.store.create_api_key(tenant, &record).await;
    state.audit(principal, "api_key.create", format!("api_key:{}", record.id), started, result.is_ok()).await;
    let key = result.map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret: secret.expose().to_owned() })))
}

/// Create an API key in the caller's tenant.
#[utoipa::path(
    post, path = "/api/v1/keys", tag = "keys",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Created; `secret` is shown once", body = CreatedKey),
        (status = 400, description = "Invalid request", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin, or a scope above the caller's", body = devops_errors::ErrorBody),
        (status = 404, description = "The caller's tenant is gone", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppJson(request): AppJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    require_scope(&principal, Scope::Admin)?;
    mint_key(&state, &principal, principal.tenant_id, request).await
}

/// List the API keys of the caller's tenant.
#[utoipa::path(
    get, path = "/api/v1/keys", tag = "keys",
    params(PageParams),
    responses(
        (status = 200, description = "A page of keys", body = KeyList),
        (status = 400, description = "Invalid parameters", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<KeyList>, ApiError> {
    require_scope(&principal, Scope::Admin)?;
    let page = params.page()?;
    let items = state.store.list_api_keys(principal.tenant_id, page).await.map_err(api_error)?;
    let next_after = (items.len() == page.limit as usize).then(|| items.last().map(|k| k.id)).flatten();
    Ok(Json(KeyList { items, next_after }))
}

/// One API key of the caller's tenant.
#[utoipa::path(
    get, path = "/api/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key", body = ApiKey),
        (status = 400, description = "Invalid id", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
        (status = 404, description = "No such key", body = devops_errors::ErrorBody),
    )
)]
pub async fn get_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(key_id): AppPath<Uuid>,
) -> Result<Json<ApiKey>, ApiError> {
    require_scope(&principal, Scope::Admin)?;
    Ok(Json(state.store.get_api_key(principal.tenant_id, key_id).await.map_err(api_error)?))
}

/// Revoke an API key of the caller's tenant. Revoking twice is harmless.
#[utoipa::path(
    delete, path = "/api/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKey),
        (status = 400, description = "Invalid id", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
        (status = 404, description = "No such key", body = devops_errors::ErrorBody),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(key_id): AppPath<Uuid>,
) -> Result<Json<ApiKey>, ApiError> {
    require_scope(&principal, Scope::Admin)?;
    let started = Instant::now();
    let result = state.store.revoke_api_key(principal.tenant_id, key_id, Utc::now()).await;
    state.audit(&principal, "api_key.revoke", format!("api_key:{key_id}"), started, result.is_ok()).await;
    Ok(Json(result.map_err(api_error)?))
}

/// The caller's tenant's audit log, newest first.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "Audit entries", body = AuditList),
        (status = 400, description = "Invalid parameters", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppQuery(params): AppQuery<AuditParams>,
) -> Result<Json<AuditList>, ApiError> {
    require_scope(&principal, Scope::Admin)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "limit must be between 1 and 200"));
    }
    let items = state.store.list_audit(principal.tenant_id, limit).await.map_err(api_error)?;
    Ok(Json(AuditList { items }))
}
