//! Configuration for every service, read once at start-up.
//!
//! Layers, each overriding the previous: built-in defaults (the embedded
//! back ends, usable with no external service) → a TOML file →
//! `DEVOPS_MCP__SECTION__KEY` environment variables → `--set key=value` CLI
//! overrides. Then [`Config::validate`]. Unknown keys are reported as
//! warnings, not errors, because config files and binaries roll back on
//! different schedules.
//!
//! Nothing here reads the process environment: callers pass it in, so tests
//! build configurations directly.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "DEVOPS_MCP__";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid override {0:?}: expected key=value")]
    Override(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Allows insecure settings (auth disabled). Set by `--dev` only.
    #[serde(skip)]
    pub dev: bool,
    /// Where the embedded back ends keep their files.
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    pub queue: QueueConfig,
    pub blob: BlobConfig,
    pub cache: CacheConfig,
    pub secrets: SecretsConfig,
    pub aws: AwsConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub services: ServicesConfig,
    pub worker: WorkerConfig,
    pub mcp: McpConfig,
    pub indexer: IndexerConfig,
    pub reviewer: ReviewerConfig,
    pub providers: ProvidersConfig,
    pub telemetry: TelemetryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dev: false,
            data_dir: PathBuf::from(".data"),
            store: StoreConfig::default(),
            queue: QueueConfig::default(),
            blob: BlobConfig::default(),
            cache: CacheConfig::default(),
            secrets: SecretsConfig::default(),
            aws: AwsConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            services: ServicesConfig::default(),
            worker: WorkerConfig::default(),
            mcp: McpConfig::default(),
            indexer: IndexerConfig::default(),
            reviewer: ReviewerConfig::default(),
            providers: ProvidersConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// `postgres://…` for production; `sqlite://…` (or empty: `<data_dir>/devops-mcp.db`) embedded.
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { url: String::new(), max_connections: 10, connect_timeout_secs: 5 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// Durable SQLite-backed queue in the data directory.
    Local,
    Sqs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueConfig {
    pub kind: QueueKind,
    /// Queue name; its dead-letter queue is `<name>-dlq`.
    pub name: String,
    /// A message received this many times without acknowledgement moves to the DLQ.
    pub max_receives: u32,
    pub visibility_timeout_secs: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { kind: QueueKind::Local, name: "devops-mcp-events".into(), max_receives: 5, visibility_timeout_secs: 30 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    Local,
    S3,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlobConfig {
    pub kind: BlobKind,
    pub bucket: String,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self { kind: BlobKind::Local, bucket: String::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    Memory,
    Redis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    pub kind: CacheKind,
    pub url: String,
    pub pool_size: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { kind: CacheKind::Memory, url: String::new(), pool_size: 16 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretsKind {
    /// Files in `<data_dir>/secrets`, overlaid by `DEVOPS_MCP_SECRET_<NAME>` variables.
    File,
    Aws,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretsConfig {
    pub kind: SecretsKind,
    /// Prepended to every secret name, e.g. `prod/devops-mcp/`.
    pub prefix: String,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self { kind: SecretsKind::File, prefix: String::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AwsConfig {
    pub region: String,
    /// Overrides the endpoint of every AWS client (LocalStack, moto).
    pub endpoint_url: String,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self { region: "us-east-1".into(), endpoint_url: String::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AuthConfig {
    /// Serve without authentication. Refused unless `--dev`.
    pub disabled: bool,
    /// OAuth 2.1 authorization servers (issuer URLs) that mint tokens for
    /// this resource, published in the RFC 9728 metadata.
    pub authorization_servers: Vec<String>,
    /// The public base URL of the MCP server (`https://mcp.example.com`);
    /// empty means the request's own scheme-less Host, served as http.
    pub public_url: String,
    /// JWTs from an identity provider, accepted beside API keys.
    pub jwt: JwtConfig,
}

/// Bearer JWTs validated against a JWKS. Off while `jwks_url` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JwtConfig {
    pub jwks_url: String,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Claim naming the tenant, by id or name.
    pub tenant_claim: String,
    /// Claim holding the scopes, space-separated or an array.
    pub scopes_claim: String,
    pub leeway_secs: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            jwks_url: String::new(),
            issuer: String::new(),
            audience: String::new(),
            tenant_claim: "tenant".into(),
            scopes_claim: "scope".into(),
            leeway_secs: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    pub max_request_body_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { max_request_body_bytes: 1024 * 1024 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServicesConfig {
    pub mcp_server: ServiceConfig,
    pub rest_api: ServiceConfig,
    pub worker: ServiceConfig,
    pub indexer: ServiceConfig,
    pub pr_manager: ServiceConfig,
    pub reviewer: ServiceConfig,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            mcp_server: ServiceConfig::on_port(8080),
            rest_api: ServiceConfig::on_port(8081),
            worker: ServiceConfig::on_port(8082),
            indexer: ServiceConfig::on_port(50051),
            pr_manager: ServiceConfig::on_port(50052),
            reviewer: ServiceConfig::on_port(50053),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceConfig {
    /// Address the service binds. gRPC services serve gRPC and their HTTP
    /// health and metrics endpoints on this one port.
    pub listen: SocketAddr,
    /// How other services reach it; empty means `http://<listen>`.
    pub url: String,
}

impl ServiceConfig {
    fn on_port(port: u16) -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], port)), url: String::new() }
    }

    pub fn url(&self) -> String {
        if self.url.is_empty() { format!("http://{}", self.listen) } else { self.url.clone() }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self::on_port(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerConfig {
    /// Events handled at once.
    pub concurrency: usize,
    /// Long-poll wait of one receive.
    pub receive_wait_secs: u64,
    /// Consecutive retry-safe failures of a downstream that open its circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit holds messages back before one trial call.
    pub breaker_cooldown_secs: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self { concurrency: 8, receive_wait_secs: 2, breaker_threshold: 5, breaker_cooldown_secs: 30 }
    }
}

/// Hosted code providers (GitHub, GitLab) reached through tenants'
/// connections. Which hosts may be private addresses is
/// `indexer.allowed_hosts`, shared with repository fetches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProvidersConfig {
    /// The secret holding the data key (64 hex digits) that seals
    /// connection credentials. Created on first use when missing; in
    /// production, create it ahead so that replicas never race to.
    pub data_key_secret: String,
    /// One call to a provider, first byte to last.
    pub timeout_secs: u64,
    /// Retries after a rate limit, or a 502-504 or transport error on an
    /// idempotent call.
    pub max_retries: u32,
    /// Longest rate-limit wait; a later reset is reported as `rate_limited`.
    pub max_rate_limit_wait_secs: u64,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        Self {
            data_key_secret: "devops-mcp/data-key".into(),
            timeout_secs: 30,
            max_retries: 3,
            max_rate_limit_wait_secs: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewerConfig {
    /// Larger diffs are refused rather than half-reviewed.
    pub max_diff_bytes: usize,
    /// Inline comments in one posted review; the rest go to its summary.
    pub max_inline_comments: usize,
    /// Regular expressions for values that are never reported as secrets
    /// (a team's own test fixtures, say).
    pub secret_allowlist: Vec<String>,
    /// The optional LLM pass: an OpenAI-compatible endpoint's base URL
    /// (empty: off) and model; the key comes from `DEVOPS_MCP_LLM_API_KEY`.
    pub llm_url: String,
    pub llm_model: String,
    /// The pass is skipped when the endpoint takes longer.
    pub llm_timeout_secs: u64,
    /// Budget: bytes of diff sent, and tokens asked for.
    pub llm_max_diff_bytes: usize,
    pub llm_max_tokens: u32,
}

impl Default for ReviewerConfig {
    fn default() -> Self {
        Self {
            max_diff_bytes: 4 << 20,
            max_inline_comments: 10,
            secret_allowlist: Vec::new(),
            llm_url: String::new(),
            llm_model: String::new(),
            llm_timeout_secs: 20,
            llm_max_diff_bytes: 64 << 10,
            llm_max_tokens: 1000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct McpConfig {
    /// Host header values `/mcp` accepts (DNS-rebinding protection). An
    /// entry without a port matches any port.
    pub allowed_hosts: Vec<String>,
    /// Browser origins `/mcp` and `/ws` accept, as `scheme://host[:port]`;
    /// `:*` matches any port, and so (as for hosts) does an entry without
    /// one; `null` matches `Origin: null`. A request with no `Origin` (any
    /// client but a browser) passes; one with an origin not listed gets 403.
    pub allowed_origins: Vec<String>,
    /// Serve without sessions, so any replica can answer any request.
    pub stateless: bool,
    /// How long a session can be restored on another replica after it was
    /// opened (its state lives in the cache). Later the client gets a 404
    /// and initializes again, as the protocol prescribes.
    pub session_ttl_secs: u64,
    /// Text of one tool result above this is truncated, with a marker and a
    /// continuation cursor.
    pub max_output_bytes: usize,
    /// Serve tools marked destructive (e.g. `delete_context`).
    pub destructive_tools: bool,
    /// Serve the MCP conformance suite's fixture tools, resources and
    /// prompts. For test deployments; needs `--dev`.
    pub conformance_fixtures: bool,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: ["http", "https"]
                .into_iter()
                .flat_map(|scheme| ["localhost", "127.0.0.1", "[::1]"].map(|host| format!("{scheme}://{host}:*")))
                .collect(),
            stateless: false,
            session_ttl_secs: 24 * 60 * 60,
            max_output_bytes: 64 * 1024,
            destructive_tools: true,
            conformance_fixtures: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderKind {
    /// Built in: feature hashing, no network, no model download.
    Hash,
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    Openai,
    /// all-MiniLM-L6-v2 on the CPU, from `indexer.model_dir`.
    Minilm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexerConfig {
    /// Where repositories are fetched; empty means `<data_dir>/repos`.
    pub cache_dir: String,
    /// Hosts that may resolve to private or loopback addresses (a
    /// self-hosted forge inside the VPC). Everything else must be public.
    pub allowed_hosts: Vec<String>,
    /// Directories whose repositories may be indexed by path or `file://`
    /// URL. Empty: no local repositories.
    pub allowed_local_paths: Vec<String>,
    /// A fetch that grows the cache past this is stopped.
    pub max_repo_bytes: u64,
    /// Larger files are skipped and reported.
    pub max_file_bytes: u64,
    pub fetch_timeout_secs: u64,
    /// Private key for ssh fetches; empty uses the process user's keys.
    pub ssh_identity_file: String,
    /// CA certificates (PEM) for https forges with a private CA; empty uses
    /// the system's.
    pub ca_file: String,
    /// Known host keys for ssh; when set, unknown host keys are refused.
    /// Empty trusts a host key on first use and records it.
    pub ssh_known_hosts_file: String,
    /// Budget of one chunk, in bytes.
    pub max_chunk_bytes: usize,
    pub embedder: EmbedderKind,
    /// For `embedder = "openai"`: base URL and model; the key comes from
    /// the `DEVOPS_MCP_EMBEDDINGS_API_KEY` environment variable.
    pub embeddings_url: String,
    pub embeddings_model: String,
    /// For `embedder = "minilm"`: the directory holding `config.json`,
    /// `tokenizer.json` and `model.safetensors`.
    pub model_dir: String,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        Self {
            cache_dir: String::new(),
            allowed_hosts: Vec::new(),
            allowed_local_paths: Vec::new(),
            max_repo_bytes: 2 << 30,
            max_file_bytes: 1 << 20,
            fetch_timeout_secs: 600,
            ssh_identity_file: String::new(),
            ssh_known_hosts_file: String::new(),
            ca_file: String::new(),
            max_chunk_bytes: 3000,
            embedder: EmbedderKind::Hash,
            embeddings_url: String::new(),
            embeddings_model: String::new(),
            model_dir: String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// `tracing` filter directive; `RUST_LOG` wins when set.
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { log_format: LogFormat::Json, log_level: "info".into() }
    }
}

/// Everything a configuration is built from, gathered by the binary.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// The process environment (or a test's stand-in); only `DEVOPS_MCP__` keys are read.
    pub env: Vec<(String, String)>,
    /// `key.path=value` overrides from the command line.
    pub overrides: Vec<String>,
    pub dev: bool,
}

/// A loaded configuration and the keys that matched no setting.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub unknown_keys: Vec<String>,
}

impl Config {
    /// Builds and validates a configuration from its layers.
    pub fn load(sources: &Sources) -> Result<Loaded, Error> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &sources.file {
            if !path.is_file() {
                return Err(Error::File { path: path.clone(), reason: "no such file".into() });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        for (key, value) in &sources.env {
            if let Some(rest) = key.strip_prefix(ENV_PREFIX) {
                let path = rest.split("__").map(str::to_ascii_lowercase).collect::<Vec<_>>().join(".");
                figment = figment.merge(Serialized::global(&path, scalar(value)));
            }
        }
        for item in &sources.overrides {
            let (path, value) = item.split_once('=').ok_or_else(|| Error::Override(item.clone()))?;
            figment = figment.merge(Serialized::global(path.trim(), scalar(value.trim())));
        }
        let unknown_keys = unknown_keys(&figment)?;
        let mut config: Config = figment.extract().map_err(|err| Error::Parse(err.to_string()))?;
        config.dev = sources.dev;
        config.validate()?;
        Ok(Loaded { config, unknown_keys })
    }

    /// Rejects configurations that cannot work or are insecure without `--dev`.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |msg: String| Err(Error::Invalid(msg));
        if self.auth.disabled && !self.dev {
            return invalid("auth.disabled = true is insecure and needs --dev".into());
        }
        if self.mcp.conformance_fixtures && !self.dev {
            return invalid("mcp.conformance_fixtures = true serves test fixtures and needs --dev".into());
        }
        let store_url = self.store_url();
        if !(store_url.starts_with("postgres://")
            || store_url.starts_with("postgresql://")
            || store_url.starts_with("sqlite:"))
        {
            return invalid(format!(
                "store.url must start with postgres:// or sqlite:, got {:?}",
                redact_url(&store_url)
            ));
        }
        if self.store.max_connections == 0 {
            return invalid("store.max_connections must be at least 1".into());
        }
        if self.queue.name.is_empty() || self.queue.name.len() > 75 {
            return invalid("queue.name must be 1-75 characters (SQS limit, leaving room for -dlq)".into());
        }
        if !self.queue.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return invalid("queue.name may only hold letters, digits, '-' and '_'".into());
        }
        if self.queue.max_receives == 0 {
            return invalid("queue.max_receives must be at least 1".into());
        }
        if !(1..=43_200).contains(&self.queue.visibility_timeout_secs) {
            return invalid("queue.visibility_timeout_secs must be between 1 and 43200".into());
        }
        if self.indexer.embedder == EmbedderKind::Openai
            && (self.indexer.embeddings_url.is_empty() || self.indexer.embeddings_model.is_empty())
        {
            return invalid(
                "indexer.embeddings_url and indexer.embeddings_model are required for embedder = \"openai\"".into(),
            );
        }
        if !self.reviewer.llm_url.is_empty() && self.reviewer.llm_model.is_empty() {
            return invalid("reviewer.llm_model is required when reviewer.llm_url is set".into());
        }
        if self.indexer.embedder == EmbedderKind::Minilm && self.indexer.model_dir.is_empty() {
            return invalid("indexer.model_dir is required for embedder = \"minilm\"".into());
        }
        if self.indexer.max_chunk_bytes < 256 || self.indexer.max_file_bytes == 0 {
            return invalid("indexer.max_chunk_bytes must be at least 256 and indexer.max_file_bytes positive".into());
        }
        if self.blob.kind == BlobKind::S3 && self.blob.bucket.is_empty() {
            return invalid("blob.bucket is required when blob.kind = \"s3\"".into());
        }
        if self.cache.kind == CacheKind::Redis
            && !(self.cache.url.starts_with("redis://") || self.cache.url.starts_with("rediss://"))
        {
            return invalid("cache.url must be a redis:// or rediss:// URL when cache.kind = \"redis\"".into());
        }
        if self.cache.pool_size == 0 {
            return invalid("cache.pool_size must be at least 1".into());
        }
        let jwt = &self.auth.jwt;
        if !jwt.jwks_url.is_empty()
            && (url::Url::parse(&jwt.jwks_url).is_err() || jwt.issuer.is_empty() || jwt.audience.is_empty())
        {
            return invalid("auth.jwt needs a jwks_url URL, an issuer and an audience".into());
        }
        if !self.auth.public_url.is_empty() && url::Url::parse(&self.auth.public_url).is_err() {
            return invalid(format!("auth.public_url is not a URL: {:?}", self.auth.public_url));
        }
        if let Some(bad) = self.auth.authorization_servers.iter().find(|s| url::Url::parse(s).is_err()) {
            return invalid(format!("auth.authorization_servers holds a value that is not a URL: {bad:?}"));
        }
        if !self.aws.endpoint_url.is_empty() && url::Url::parse(&self.aws.endpoint_url).is_err() {
            return invalid(format!("aws.endpoint_url is not a URL: {:?}", self.aws.endpoint_url));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.mcp.max_output_bytes) {
            return invalid("mcp.max_output_bytes must be between 1024 and 16777216".into());
        }
        if !(1..=256).contains(&self.worker.concurrency) {
            return invalid("worker.concurrency must be between 1 and 256".into());
        }
        if !(0..=20).contains(&self.worker.receive_wait_secs) {
            return invalid("worker.receive_wait_secs must be between 0 and 20".into());
        }
        if self.limits.max_request_body_bytes < 1024 {
            return invalid("limits.max_request_body_bytes must be at least 1024".into());
        }
        Ok(())
    }

    /// The store URL, defaulting to a SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        if self.store.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("devops-mcp.db").display())
        } else {
            self.store.url.clone()
        }
    }

    pub fn queue_db_path(&self) -> PathBuf {
        self.data_dir.join("queue.db")
    }

    pub fn repo_cache_dir(&self) -> PathBuf {
        if self.indexer.cache_dir.is_empty() {
            self.data_dir.join("repos")
        } else {
            PathBuf::from(&self.indexer.cache_dir)
        }
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }

    pub fn secrets_dir(&self) -> PathBuf {
        self.data_dir.join("secrets")
    }

    /// Whether every back end is embedded, i.e. the fleet needs no external service.
    pub fn is_embedded(&self) -> bool {
        self.store_url().starts_with("sqlite:")
            && self.queue.kind == QueueKind::Local
            && self.blob.kind == BlobKind::Local
            && self.cache.kind == CacheKind::Memory
            && self.secrets.kind == SecretsKind::File
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Hides the password of a URL before it is shown anywhere.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// Environment and CLI values are strings; numbers and booleans are
/// recognised so that `DEVOPS_MCP__QUEUE__MAX_RECEIVES=3` works.
/// An override's value: a bool, an integer, a JSON list (`["a","b"]`) or a string.
fn scalar(raw: &str) -> serde_json::Value {
    if raw.starts_with('[')
        && let Ok(list @ serde_json::Value::Array(_)) = serde_json::from_str(raw)
    {
        return list;
    }
    if let Ok(b) = raw.parse::<bool>() {
        return b.into();
    }
    if let Ok(n) = raw.parse::<i64>() {
        return n.into();
    }
    raw.into()
}

fn unknown_keys(figment: &Figment) -> Result<Vec<String>, Error> {
    let known = leaf_paths(&serde_json::to_value(Config::default()).map_err(|e| Error::Parse(e.to_string()))?);
    let given: serde_json::Value = figment.extract().map_err(|err| Error::Parse(err.to_string()))?;
    Ok(leaf_paths(&given)
        .into_iter()
        .filter(|path| !known.iter().any(|k| k == path || path.starts_with(&format!("{k}."))))
        .collect())
}

fn leaf_paths(value: &serde_json::Value) -> BTreeSet<String> {
    fn walk(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    walk(child, &path, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_embedded_and_valid() {
        let loaded = Config::load(&Sources::default()).expect("defaults load");
        assert!(loaded.config.is_embedded());
        assert!(loaded.unknown_keys.is_empty());
        assert!(loaded.config.store_url().ends_with(".data/devops-mcp.db"));
    }

    #[test]
    fn layers_override_in_order() {
        let mut file = tempfile::NamedTempFile::new().expect("tempfile");
        writeln!(
            file,
            "[queue]\nmax_receives = 7\nname = \"from-file\"\n[cache]\nkind = \"redis\"\nurl = \"redis://file\""
        )
        .expect("write");
        let sources = Sources {
            file: Some(file.path().to_path_buf()),
            env: env(&[
                ("DEVOPS_MCP__QUEUE__NAME", "from-env"),
                ("DEVOPS_MCP__QUEUE__MAX_RECEIVES", "3"),
                ("PATH", "/bin"),
            ]),
            overrides: vec!["queue.name=from-cli".into()],
            dev: false,
        };
        let config = Config::load(&sources).expect("load").config;
        assert_eq!(config.queue.name, "from-cli");
        assert_eq!(config.queue.max_receives, 3);
        assert_eq!(config.cache.url, "redis://file");
    }

    #[test]
    fn lists_can_be_overridden_as_json() {
        let sources = Sources {
            env: env(&[("DEVOPS_MCP__INDEXER__ALLOWED_HOSTS", r#"["git.internal"]"#)]),
            overrides: vec![r#"indexer.allowed_local_paths=["/srv/repos", "/tmp"]"#.into()],
            ..Sources::default()
        };
        let config = Config::load(&sources).expect("load").config;
        assert_eq!(config.indexer.allowed_hosts, ["git.internal"]);
        assert_eq!(config.indexer.allowed_local_paths, ["/srv/repos", "/tmp"]);
        let text = Sources { overrides: vec!["queue.name=[not-json".into()], ..Sources::default() };
        assert!(Config::load(&text).is_err(), "a string that is not a list still fails validation as a name");
    }

    #[test]
    fn unknown_keys_warn_instead_of_failing() {
        let sources = Sources { env: env(&[("DEVOPS_MCP__QUEUE__COLOUR", "blue")]), ..Sources::default() };
        let loaded = Config::load(&sources).expect("load");
        assert_eq!(loaded.unknown_keys, vec!["queue.colour".to_string()]);
    }

    #[test]
    fn insecure_settings_need_dev() {
        let mut sources = Sources { overrides: vec!["auth.disabled=true".into()], ..Sources::default() };
        let err = Config::load(&sources).expect_err("refused");
        assert!(err.to_string().contains("--dev"), "{err}");
        sources.dev = true;
        assert!(Config::load(&sources).expect("dev allows").config.auth.disabled);
        let fixtures = Sources { overrides: vec!["mcp.conformance_fixtures=true".into()], ..Sources::default() };
        assert!(Config::load(&fixtures).expect_err("fixtures need --dev").to_string().contains("--dev"));
    }

    #[test]
    fn bad_values_are_clear_errors() {
        for (override_, needle) in [
            ("store.url=mysql://x", "store.url"),
            ("queue.max_receives=0", "max_receives"),
            ("cache.kind=redis", "cache.url"),
            ("queue.max_receives=lots", "max_receives"),
            ("blob.kind=s3", "blob.bucket"),
        ] {
            let sources = Sources { overrides: vec![override_.into()], ..Sources::default() };
            let err = Config::load(&sources).expect_err(override_);
            assert!(err.to_string().contains(needle), "{override_}: {err}");
        }
        let missing = Sources { file: Some("/nonexistent.toml".into()), ..Sources::default() };
        assert!(matches!(Config::load(&missing), Err(Error::File { .. })));
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:hunter2@db/x"), "postgres://u:redacted@db/x");
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }
}
