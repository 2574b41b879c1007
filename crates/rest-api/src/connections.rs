//! Provider connections: a tenant's accounts on GitHub and GitLab (or
//! their self-hosted instances). Credentials go in and never come out:
//! they are sealed before they are stored, and no answer or log line
//! carries them.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use devops_errors::{ApiError, ErrorCode};
use devops_models::{Principal, Scope};
use devops_providers::{Connection, ConnectionCredentials, NewConnection, ProviderKind, RemoteRepository};
use devops_runtime::auth::require_scope;
use devops_runtime::http::{AppJson, AppPath, AppQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/connections", get(list_connections).post(create_connection))
        .route("/api/v1/connections/{connection_id}", get(get_connection).delete(delete_connection))
        .route("/api/v1/connections/{connection_id}/credentials", put(rotate_credentials))
        .route("/api/v1/connections/{connection_id}/repositories", get(list_repositories))
}

fn provider_error(err: devops_providers::Error) -> ApiError {
    ApiError::from_coded(&err)
}

/// The body as `T`, refusing what the schema refuses but serde's tagged
/// enums would take: an object written as an array, a tag given as a
/// variant's index.
fn tagged_body<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
    let invalid = |message: &str| ApiError::new(ErrorCode::InvalidArgument, message);
    let credentials = body.get("credentials");
    if !body.is_object() || credentials.is_some_and(|c| !c.is_object()) {
        return Err(invalid("the body and its credentials must be JSON objects"));
    }
    let tags = [body.get("provider"), credentials.and_then(|c| c.get("kind"))];
    if tags.iter().flatten().any(|tag| !tag.is_string()) {
        return Err(invalid("provider and credentials.kind must be strings"));
    }
    serde_json::from_value(body).map_err(|err| invalid(&err.to_string()))
}

/// A connection to create; the credentials a host takes depend on the host.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum CreateConnection {
    Github {
        /// Unique within the tenant.
        #[schema(example = "acme-github", min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")]
        name: String,
        /// Default `https://api.github.com`; GitHub Enterprise Server:
        /// `https://<host>/api/v3`.
        #[schema(example = "https://api.github.com", max_length = 2048)]
        base_url: Option<String>,
        /// Where repositories live (matched against repository URLs);
        /// default from the base URL.
        #[schema(example = "https://github.com", max_length = 2048)]
        web_url: Option<String>,
        credentials: ConnectionCredentials,
    },
    Gitlab {
        #[schema(example = "acme-gitlab", min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")]
        name: String,
        /// Default `https://gitlab.com/api/v4`; self-managed:
        /// `https://<host>[/prefix]/api/v4`.
        #[schema(example = "https://gitlab.com/api/v4", max_length = 2048)]
        base_url: Option<String>,
        #[schema(example = "https://gitlab.com", max_length = 2048)]
        web_url: Option<String>,
        credentials: TokenCredentials,
    },
}

/// GitLab takes access tokens (personal, project or group).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenCredentials {
    Token {
        #[schema(min_length = 1, max_length = 4096, pattern = "^[\\x21-\\x7e]+$")]
        token: String,
    },
}

impl From<CreateConnection> for NewConnection {
    fn from(body: CreateConnection) -> Self {
        match body {
            CreateConnection::Github { name, base_url, web_url, credentials } => {
                NewConnection { name, provider: ProviderKind::Github, base_url, web_url, credentials }
            }
            CreateConnection::Gitlab { name, base_url, web_url, credentials: TokenCredentials::Token { token } } => {
                let credentials = ConnectionCredentials::Token { token };
                NewConnection { name, provider: ProviderKind::Gitlab, base_url, web_url, credentials }
            }
        }
    }
}

/// New credentials, for a connection to the named host.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum RotateCredentials {
    Github { credentials: ConnectionCredentials },
    Gitlab { credentials: TokenCredentials },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub connections: Vec<Connection>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepositoryListQuery {
    /// From the previous page's `next_cursor`.
    #[param(max_length = 2048)]
    pub cursor: Option<String>,
    /// 1-100; default 30.
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemoteRepositoryList {
    pub repositories: Vec<RemoteRepository>,
    pub next_cursor: Option<String>,
}

/// Connect a code host.
#[utoipa::path(
    post, path = "/api/v1/connections", tag = "connections",
    request_body = CreateConnection,
    responses(
        (status = 201, description = "Connected; the credentials are sealed and never shown again", body = Connection),
        (status = 400, description = "Invalid connection or credentials", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
        (status = 409, description = "The name is taken", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
    )
)]
pub async fn create_connection(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<(StatusCode, Json<Connection>), ApiError> {
    require_scope(&principal, Scope::Admin)?;
    let body: CreateConnection = tagged_body(body)?;
    let started = Instant::now();
    let new = NewConnection::from(body);
    let result = state.connections.create(principal.tenant_id, &new).await;
    let target = format!("connection:{}", new.name);
    state.audit(&principal, "connection.create", target, started, result.is_ok()).await;
    Ok((StatusCode::CREATED, Json(result.map_err(provider_error)?)))
}

/// The tenant's connections.
#[utoipa::path(
    get, path = "/api/v1/connections", tag = "connections",
    responses(
        (status = 200, description = "By name", body = ConnectionList),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
    )
)]
pub async fn list_connections(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<ConnectionList>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    let connections = state.connections.list(principal.tenant_id).await.map_err(provider_error)?;
    Ok(Json(ConnectionList { connections }))
}

