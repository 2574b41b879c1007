//! rest-api: HTTP/JSON for programs at `/api/v1`, described by an OpenAPI 3
//! document generated from this code (`/api/v1/openapi.json`, Swagger UI at
//! `/api/v1/docs`). Every `/api/v1` route but the documentation is
//! authenticated and scoped to the caller's tenant.

mod connections;
mod keys;
mod pull_requests;
mod repositories;
mod tenants;
mod tools;
mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::middleware::from_fn_with_state;
use devops_adapters::cache::Cache;
use devops_adapters::queue::Queue;
use devops_adapters::secrets::Secrets;
use devops_config::Config;
use devops_errors::ErrorBody;
use devops_models::{AuditOutcome, NewAuditEntry, Principal};
use devops_runtime::auth::{self, Authenticator};
use devops_runtime::{Backend, ServiceContext, http, ops, outbox};
use devops_store::Store;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

pub const NAME: &str = "rest-api";
/// The queue carries the outbox's events; the cache holds authenticated keys;
/// secrets hold provider credential keys.
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Queue, Backend::Cache, Backend::Secrets];

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Holds authenticated keys; revoking a key evicts it.
    pub cache: Arc<dyn Cache>,
    /// Webhook secrets, one per tenant and provider.
    pub secrets: Arc<dyn Secrets>,
    /// For the dead-letter endpoints.
    pub queue: Arc<dyn Queue>,
    pub indexer: devops_runtime::clients::Indexer,
    pub pull_requests: devops_runtime::clients::PullRequests,
    pub reviewer: devops_runtime::clients::Reviewer,
    /// The SSRF guard repository URLs pass before they are registered.
    pub url_policy: Arc<devops_git::UrlPolicy>,
    /// Provider connections (credentials sealed) and the providers they make.
    pub connections: devops_providers::Connections,
    pub hosts: devops_providers::Hosts,
}

impl AppState {
    pub async fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn Cache>,
        secrets: Arc<dyn Secrets>,
        queue: Arc<dyn Queue>,
        config: &Config,
    ) -> devops_runtime::Result<Self> {
        let connections = devops_runtime::providers::connections(config, &store, secrets.as_ref()).await?;
        let hosts = devops_runtime::providers::hosts_with(config, &store, connections.clone());
        Ok(Self {
            indexer: devops_runtime::clients::indexer(config)?,
            pull_requests: devops_runtime::clients::pull_requests(config)?,
            reviewer: devops_runtime::clients::reviewer(config)?,
            url_policy: devops_runtime::providers::url_policy(config),
            connections,
            hosts,
            store,
            cache,
            secrets,
            queue,
        })
    }
}

impl AppState {
    /// Records a state-changing call. Argument values never go in `detail`.
    async fn audit(&self, principal: &Principal, action: &str, target: String, started: Instant, ok: bool) {
        let entry = NewAuditEntry {
            actor_key_id: Some(principal.key_id),
            action: action.to_owned(),
            target: Some(target),
            outcome: if ok { AuditOutcome::Success } else { AuditOutcome::Failure },
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            detail: serde_json::Value::Object(Default::default()),
        };
        if let Err(err) = self.store.append_audit(principal.tenant_id, &entry).await {
            tracing::error!(error = %err, action, "cannot write audit entry");
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "DevOps MCP REST API", description = "Tenants, API keys and everything an agent platform administers."),
    paths(
        tenants::create_tenant,
        tenants::list_tenants,
        tenants::current_tenant,
        tenants::get_tenant,
        tenants::create_tenant_key,
        keys::create_key,
        keys::list_keys,
        keys::get_key,
        keys::revoke_key,
        keys::list_audit,
        repositories::register_repository,
        repositories::list_repositories,
        repositories::get_repository,
        repositories::index_repository,
        repositories::delete_repository,
        repositories::search,
        pull_requests::create_pull_request,
        pull_requests::list_pull_requests,
        pull_requests::get_pull_request,
        pull_requests::merge_pull_request,
        pull_requests::comment_on_pull_request,
        pull_requests::review_pull_request,
        pull_requests::latest_review,
        pull_requests::get_review,
        pull_requests::list_dead_letters,
        pull_requests::redrive_dead_letters,
        webhooks::rotate_secret,
        connections::create_connection,
        connections::list_connections,
        connections::get_connection,
        connections::rotate_credentials,
        connections::delete_connection,
        connections::list_repositories,
        tools::get_tool_settings,
        tools::put_tool_settings,
        webhooks::github,
        webhooks::gitlab,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    tags((name = "tenants"), (name = "keys"), (name = "audit"), (name = "repositories"), (name = "pull-requests"), (name = "reviews"), (name = "queue"), (name = "webhooks"), (name = "connections"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("dmcp_<key id>_<secret>")
                    .description(Some("An API key created with `devops-mcp key create` or POST /api/v1/keys, or a JWT from the configured identity provider."))
                    .build(),
            ),
        );
    }
}

/// The router, without I/O of its own: tests serve it directly.
pub fn app(state: AppState, readiness: ops::Readiness, config: &Config) -> Router {
    let authenticator = Authenticator::new(state.store.clone(), state.cache.clone(), &config.auth);
    let api = Router::new()
        .merge(tenants::routes())
        .merge(keys::routes())
        .merge(repositories::routes())
        .merge(pull_requests::routes())
        .merge(webhooks::routes())
        .merge(connections::routes())
        .merge(tools::routes())
        .route_layer(from_fn_with_state(authenticator, auth::require_auth))
        .with_state(state.clone());
    let webhooks = webhooks::intake_routes().with_state(state);
    let docs = SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", ApiDoc::openapi());
    let router = Router::new().merge(api).merge(webhooks).merge(docs).merge(ops::router(readiness));
    http::with_common_layers(router, NAME, config.limits.max_request_body_bytes)
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let store = ctx.backends.store()?;
    let queue = ctx.backends.queue()?;
    let relay = tokio::spawn(outbox::run_relay(store.clone(), queue.clone(), ctx.shutdown.clone()));
    let state = AppState::new(store, ctx.backends.cache()?, ctx.backends.secrets()?, queue, &ctx.config).await?;
    let router = app(state, ctx.backends.readiness(), &ctx.config);
    let listener = http::bind(ctx.config.services.rest_api.listen).await?;
    let served = http::serve(listener, router, ctx.shutdown.clone()).await;
    ctx.shutdown.cancel();
    let _ = relay.await;
    served
}
