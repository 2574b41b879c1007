//! mcp-server: the Model Context Protocol for agents, over Streamable HTTP at
//! `/mcp` (rmcp) and WebSocket at `/ws`, behind the same API-key
//! authentication as the REST API.
//!
//! A request's [`policy::Policy`] (its key's scopes narrowed by the
//! `X-MCP-Toolsets` and `X-MCP-Readonly` headers) decides which tools of the
//! [`registry::Registry`] it sees; [`handler::DevopsMcp`] runs them with
//! output caps, sanitising, cancellation, progress and an audit record.
//! Sessions are kept in the cache ([`sessions`]), so any replica can serve
//! any session, and only to the tenant that opened it.

pub mod audit;
pub mod conformance;
pub mod dns_rebinding;
pub mod handler;
pub mod output;
pub mod policy;
pub mod prompts;
pub mod registry;
pub mod resources;
pub mod session_posts;
pub mod session_routes;
pub mod sessions;
pub mod tenant_tools;
pub mod tools;
pub mod whole_answer;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use devops_config::Config;
use devops_runtime::auth::{self, Authenticator};
use devops_runtime::{Backend, Backends, ServiceContext, http, ops};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::handler::{DevopsMcp, Shared};
use crate::registry::Registry;
use crate::sessions::{CacheSessionStore, SessionOwners};

pub const NAME: &str = "mcp-server";
/// The blob store holds large context items; the cache holds authenticated
/// keys and truncated outputs; the secret store holds the data key that
/// opens provider credentials.
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Blob, Backend::Cache, Backend::Secrets];

/// The registry of this build's tools under `config`.
pub fn registry(config: &Config) -> Registry {
    let mut registry = Registry::new(config.mcp.destructive_tools, config.mcp.max_output_bytes);
    tools::register(&mut registry);
    registry
}

/// What the handler shares, from connected back ends.
pub async fn shared(backends: &Backends, registry: Registry, config: &Config) -> devops_runtime::Result<Arc<Shared>> {
    let store = backends.store()?;
    let hosts = devops_runtime::providers::hosts(config, &store, backends.secrets()?.as_ref()).await?;
    let tenant_tools = tenant_tools::TenantTools::start(store.tool_settings()).await?;
    Ok(Arc::new(Shared {
        registry,
        hosts,
        tenant_tools,
        blob: backends.blob()?,
        cache: backends.cache()?,
        indexer: devops_runtime::clients::indexer(config)?,
        pull_requests: devops_runtime::clients::pull_requests(config)?,
        reviewer: devops_runtime::clients::reviewer(config)?,
        conformance: config.mcp.conformance_fixtures.then(|| Arc::new(conformance::Fixtures::default())),
        context_changes: tokio::sync::broadcast::channel(256).0,
        audit: audit::AuditWriter::start(store.clone()),
        store,
    }))
}

