//! Operator commands: migrations, tenants and keys, straight against the store.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::Subcommand;
use devops_config::Config;
use devops_models::{ApiKeySecret, AuditOutcome, NewAuditEntry, Scope, Tenant, TenantId};
use devops_runtime::{Error, Result};
use devops_store::{ConnectOptions, Page, Store};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List tenants.
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key and print its secret (shown only once).
    Create {
        /// Tenant name or id.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// read, write, admin or platform:admin (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
        /// Days until the key expires; omit for no expiry.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke an API key.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: uuid::Uuid,
    },
}

pub async fn connect(config: &Config) -> Result<Arc<dyn Store>> {
    Ok(devops_store::connect(&ConnectOptions {
        url: config.store_url(),
        max_connections: config.store.max_connections.min(4),
        connect_timeout: Duration::from_secs(config.store.connect_timeout_secs),
    })
    .await?)
}

pub async fn migrate(config: &Config) -> Result<()> {
    let store = connect(config).await?;
    store.migrate().await?;
    println!("migrations applied to {}", devops_config::redact_url(&config.store_url()));
    Ok(())
}

pub async fn resolve_tenant(store: &dyn Store, name_or_id: &str) -> Result<Tenant> {
    if let Ok(id) = name_or_id.parse() {
        return Ok(store.get_tenant(TenantId(id)).await?);
    }
    store.find_tenant_by_name(name_or_id).await?.ok_or(Error::Store(devops_store::Error::NotFound("tenant")))
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

pub async fn tenant(config: &Config, command: TenantCommand) -> Result<()> {
    let store = connect(config).await?;
    store.check_schema().await?;
    match command {
        TenantCommand::Create { name } => print_json(&store.create_tenant(&name).await?),
        TenantCommand::List => {
            let mut after = None;
            loop {
                let page = store.list_tenants(Page { after, limit: Page::MAX_LIMIT }).await?;
                for tenant in &page {
                    println!("{}\t{}\t{}", tenant.id, tenant.name, tenant.created_at.to_rfc3339());
                }
                match page.last() {
                    Some(last) if page.len() == Page::MAX_LIMIT as usize => after = Some(last.id.0),
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

/// Creates a key and records it in the tenant's audit log as an operator action.
pub async fn create_key(
    store: &dyn Store,
    tenant: TenantId,
    name: &str,
    scopes: Vec<Scope>,
    expires_in_days: Option<u32>,
) -> Result<(ApiKeySecret, devops_models::ApiKey)> {
    let expires_at = expires_in_days.map(|days| Utc::now() + chrono::Duration::days(i64::from(days)));
    let (secret, record) = ApiKeySecret::generate(name, scopes, expires_at);
    let key = store.create_api_key(tenant, &record).await?;
    store
        .append_audit(
            tenant,
            &NewAuditEntry {
                actor_key_id: None,
                action: "api_key.create".into(),
                target: Some(format!("api_key:{}", key.id)),
                outcome: AuditOutcome::Success,
                duration_ms: 0,
                detail: serde_json::json!({ "via": "cli" }),
            },
        )
        .await?;
    Ok((secret, key))
}

pub async fn key(config: &Config, command: KeyCommand) -> Result<()> {
    let store = connect(config).await?;
    store.check_schema().await?;
    match command {
        KeyCommand::Create { tenant, name, scopes, expires_in_days } => {
            let tenant = resolve_tenant(store.as_ref(), &tenant).await?;
            let (secret, key) = create_key(store.as_ref(), tenant.id, &name, scopes, expires_in_days).await?;
            eprintln!("key {} created for tenant {}; the secret below is shown only once", key.id, tenant.name);
            println!("{}", secret.expose());
        }
        KeyCommand::Revoke { tenant, id } => {
            let tenant = resolve_tenant(store.as_ref(), &tenant).await?;
            let key = store.revoke_api_key(tenant.id, id, Utc::now()).await?;
            // Evict it from a shared (Redis) cache; an in-process one expires it soon.
            let cache = devops_runtime::Backends::connect(config, &[devops_runtime::Backend::Cache], &[]).await?;
            cache.cache()?.delete(&devops_runtime::auth::cache_key(&key.prefix)).await?;
            print_json(&key);
        }
    }
    Ok(())
}
