//! The tools a tenant switches off for all its keys. MCP servers pick a
//! change up within seconds and tell open sessions
//! (`notifications/tools/list_changed`).

use std::time::Instant;

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use devops_errors::{ApiError, ErrorCode};
use devops_models::{Principal, Scope};
use devops_runtime::auth::require_scope;
use devops_runtime::http::{AppJson, api_error};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;

/// Names in one request at most.
const MAX_TOOLS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/tenants/current/tools", get(get_tool_settings).put(put_tool_settings))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ToolSettingsView {
    /// Tool names switched off for every key of the tenant, sorted.
    pub disabled_tools: Vec<String>,
    /// Grows with each change; 0 before the first.
    pub version: u64,
}

impl From<devops_store::ToolSettings> for ToolSettingsView {
    fn from(settings: devops_store::ToolSettings) -> Self {
        Self { disabled_tools: settings.disabled_tools, version: settings.version }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PutToolSettings {
    /// Tool names (`merge_pull_request`, …) to switch off; the rest stay on.
    #[schema(max_items = 200)]
    pub disabled_tools: Vec<ToolName>,
}

/// A tool's name: what the schema says is what the handler checks.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct ToolName(String);

impl utoipa::PartialSchema for ToolName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z][a-z0-9_]{0,63}$"))
            .into()
    }
}

impl ToSchema for ToolName {}

/// The tools this tenant switched off.
#[utoipa::path(
    get, path = "/api/v1/tenants/current/tools", tag = "tenants",
    responses(
        (status = 200, description = "The tenant's tool settings", body = ToolSettingsView),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
    )
)]
pub async fn get_tool_settings(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<ToolSettingsView>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    let settings = state.store.tool_settings().get_tool_settings(principal.tenant_id).await.map_err(api_error)?;
    Ok(Json(settings.into()))
}

/// Switch tools off (or back on) for every key of this tenant.
#[utoipa::path(
    put, path = "/api/v1/tenants/current/tools", tag = "tenants",
    request_body = PutToolSettings,
    responses(
        (status = 200, description = "Saved; MCP sessions are told within seconds", body = ToolSettingsView),
        (status = 400, description = "A name that is not a tool name, or too many", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
    )
)]
pub async fn put_tool_settings(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Json<ToolSettingsView>, ApiError> {
    require_scope(&principal, Scope::Admin)?;
    let invalid = |message: &str| ApiError::new(ErrorCode::InvalidArgument, message);
    if !body.is_object() {
        return Err(invalid("the body must be a JSON object"));
    }
    let body: PutToolSettings = serde_json::from_value(body).map_err(|err| invalid(&err.to_string()))?;
    if body.disabled_tools.len() > MAX_TOOLS {
        return Err(invalid("at most 200 tool names"));
    }
    let names: Vec<String> = body.disabled_tools.into_iter().map(|ToolName(name)| name).collect();
    let valid = |name: &String| {
        let bytes = name.as_bytes();
        (1..=64).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
    };
    if let Some(bad) = names.iter().find(|name| !valid(name)) {
        return Err(invalid(&format!("{bad:?} is not a tool name")));
    }
    let started = Instant::now();
    let result = state.store.tool_settings().put_tool_settings(principal.tenant_id, &names).await;
    state.audit(&principal, "tools.settings.put", "tools".into(), started, result.is_ok()).await;
    Ok(Json(result.map_err(api_error)?.into()))
}
