//! Provider connections and the factory that turns one into a provider.
//!
//! A connection is a tenant's account on a code host: the host kind, its
//! API and web URLs (self-hosted instances have their own), and the
//! credentials. Credentials are sealed with AES-256-GCM under the data key
//! ([`Sealer`]) before the store sees them, bound to the tenant (as
//! associated data) so a sealed value cannot be moved to another tenant,
//! and opened only here, when a provider is built. They are never returned
//! by the API and never logged.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use chrono::{DateTime, Utc};
use devops_git::UrlPolicy;
use devops_models::TenantId;
use devops_store::{ConnectionRecord, ConnectionStore, NewConnectionRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use url::Url;
use uuid::Uuid;

use crate::github::{GitHub, GitHubAuth};
use crate::gitlab::GitLab;
use crate::http::{ClientSettings, check_base_url};
use crate::{CloudProvider, Error, LocalGitHost, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Github,
    Gitlab,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Github => "github",
            ProviderKind::Gitlab => "gitlab",
        }
    }

    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "github" => Ok(ProviderKind::Github),
            "gitlab" => Ok(ProviderKind::Gitlab),
            other => Err(Error::Invalid(format!("unknown provider {other:?}; use github or gitlab"))),
        }
    }

    fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Github => crate::github::DEFAULT_BASE_URL,
            ProviderKind::Gitlab => crate::gitlab::DEFAULT_BASE_URL,
        }
    }

    /// Where repositories are browsed, from the API's URL:
    /// api.github.com → github.com; `…/api/v3` and `…/api/v4` are dropped.
    fn default_web_url(self, base: &Url) -> String {
        if base.host_str() == Some("api.github.com") {
            return "https://github.com".into();
        }
        let path = base.path().trim_end_matches('/');
        let path = path.strip_suffix("/api/v3").or_else(|| path.strip_suffix("/api/v4")).unwrap_or(path);
        format!("{}{}", base.origin().ascii_serialization(), path)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// A personal (or project, group) access token.
    Token,
    /// A GitHub App installation.
    GithubApp,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Token => "token",
            AuthKind::GithubApp => "github_app",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "token" => Ok(AuthKind::Token),
            "github_app" => Ok(AuthKind::GithubApp),
            other => Err(Error::Sealed(format!("unknown auth kind {other:?}"))),
        }
    }
}

/// What a connection authenticates with. Never serialised outward: the
/// API takes it, seals it and returns only [`Connection`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionCredentials {
    Token {
        #[schema(min_length = 1, max_length = 4096, pattern = "^[\\x21-\\x7e]+$")]
        token: String,
    },
    GithubApp {
        #[schema(min_length = 1, max_length = 64, pattern = "^[\\x21-\\x7e]+$")]
        app_id: String,
        #[serde(deserialize_with = "whole_number")]
        #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
        installation_id: u64,
        /// The app's private key, PEM. Checked when first used.
        #[schema(min_length = 1, max_length = 16384)]
        private_key_pem: String,
    },
}

impl std::fmt::Debug for ConnectionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionCredentials::Token { .. } => f.write_str("Token(<redacted>)"),
            ConnectionCredentials::GithubApp { app_id, installation_id, .. } => {
                write!(f, "GithubApp {{ app_id: {app_id}, installation_id: {installation_id}, key: <redacted> }}")
            }
        }
    }
}

impl ConnectionCredentials {
    pub fn auth_kind(&self) -> AuthKind {
        match self {
            ConnectionCredentials::Token { .. } => AuthKind::Token,
            ConnectionCredentials::GithubApp { .. } => AuthKind::GithubApp,
        }
    }

    fn check(&self, provider: ProviderKind) -> Result<()> {
        match self {
            ConnectionCredentials::Token { token } => {
                if token.is_empty() || token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::Invalid("the token must be 1-4096 printable ASCII characters".into()));
                }
            }
            ConnectionCredentials::GithubApp { app_id, private_key_pem, .. } => {
                if provider != ProviderKind::Github {
                    return Err(Error::Invalid("GitHub App credentials are for github connections".into()));
                }
                if app_id.is_empty() || app_id.len() > 64 || !app_id.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::Invalid("a GitHub App needs its app_id".into()));
                }
                if private_key_pem.is_empty() || private_key_pem.len() > 16384 {
                    return Err(Error::Invalid("the private key must be 1-16384 bytes of PEM".into()));
                }
            }
        }
        Ok(())
    }
}

/// A JSON integer, also when written `15223.0`.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    number
        .as_u64()
        .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or_else(|| serde::de::Error::custom("installation_id must be a whole number from 0 to 2^63-1"))
}