/// One connection.
#[utoipa::path(
    get, path = "/api/v1/connections/{connection_id}", tag = "connections",
    params(("connection_id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The connection, without credentials", body = Connection),
        (status = 400, description = "Malformed id", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 404, description = "No such connection", body = devops_errors::ErrorBody),
    )
)]
pub async fn get_connection(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Connection>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    Ok(Json(state.connections.get(principal.tenant_id, id).await.map_err(provider_error)?))
}

/// Replace a connection's credentials.
#[utoipa::path(
    put, path = "/api/v1/connections/{connection_id}/credentials", tag = "connections",
    params(("connection_id" = Uuid, Path, description = "Connection id")),
    request_body = RotateCredentials,
    responses(
        (status = 200, description = "Rotated", body = Connection),
        (status = 409, description = "The connection is to another host", body = devops_errors::ErrorBody),
        (status = 400, description = "Invalid credentials", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
        (status = 404, description = "No such connection", body = devops_errors::ErrorBody),
        (status = 413, description = "Body too large", body = devops_errors::ErrorBody),
        (status = 415, description = "Not JSON", body = devops_errors::ErrorBody),
    )
)]
pub async fn rotate_credentials(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Json<Connection>, ApiError> {
    require_scope(&principal, Scope::Admin)?;
    let body: RotateCredentials = tagged_body(body)?;
    let started = Instant::now();
    let (provider, credentials) = match body {
        RotateCredentials::Github { credentials } => (ProviderKind::Github, credentials),
        RotateCredentials::Gitlab { credentials: TokenCredentials::Token { token } } => {
            (ProviderKind::Gitlab, ConnectionCredentials::Token { token })
        }
    };
    let result = state.connections.rotate(principal.tenant_id, id, provider, &credentials).await;
    state.audit(&principal, "connection.rotate", format!("connection:{id}"), started, result.is_ok()).await;
    Ok(Json(result.map_err(provider_error)?))
}

/// Remove a connection.
#[utoipa::path(
    delete, path = "/api/v1/connections/{connection_id}", tag = "connections",
    params(("connection_id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Malformed id", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "Needs admin", body = devops_errors::ErrorBody),
        (status = 404, description = "No such connection", body = devops_errors::ErrorBody),
    )
)]
pub async fn delete_connection(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_scope(&principal, Scope::Admin)?;
    let started = Instant::now();
    let result = state.connections.delete(principal.tenant_id, id).await;
    state.audit(&principal, "connection.delete", format!("connection:{id}"), started, result.is_ok()).await;
    result.map_err(provider_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The repositories a connection's credentials can see, from the host.
#[utoipa::path(
    get, path = "/api/v1/connections/{connection_id}/repositories", tag = "connections",
    params(("connection_id" = Uuid, Path, description = "Connection id"), RepositoryListQuery),
    responses(
        (status = 200, description = "One page", body = RemoteRepositoryList),
        (status = 400, description = "Bad cursor or page size", body = devops_errors::ErrorBody),
        (status = 401, description = "Not authenticated", body = devops_errors::ErrorBody),
        (status = 403, description = "The host refused the connection's credentials", body = devops_errors::ErrorBody),
        (status = 404, description = "No such connection", body = devops_errors::ErrorBody),
        (status = 409, description = "The connection's credentials cannot be used (a key that cannot sign); rotate them", body = devops_errors::ErrorBody),
        (status = 429, description = "The host is rate limiting", body = devops_errors::ErrorBody),
        (status = 502, description = "The host answered unexpectedly", body = devops_errors::ErrorBody),
        (status = 503, description = "The host is unreachable", body = devops_errors::ErrorBody),
        (status = 504, description = "The host timed out", body = devops_errors::ErrorBody),
    )
)]
pub async fn list_repositories(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<RepositoryListQuery>,
) -> Result<Json<RemoteRepositoryList>, ApiError> {
    require_scope(&principal, Scope::Read)?;
    let per_page = query.per_page.unwrap_or(30);
    if !(1..=100).contains(&per_page) {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "per_page must be 1-100"));
    }
    if query.cursor.as_ref().is_some_and(|c| c.chars().count() > 2048) {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "cursor must be at most 2048 characters"));
    }
    let provider = state.hosts.for_connection(principal.tenant_id, id).await.map_err(provider_error)?;
    let page = provider
        .list_repositories(principal.tenant_id, query.cursor.as_deref(), per_page)
        .await
        .map_err(provider_error)?;
    Ok(Json(RemoteRepositoryList { repositories: page.items, next_cursor: page.next }))
}
