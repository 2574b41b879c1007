use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use devops_errors::{ApiError, ErrorCode};
use devops_models::{Principal, Scope, Tenant, TenantId};
use devops_runtime::auth::require_scope;
use devops_runtime::http::{AppJson, AppPath, AppQuery, api_error};
use devops_store::Page;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::keys::{CreateKeyRequest, CreatedKey, mint_key};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tenants", post(create_tenant).get(list_tenants))
        .route("/api/v1/tenants/current", get(current_tenant))
        .route("/api/v1/tenants/{tenant_id}", get(get_tenant))
        .route("/api/v1/tenants/{tenant_id}/keys", post(create_tenant_key))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTenantRequest {
    /// 1-63 characters of a-z, 0-9, '-' and '_', not starting or ending with '-'.
    #[schema(example = "acme", min_length = 1, max_length = 63, pattern = r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")]
    pub name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Return items after this id (the previous page's `next_after`).
    pub after: Option<Uuid>,
    /// At most this many items (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

impl PageParams {
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=Page::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::new(ErrorCode::InvalidArgument, "limit must be between 1 and 200"));
        }
        Ok(Page { after: self.after, limit })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub items: Vec<Tenant>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<Uuid>,
}

/// Create a tenant (platform administrators).
#[utoipa::path(
    post, path = "/api/v1/tenants", tag = "tenants",
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Created", body = Tenant),
        (status = 400, description = "Invalid name or body", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs platform:admin", body = devops_errors::ErrorBody),
        (status = 409, description = "Name taken", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
    )
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppJson(request): AppJson<CreateTenantRequest>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    require_scope(&principal, Scope::PlatformAdmin)?;
    let started = Instant::now();
    let result = state.store.create_tenant(&request.name).await;
    state.audit(&principal, "tenant.create", format!("tenant:{}", request.name), started, result.is_ok()).await;
    Ok((StatusCode::CREATED, Json(result.map_err(api_error)?)))
}

/// List all tenants (platform administrators).
#[utoipa::path(
    get, path = "/api/v1/tenants", tag = "tenants",
    params(PageParams),
    responses(
        (status = 200, description = "A page of tenants", body = TenantList),
        (status = 400, description = "Invalid parameters", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs platform:admin", body = devops_errors::ErrorBody),
    )
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<TenantList>, ApiError> {
    require_scope(&principal, Scope::PlatformAdmin)?;
    let page = params.page()?;
    let items = state.store.list_tenants(page).await.map_err(api_error)?;
    let next_after = (items.len() == page.limit as usize).then(|| items.last().map(|t| t.id.0)).flatten();
    Ok(Json(TenantList { items, next_after }))
}

/// The caller's own tenant.
#[utoipa::path(
    get, path = "/api/v1/tenants/current", tag = "tenants",
    responses(
        (status = 200, description = "The caller's tenant", body = Tenant),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
    )
)]
pub async fn current_tenant(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Tenant>, ApiError> {
    Ok(Json(state.store.get_tenant(principal.tenant_id).await.map_err(api_error)?))
}

/// One tenant: the caller's own, or any for platform administrators. Other
/// tenants are reported as not found, so their existence does not leak.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 400, description = "Invalid id", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 404, description = "No such tenant", body = devops_errors::ErrorBody),
    )
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(tenant_id): AppPath<Uuid>,
) -> Result<Json<Tenant>, ApiError> {
    let tenant_id = TenantId(tenant_id);
    if tenant_id != principal.tenant_id && !principal.has(Scope::PlatformAdmin) {
        return Err(ApiError::new(ErrorCode::NotFound, "tenant not found"));
    }
    Ok(Json(state.store.get_tenant(tenant_id).await.map_err(api_error)?))
}

/// Create an API key in any tenant (platform administrators), e.g. a new
/// tenant's first admin key. The secret is in the response, and only there.
#[utoipa::path(
    post, path = "/api/v1/tenants/{tenant_id}/keys", tag = "keys",
    params(("tenant_id" = Uuid, Path, description = "Tenant id")),
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Created; `secret` is shown once", body = CreatedKey),
        (status = 400, description = "Invalid request", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs platform:admin", body = devops_errors::ErrorBody),
        (status = 404, description = "No such tenant", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
    )
)]
pub async fn create_tenant_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(tenant_id): AppPath<Uuid>,
    AppJson(request): AppJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    require_scope(&principal, Scope::PlatformAdmin)?;
    mint_key(&state, &principal, TenantId(tenant_id), request).await
}