/// A connection as the API shows it: everything but the credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Connection {
    pub id: Uuid,
    pub name: String,
    pub provider: ProviderKind,
    /// The REST API's base URL.
    pub base_url: String,
    /// Where repositories live; repository URLs are matched against it.
    pub web_url: String,
    pub auth_kind: AuthKind,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<&ConnectionRecord> for Connection {
    type Error = Error;
    fn try_from(record: &ConnectionRecord) -> Result<Self> {
        Ok(Connection {
            id: record.id,
            name: record.name.clone(),
            provider: ProviderKind::parse(&record.provider)?,
            base_url: record.base_url.clone(),
            web_url: record.web_url.clone(),
            auth_kind: AuthKind::parse(&record.auth_kind)?,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewConnection {
    pub name: String,
    pub provider: ProviderKind,
    /// Defaults to the public host's API.
    pub base_url: Option<String>,
    /// Defaults from the base URL.
    pub web_url: Option<String>,
    pub credentials: ConnectionCredentials,
}

/// AES-256-GCM under one data key. A sealed value is the 12-byte random
/// nonce followed by the ciphertext and tag.
pub struct Sealer {
    key_id: String,
    key: LessSafeKey,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        let key_id = hex::encode(&Sha256::digest(key)[..8]);
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key is a valid AES-256 key");
        Self { key_id, key: LessSafeKey::new(unbound) }
    }

    /// The data key from its hex form (64 hex digits).
    pub fn from_hex(hex_key: &str) -> Result<Self> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| Error::Sealed("the data key is not hex".into()))?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| Error::Sealed("the data key must be 32 bytes (64 hex digits)".into()))?;
        Ok(Self::new(&key))
    }

    /// Which key sealed a value: a hash prefix, safe to store.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn seal(&self, associated: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(associated), &mut in_out)
            .expect("sealing a bounded buffer cannot fail");
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&in_out);
        sealed
    }

    pub fn open(&self, associated: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Sealed("sealed credentials are truncated".into()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Sealed("bad nonce".into()))?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(associated), &mut in_out)
            .map_err(|_| Error::Sealed("sealed credentials do not open with the data key".into()))?;
        Ok(plaintext.to_vec())
    }
}

/// Credentials are bound to their tenant and host kind.
fn associated_data(tenant: TenantId, provider: &str) -> Vec<u8> {
    format!("devops-mcp/connection/{tenant}/{provider}").into_bytes()
}

/// Manages connections: validation, sealing, the store.
#[derive(Clone)]
pub struct Connections {
    store: Arc<dyn ConnectionStore>,
    sealer: Arc<Sealer>,
    policy: Arc<UrlPolicy>,
}

impl Connections {
    pub fn new(store: Arc<dyn ConnectionStore>, sealer: Arc<Sealer>, policy: Arc<UrlPolicy>) -> Self {
        Self { store, sealer, policy }
    }

    pub async fn create(&self, tenant: TenantId, new: &NewConnection) -> Result<Connection> {
        let name = new.name.as_str();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::Invalid("a connection name must be 1-100 characters, none of them control".into()));
        }
        new.credentials.check(new.provider)?;
        let base = check_base_url(&self.policy, new.base_url.as_deref().unwrap_or(new.provider.default_base_url()))?;
        // Only matched against repository URLs, never contacted.
        let web_url = match &new.web_url {
            Some(web) => {
                let url = Url::parse(web).map_err(|err| Error::Invalid(format!("web URL {web:?}: {err}")))?;
                if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
                    return Err(Error::Invalid(format!("web URL {web:?} must be an http(s) URL with a host")));
                }
                url.as_str().trim_end_matches('/').to_owned()
            }
            None => new.provider.default_web_url(&base),
        };
        let record = NewConnectionRecord {
            name: name.to_owned(),
            provider: new.provider.as_str().into(),
            base_url: base.as_str().trim_end_matches('/').to_owned(),
            web_url,
            auth_kind: new.credentials.auth_kind().as_str().into(),
            sealed_credentials: self.seal(tenant, new.provider, &new.credentials),
            key_id: self.sealer.key_id().to_owned(),
        };
        let record = self.store.create_connection(tenant, &record).await?;
        Connection::try_from(&record)
    }

    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Connection> {
        Connection::try_from(&self.store.get_connection(tenant, id).await?)
    }

    pub async fn list(&self, tenant: TenantId) -> Result<Vec<Connection>> {
        self.store.list_connections(tenant).await?.iter().map(Connection::try_from).collect()
    }

    /// New credentials for a connection to `provider`'s host; a connection
    /// to another host is a conflict.
    pub async fn rotate(
        &self,
        tenant: TenantId,
        id: Uuid,
        provider: ProviderKind,
        credentials: &ConnectionCredentials,
    ) -> Result<Connection> {
        credentials.check(provider)?;
        let record = self.store.get_connection(tenant, id).await?;
        if record.provider != provider.as_str() {
            return Err(Error::Conflict(format!("connection {id} is a {} connection", record.provider)));
        }
        let sealed = self.seal(tenant, provider, credentials);
        let record = self
            .store
            .update_credentials(tenant, id, credentials.auth_kind().as_str(), &sealed, self.sealer.key_id())
            .await?;
        Connection::try_from(&record)
    }

    pub async fn delete(&self, tenant: TenantId, id: Uuid) -> Result<()> {
        Ok(self.store.delete_connection(tenant, id).await?)
    }

    fn seal(&self, tenant: TenantId, provider: ProviderKind, credentials: &ConnectionCredentials) -> Vec<u8> {
        let plaintext = serde_json::to_vec(credentials).expect("credentials serialise");
        self.sealer.seal(&associated_data(tenant, provider.as_str()), &plaintext)
    }

    fn open(&self, record: &ConnectionRecord) -> Result<ConnectionCredentials> {
        if record.key_id != self.sealer.key_id() {
            return Err(Error::Sealed(format!(
                "connection {} was sealed with data key {}, not the current one; rotate its credentials",
                record.name, record.key_id
            )));
        }
        let plaintext =
            self.sealer.open(&associated_data(record.tenant_id, &record.provider), &record.sealed_credentials)?;
        serde_json::from_slice(&plaintext).map_err(|err| Error::Sealed(err.to_string()))
    }
}