/// The router: `/mcp` behind authentication, plus the operational endpoints.
pub fn app(shared: Arc<Shared>, readiness: ops::Readiness, config: &Config, shutdown: CancellationToken) -> Router {
    let mut http_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!config.mcp.stateless)
        .with_json_response(config.mcp.stateless)
        .with_cancellation_token(shutdown.child_token())
        .with_allowed_hosts(config.mcp.allowed_hosts.clone())
        .with_allowed_origins(config.mcp.allowed_origins.clone())
        // An empty list refuses every browser origin rather than none.
        .enforce_origin_validation()
        .with_max_request_body_bytes(config.limits.max_request_body_bytes);
    let session_ttl = std::time::Duration::from_secs(config.mcp.session_ttl_secs);
    if !config.mcp.stateless {
        http_config.session_store = Some(Arc::new(CacheSessionStore::new(shared.cache.clone(), session_ttl)));
    }
    let owners = SessionOwners::new(shared.cache.clone(), session_ttl);
    let authenticator = Authenticator::new(shared.store.clone(), shared.cache.clone(), &config.auth)
        .with_resource_metadata(&config.auth);
    let ws_state = ws::WsState {
        shared: shared.clone(),
        authenticator: authenticator.clone(),
        max_frame_bytes: config.limits.max_request_body_bytes,
        shutdown: shutdown.clone(),
        allowed_hosts: config.mcp.allowed_hosts.clone(),
        allowed_origins: config.mcp.allowed_origins.clone(),
    };
    let sessions = Arc::new(session_routes::InlineSessions::new(session_routes::IDLE_TIMEOUT, http_config.sse_retry));
    let posts = Arc::new(
        session_posts::SessionPosts::new(
            sessions.clone(),
            http_config.allowed_hosts.clone(),
            http_config.max_request_body_bytes,
            http_config.sse_keep_alive,
            http_config.cancellation_token.clone(),
        )
        .with_direct_calls(Arc::new(DevopsMcp::new(shared.clone()))),
    );
    let service =
        Arc::new(StreamableHttpService::new(move || Ok(DevopsMcp::new(shared.clone())), sessions, http_config));
    // axum clones a route's service for every request, and rmcp's carries
    // its whole configuration: one shared instance costs a pointer instead.
    let mcp = axum::routing::any(move |request: axum::extract::Request| {
        let (service, posts) = (service.clone(), posts.clone());
        async move {
            let request = match posts.serve(request).await {
                Ok(answer) => return answer,
                Err(request) => request,
            };
            let posted = request.method() == axum::http::Method::POST;
            // Boxed: rmcp's request future is large, and inline it would be
            // copied with this one at every move.
            let response = Box::pin(service.handle(request)).await.map(axum::body::Body::new);
            if posted { whole_answer::gather(response, whole_answer::HOLD).await } else { response }
        }
    });
    let mcp_routes =
        Router::new().route("/mcp", mcp).layer(from_fn_with_state(Arc::new(McpGuard { authenticator, owners }), guard));
    let ws_routes = Router::new().route("/ws", axum::routing::get(ws::upgrade)).with_state(ws_state);
    let metadata = Router::new()
        .route(auth::RESOURCE_METADATA_PATH, axum::routing::get(resource_metadata))
        .route(&format!("{}/mcp", auth::RESOURCE_METADATA_PATH), axum::routing::get(resource_metadata))
        .with_state(config.auth.clone());
    http::with_common_layers(
        Router::new().merge(mcp_routes).merge(ws_routes).merge(metadata).merge(ops::router(readiness)),
        NAME,
        config.limits.max_request_body_bytes,
    )
}

/// Shared behind an `Arc`: axum clones a middleware's state per request.
struct McpGuard {
    authenticator: Authenticator,
    owners: SessionOwners,
}

/// `/mcp`'s one middleware: authentication, then the session's tenant. One
/// layer rather than two, as each costs a boxed clone and future per request.
async fn guard(
    axum::extract::State(guard): axum::extract::State<Arc<McpGuard>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Err(refusal) = auth::admit(&guard.authenticator, &mut request).await {
        return refusal;
    }
    sessions::bind_to_tenant(&guard.owners, request, next).await
}

/// RFC 9728 protected-resource metadata, so standard clients can find the
/// authorization server. Open, like the health endpoints.
async fn resource_metadata(
    axum::extract::State(auth): axum::extract::State<devops_config::AuthConfig>,
    headers: axum::http::HeaderMap,
) -> axum::Json<serde_json::Value> {
    let base = auth::public_base_url(&auth.public_url, &headers);
    axum::Json(serde_json::json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": auth.authorization_servers,
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["read", "write", "admin", "platform:admin"],
        "resource_name": "DevOps MCP",
    }))
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let shared = shared(&ctx.backends, registry(&ctx.config), &ctx.config).await?;
    let router = app(shared.clone(), ctx.backends.readiness(), &ctx.config, ctx.shutdown.clone());
    let listener = http::bind(ctx.config.services.mcp_server.listen).await?;
    let served = http::serve(listener, router, ctx.shutdown.clone()).await;
    shared.audit.close().await;
    served
}
