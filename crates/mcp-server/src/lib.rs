//! mcp-server: the Model Context Protocol for agents, over Streamable HTTP at
//! `/mcp` (rmcp), behind the same API-key authentication as the REST API.
//! Tools see the caller's [`Principal`] through the HTTP request parts rmcp
//! hands them.

use std::sync::Arc;

use axum::Router;
use axum::http::request::Parts;
use axum::middleware::from_fn_with_state;
use devops_adapters::cache::Cache;
use devops_config::Config;
use devops_models::Principal;
use devops_runtime::auth::{self, Authenticator};
use devops_runtime::{Backend, ServiceContext, http, ops};
use devops_store::Store;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub const NAME: &str = "mcp-server";
/// The cache holds authenticated keys.
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Cache];

/// The MCP server handler: one per session (or per request when stateless).
#[derive(Clone)]
pub struct DevopsMcp {
    store: Arc<dyn Store>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Serialize)]
struct Identity {
    tenant_id: String,
    tenant_name: String,
    key_id: String,
    scopes: Vec<String>,
}

fn principal(parts: &Parts) -> Result<Principal, McpError> {
    parts.extensions.get::<Principal>().cloned().ok_or_else(|| McpError::invalid_request("unauthenticated", None))
}

#[tool_router]
impl DevopsMcp {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, tool_router: Self::tool_router() }
    }

    #[tool(
        description = "Who am I? Returns the tenant and scopes of the credential this session uses.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn whoami(&self, Extension(parts): Extension<Parts>) -> Result<CallToolResult, McpError> {
        let principal = principal(&parts)?;
        let tenant = self.store.get_tenant(principal.tenant_id).await.map_err(|err| {
            tracing::error!(error = %err, "whoami: tenant lookup failed");
            McpError::internal_error("tenant lookup failed", None)
        })?;
        let identity = Identity {
            tenant_id: tenant.id.to_string(),
            tenant_name: tenant.name,
            key_id: principal.key_id.to_string(),
            scopes: principal.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        };
        let text = serde_json::to_string(&identity).map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DevopsMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("devops-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions("DevOps MCP: code hosts, trackers, code search and reviews through one tool set.")
    }
}

/// The router: `/mcp` behind authentication, plus the operational endpoints.
pub fn app(
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    readiness: ops::Readiness,
    config: &Config,
    shutdown: CancellationToken,
) -> Router {
    let (mcp, max_body_bytes) = (&config.mcp, config.limits.max_request_body_bytes);
    let http_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!mcp.stateless)
        .with_json_response(mcp.stateless)
        .with_cancellation_token(shutdown.child_token())
        .with_allowed_hosts(mcp.allowed_hosts.clone())
        .with_max_request_body_bytes(max_body_bytes);
    let handler_store = store.clone();
    let service = StreamableHttpService::new(
        move || Ok(DevopsMcp::new(handler_store.clone())),
        Arc::new(LocalSessionManager::default()),
        http_config,
    );
    let mcp_routes = Router::new()
        .nest_service("/mcp", service)
        .layer(from_fn_with_state(Authenticator::new(store, cache, &config.auth), auth::require_auth));
    http::with_common_layers(Router::new().merge(mcp_routes).merge(ops::router(readiness)), NAME, max_body_bytes)
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let router =
        app(ctx.backends.store()?, ctx.backends.cache()?, ctx.backends.readiness(), &ctx.config, ctx.shutdown.clone());
    let listener = http::bind(ctx.config.services.mcp_server.listen).await?;
    http::serve(listener, router, ctx.shutdown.clone()).await
}