/// A connection as of one change: a rotation makes a new provider.
type Revision = (Uuid, DateTime<Utc>);

/// The factory: the provider serving a tenant's repository, one instance
/// per connection revision (a GitHub App's token cache lives in it).
#[derive(Clone)]
pub struct Hosts {
    local: Arc<LocalGitHost>,
    connections: Option<Connections>,
    settings: ClientSettings,
    built: Arc<Mutex<HashMap<Revision, Arc<dyn CloudProvider>>>>,
}

impl Hosts {
    /// Local repositories only.
    pub fn new(local: LocalGitHost) -> Self {
        Self { local: Arc::new(local), connections: None, settings: ClientSettings::default(), built: Arc::default() }
    }

    /// Hosted repositories through the tenant's connections as well.
    pub fn with_connections(mut self, connections: Connections, settings: ClientSettings) -> Self {
        self.connections = Some(connections);
        self.settings = settings;
        self
    }

    /// The provider of `repository_url` for `tenant`: the local host for a
    /// path or `file://` URL, else the tenant's connection whose web URL
    /// the repository is under.
    pub async fn for_repository(&self, tenant: TenantId, repository_url: &str) -> Result<Arc<dyn CloudProvider>> {
        if LocalGitHost::serves(repository_url) {
            return Ok(self.local.clone());
        }
        let Some(connections) = &self.connections else {
            return Err(Error::Unsupported(format!(
                "{repository_url} is on a hosted provider, and this service has no provider connections configured"
            )));
        };
        let records = connections.store.list_connections(tenant).await?;
        let record = records.iter().find(|r| serves(&r.web_url, repository_url)).ok_or_else(|| {
            Error::NotFound(format!(
                "no provider connection of this tenant serves {repository_url}; add one with POST /api/v1/connections"
            ))
        })?;
        self.build(connections, record).await
    }

    /// The `Authorization` for fetching `repository_url` over https: the
    /// serving connection's token, or `None` (a public fetch) when no
    /// connection serves it.
    pub async fn git_authorization(
        &self,
        tenant: TenantId,
        repository_url: &str,
    ) -> Result<Option<devops_git::HttpAuthorization>> {
        if LocalGitHost::serves(repository_url) || self.connections.is_none() {
            return Ok(None);
        }
        let provider = match self.for_repository(tenant, repository_url).await {
            Ok(provider) => provider,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(err) => return Err(err),
        };
        let credentials = provider.git_credentials(tenant).await?;
        Ok(credentials.map(|c| devops_git::HttpAuthorization::basic(&c.username, &c.password)))
    }

    /// The provider of one connection.
    pub async fn for_connection(&self, tenant: TenantId, id: Uuid) -> Result<Arc<dyn CloudProvider>> {
        let Some(connections) = &self.connections else {
            return Err(Error::Unsupported("this service has no provider connections configured".into()));
        };
        let record = connections.store.get_connection(tenant, id).await?;
        self.build(connections, &record).await
    }

