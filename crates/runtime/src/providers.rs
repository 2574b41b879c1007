//! Wiring for the hosted providers: the SSRF policy, the data key that
//! seals connection credentials, and the factory every service that
//! reaches a code host uses.

use std::sync::Arc;
use std::time::Duration;

use devops_adapters::secrets::{SecretValue, Secrets};
use devops_config::Config;
use devops_git::UrlPolicy;
use devops_providers::http::ClientSettings;
use devops_providers::{Connections, Hosts, LocalGitHost, Sealer};
use devops_store::Store;

use crate::Result;

/// Which repository and API URLs may be reached (the SSRF guard).
pub fn url_policy(config: &Config) -> Arc<UrlPolicy> {
    Arc::new(UrlPolicy {
        allowed_hosts: config.indexer.allowed_hosts.clone(),
        allowed_local_paths: config.indexer.allowed_local_paths.iter().map(Into::into).collect(),
    })
}

fn client_settings(config: &Config) -> ClientSettings {
    let providers = &config.providers;
    ClientSettings {
        timeout: Duration::from_secs(providers.timeout_secs),
        max_retries: providers.max_retries,
        max_rate_limit_wait: Duration::from_secs(providers.max_rate_limit_wait_secs),
        ..ClientSettings::default()
    }
}

/// The data key, created on first use when the secret store has none.
async fn sealer(config: &Config, secrets: &dyn Secrets) -> Result<Sealer> {
    let name = &config.providers.data_key_secret;
    if let Some(key) = secrets.get(name).await? {
        return Ok(Sealer::from_hex(key.expose())?);
    }
    let candidate = hex::encode(rand::random::<[u8; 32]>());
    if secrets.create(name, &SecretValue::new(candidate)).await? {
        tracing::info!(secret = name.as_str(), "created the data key for provider credentials");
    }
    // Of processes starting together, one created it; all use that one.
    let stored = secrets.get(name).await?.ok_or(crate::Error::MissingBackend("secrets"))?;
    Ok(Sealer::from_hex(stored.expose())?)
}

pub async fn connections(config: &Config, store: &Arc<dyn Store>, secrets: &dyn Secrets) -> Result<Connections> {
    let sealer = Arc::new(sealer(config, secrets).await?);
    Ok(Connections::new(store.connections(), sealer, url_policy(config)))
}

/// Local repositories, and hosted ones through the tenants' connections.
pub async fn hosts(config: &Config, store: &Arc<dyn Store>, secrets: &dyn Secrets) -> Result<Hosts> {
    Ok(hosts_with(config, store, connections(config, store, secrets).await?))
}

/// The same, over connections the caller already holds.
pub fn hosts_with(config: &Config, store: &Arc<dyn Store>, connections: Connections) -> Hosts {
    let local = LocalGitHost::new(store.as_ref(), url_policy(config));
    Hosts::new(local).with_connections(connections, client_settings(config))
}
