use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
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
        .route("/api/v1/keys/{key_id}", get(get_key))
        .route("/api/v1/keys/{key_id}/revoke", post(revoke_key))
        .route("/api/v1/audit", get(list_audit))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    /// What the key is for, e.g. `ci-bot`. Control characters are removed
    /// and surrounding whitespace trimmed.
    #[schema(example = "ci-bot", min_length = 1, max_length = 100, pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
    pub name: String,
    /// At least one; none may exceed the caller's own.
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// Days until the key stops working; omit for a key that does not expire.
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default, deserialize_with = "whole_number")]
    pub expires_in_days: Option<u32>,
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
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// At most this many entries, newest first (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEntry>,
}

/// JSON Schema counts `7.0` as an integer; serde does not, so accept any
/// number without a fractional part.
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<f64>::deserialize(deserializer)? else { return Ok(None) };
    if number.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&number) {
        Ok(Some(number as u32))
    } else {
        Err(serde::de::Error::custom(format!("expected a whole number, got {number}")))
    }
}

/// Validates a key request against the caller and stores the new key.
pub(crate) async fn mint_key(
    state: &AppState,
    principal: &Principal,
    tenant: TenantId,
    request: CreateKeyRequest,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let invalid = |msg: &str| ApiError::new(ErrorCode::InvalidArgument, msg);
    let printable: String = request.name.chars().filter(|c| !c.is_control()).collect();
    let name = printable.trim();
    if name.is_empty() || request.name.chars().count() > 100 {
        return Err(invalid("name must be 1-100 characters with at least one printable one"));
    }
    let mut scopes = request.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(invalid("scopes must name at least one scope"));
    }
    let expires_at = match request.expires_in_days {
        Some(days @ 1..=3650) => Some(Utc::now() + chrono::Duration::days(i64::from(days))),
        Some(_) => return Err(invalid("expires_in_days must be between 1 and 3650")),
        None => None,
    };
    let ceiling = principal.max_scope();
    if scopes.iter().any(|s| ceiling.is_none_or(|max| !max.grants(*s))) {
        return Err(ApiError::new(ErrorCode::Forbidden, "a key cannot be given a scope its creator lacks"));
    }
    let started = Instant::now();
    let (secret, record) = ApiKeySecret::generate(name, scopes, expires_at);
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

/// Revoke an API key of the caller's tenant. The key stays listed, for the
/// audit trail; revoking twice is harmless.
#[utoipa::path(
    post, path = "/api/v1/keys/{key_id}/revoke", tag = "keys",
    params(("key_id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKey),
        (status = 400, description = "Invalid id", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
        (status = 404, description = "No such key", body = devops_errors::ErrorBody),
        (status = 409, description = "The key tried to revoke itself", body = devops_errors::ErrorBody),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(key_id): AppPath<Uuid>,
) -> Result<Json<ApiKey>, ApiError> {
    require_scope(&principal, Scope::Admin)?;
    if key_id == principal.key_id {
        // Revoking the key in use could lock the tenant out; another admin key must do it.
        return Err(ApiError::new(ErrorCode::Conflict, "a key cannot revoke itself; use another admin key"));
    }
    let started = Instant::now();
    let result = state.store.revoke_api_key(principal.tenant_id, key_id, Utc::now()).await;
    state.audit(&principal, "api_key.revoke", format!("api_key:{key_id}"), started, result.is_ok()).await;
    let key = result.map_err(api_error)?;
    if let Err(err) = state.cache.delete(&devops_runtime::auth::cache_key(&key.prefix)).await {
        // The entry expires by itself; the revocation is already stored.
        tracing::warn!(error = %err, "cannot evict revoked key from the cache");
    }
    Ok(Json(key))
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