    async fn build(&self, connections: &Connections, record: &ConnectionRecord) -> Result<Arc<dyn CloudProvider>> {
        let key = (record.id, record.updated_at);
        let mut built = self.built.lock().await;
        if let Some(provider) = built.get(&key) {
            return Ok(provider.clone());
        }
        let credentials = connections.open(record)?;
        let policy = &connections.policy;
        let provider: Arc<dyn CloudProvider> = match (ProviderKind::parse(&record.provider)?, credentials) {
            (ProviderKind::Github, ConnectionCredentials::Token { token }) => {
                Arc::new(GitHub::new(&record.base_url, GitHubAuth::Token(token), policy, self.settings.clone())?)
            }
            (ProviderKind::Github, ConnectionCredentials::GithubApp { app_id, installation_id, private_key_pem }) => {
                let auth = GitHubAuth::App { app_id, private_key_pem, installation_id };
                Arc::new(GitHub::new(&record.base_url, auth, policy, self.settings.clone())?)
            }
            (ProviderKind::Gitlab, ConnectionCredentials::Token { token }) => {
                Arc::new(GitLab::new(&record.base_url, &record.web_url, token, policy, self.settings.clone())?)
            }
            (ProviderKind::Gitlab, ConnectionCredentials::GithubApp { .. }) => {
                return Err(Error::Sealed("a gitlab connection holds GitHub App credentials".into()));
            }
        };
        // Older revisions of this connection are dropped.
        built.retain(|(id, _), _| *id != record.id);
        built.insert(key, provider.clone());
        Ok(provider)
    }
}

/// Whether `repository_url` (https or ssh) lives under `web_url`: same host,
/// and under its path.
fn serves(web_url: &str, repository_url: &str) -> bool {
    let Ok(web) = Url::parse(web_url) else { return false };
    let (host, path) = match Url::parse(repository_url) {
        Ok(url) => (url.host_str().map(str::to_ascii_lowercase), url.path().to_owned()),
        Err(_) => match repository_url.split_once(':').and_then(|(user_host, path)| {
            user_host.split_once('@').map(|(_, host)| (host.to_ascii_lowercase(), format!("/{path}")))
        }) {
            Some((host, path)) => (Some(host), path),
            None => return false,
        },
    };
    let prefix = web.path().trim_end_matches('/');
    host.as_deref() == web.host_str().map(str::to_ascii_lowercase).as_deref()
        && (prefix.is_empty() || path.starts_with(&format!("{prefix}/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_credentials_open_only_with_the_same_key_and_tenant() {
        let sealer = Sealer::new(&[7u8; 32]);
        let a = associated_data(TenantId(Uuid::now_v7()), "github");
        let b = associated_data(TenantId(Uuid::now_v7()), "github");
        let sealed = sealer.seal(&a, b"ghp_secret");
        assert!(!sealed.windows(10).any(|w| w == b"ghp_secret"), "no plaintext in the sealed value");
        assert_eq!(sealer.open(&a, &sealed).expect("test value"), b"ghp_secret");
        assert!(sealer.open(&b, &sealed).is_err(), "bound to its tenant");
        assert!(Sealer::new(&[8u8; 32]).open(&a, &sealed).is_err(), "and to its key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().expect("test value") ^= 1;
        assert!(sealer.open(&a, &tampered).is_err());
        assert_ne!(sealer.seal(&a, b"x"), sealer.seal(&a, b"x"), "fresh nonce each time");
    }

    #[test]
    fn credentials_never_print() {
        let token = ConnectionCredentials::Token { token: "glpat-abcdef".into() };
        assert!(!format!("{token:?}").contains("glpat"));
    }

    #[test]
    fn repositories_are_matched_to_a_connections_web_url() {
        assert!(serves("https://github.com", "https://github.com/octo/hello.git"));
        assert!(serves("https://github.com", "git@github.com:octo/hello.git"));
        assert!(!serves("https://github.com", "https://gitlab.com/octo/hello.git"));
        assert!(serves("https://git.example.com/gitlab", "https://git.example.com/gitlab/group/app.git"));
        assert!(!serves("https://git.example.com/gitlab", "https://git.example.com/other/app.git"));
    }

    #[test]
    fn web_urls_default_from_the_api_url() {
        let web = |kind: ProviderKind, base: &str| kind.default_web_url(&Url::parse(base).expect("test value"));
        assert_eq!(web(ProviderKind::Github, "https://api.github.com"), "https://github.com");
        assert_eq!(web(ProviderKind::Github, "https://ghe.example.com/api/v3"), "https://ghe.example.com");
        assert_eq!(web(ProviderKind::Gitlab, "https://gitlab.com/api/v4"), "https://gitlab.com");
        assert_eq!(
            web(ProviderKind::Gitlab, "https://git.example.com/gitlab/api/v4/"),
            "https://git.example.com/gitlab"
        );
    }
}
