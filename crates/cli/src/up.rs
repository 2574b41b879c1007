//! `devops-mcp up`: the six services in one process, sharing one set of
//! back ends and one shutdown signal, through the same `run` functions the
//! separate binaries call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use devops_config::Config;
use devops_models::Scope;
use devops_runtime::{Backend, Backends, Result, ServiceContext};
use devops_store::{Page, Store};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const BOOTSTRAP_TENANT: &str = "default";

type RunFn = fn(ServiceContext) -> Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// Every service: its name, back ends and `run`.
pub fn fleet() -> [(&'static str, &'static [Backend], RunFn); 6] {
    [
        (devops_mcp_server::NAME, devops_mcp_server::NEEDS, |ctx| Box::pin(devops_mcp_server::run(ctx))),
        (devops_rest_api::NAME, devops_rest_api::NEEDS, |ctx| Box::pin(devops_rest_api::run(ctx))),
        (devops_worker::NAME, devops_worker::NEEDS, |ctx| Box::pin(devops_worker::run(ctx))),
        (devops_indexer::NAME, devops_indexer::NEEDS, |ctx| Box::pin(devops_indexer::run(ctx))),
        (devops_pr_manager::NAME, devops_pr_manager::NEEDS, |ctx| Box::pin(devops_pr_manager::run(ctx))),
        (devops_reviewer::NAME, devops_reviewer::NEEDS, |ctx| Box::pin(devops_reviewer::run(ctx))),
    ]
}

pub async fn run(config: Config, env: &[(String, String)]) -> Result<()> {
    let backends = Backends::connect(&config, &Backend::ALL, env).await?;
    let store = backends.store()?;
    store.migrate().await?;
    bootstrap(store.as_ref()).await?;
    print_urls(&config);

    let shutdown = CancellationToken::new();
    tokio::spawn(devops_runtime::bootstrap::cancel_on_signal(shutdown.clone()));
    let config = Arc::new(config);
    let mut services = JoinSet::new();
    for (name, needs, run) in fleet() {
        let ctx = ServiceContext { config: config.clone(), backends: backends.only(needs), shutdown: shutdown.clone() };
        services.spawn(async move { (name, run(ctx).await) });
    }
    let mut first_error = None;
    while let Some(joined) = services.join_next().await {
        // One service stopping stops the fleet.
        shutdown.cancel();
        match joined {
            Ok((name, Err(err))) => {
                tracing::error!(service = name, error = %err, "service failed");
                first_error.get_or_insert(err);
            }
            Ok((name, Ok(()))) => tracing::info!(service = name, "stopped"),
            Err(err) => tracing::error!(error = %err, "service task panicked"),
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// On first run (no tenant yet), creates the `default` tenant and a
/// platform-admin key, and prints the key once.
async fn bootstrap(store: &dyn Store) -> Result<()> {
    if !store.list_tenants(Page::first(1)).await?.is_empty() {
        return Ok(());
    }
    let tenant = store.create_tenant(BOOTSTRAP_TENANT).await?;
    let (secret, _) = crate::admin::create_key(store, tenant.id, "bootstrap", vec![Scope::PlatformAdmin], None).await?;
    println!("first run: created tenant '{}' ({})", tenant.name, tenant.id);
    println!("bootstrap API key (platform:admin), shown only once:\n\n    {}\n", secret.expose());
    Ok(())
}

fn print_urls(config: &Config) {
    let s = &config.services;
    println!("DevOps MCP is starting; data in {}", config.data_dir.display());
    println!("  MCP (Streamable HTTP)  http://{}/mcp", s.mcp_server.listen);
    println!("  REST API               http://{}/api/v1  (docs: /api/v1/docs)", s.rest_api.listen);
    println!("  worker                 http://{}/healthz", s.worker.listen);
    println!("  indexer (gRPC)         {}", s.indexer.url());
    println!("  pr-manager (gRPC)      {}", s.pr_manager.url());
    println!("  reviewer (gRPC)        {}", s.reviewer.url());
}
