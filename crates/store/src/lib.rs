//! The relational store.
//!
//! [`Store`] is shaped by what the services need, not by SQL. Two
//! implementations share one body of SQL (see [`sql`]): PostgreSQL for
//! production and SQLite for the embedded defaults.
//!
//! Architecture invariant: every method on tenant-owned data takes a
//! [`TenantId`] and filters on it in SQL. The only methods without one are
//! those on the tenants table itself (platform administration), the
//! authentication lookup that *finds* the tenant from a key, and the outbox
//! relay, which moves every tenant's events.

mod code;
mod connections;
mod reviews;
mod sql;
mod tool_settings;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use devops_errors::{ErrorCode, HasErrorCode};
use devops_models::{
    ApiKey, AppendOutcome, AuditEntry, Context, ContextItem, ContextUpdate, EventEnvelope, IndexRecord, NewApiKey,
    NewAuditEntry, NewContext, NewContextItem, Repository, Tenant, TenantId, TimedAuditEntry,
};
use uuid::Uuid;

pub use code::{CodeStore, fuse_ranked};
pub use connections::{ConnectionRecord, ConnectionStore, NewConnectionRecord};
pub use reviews::PullRequestStore;
pub use sql::{PostgresStore, SqliteStore};
pub use tool_settings::{ToolSettings, ToolSettingsStore};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database schema is at version {found:?}, this build needs {expected}; run `devops-mcp migrate`")]
    SchemaMismatch { found: Option<i64>, expected: i64 },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl HasErrorCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Invalid(_) => ErrorCode::InvalidArgument,
            Error::Unavailable(_) => ErrorCode::Unavailable,
            Error::SchemaMismatch { .. } | Error::Migrate(_) | Error::Database(_) | Error::Corrupt(_) => {
                ErrorCode::Internal
            }
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => Error::NotFound("row"),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict("a record with the same unique value already exists".into())
            }
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                Error::Unavailable(err)
            }
            _ => Error::Database(err),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A key as the authenticator needs it: the public record plus its hash.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ApiKeyCredential {
    pub key: ApiKey,
    pub hash: String,
}

/// A relayed event still waiting for publication.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    pub id: Uuid,
    pub envelope: EventEnvelope,
}

/// Keyset pagination: items strictly after `after`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub after: Option<Uuid>,
    pub limit: u32,
}

impl Page {
    pub const MAX_LIMIT: u32 = 200;

    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }

    fn clamped_limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, Self::MAX_LIMIT))
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip, for readiness.
    async fn ping(&self) -> Result<()>;
    /// Fails unless every migration this build knows has been applied.
    async fn check_schema(&self) -> Result<()>;
    async fn migrate(&self) -> Result<()>;

    // Tenants: the root of the tenancy tree, administered by the platform.
    /// Creates a tenant and records a `tenant.created` event in the outbox, atomically.
    async fn create_tenant(&self, name: &str) -> Result<Tenant>;
    async fn get_tenant(&self, id: TenantId) -> Result<Tenant>;
    async fn find_tenant_by_name(&self, name: &str) -> Result<Option<Tenant>>;
    async fn list_tenants(&self, page: Page) -> Result<Vec<Tenant>>;

    // API keys.
    async fn create_api_key(&self, tenant: TenantId, key: &NewApiKey) -> Result<ApiKey>;
    async fn get_api_key(&self, tenant: TenantId, id: Uuid) -> Result<ApiKey>;
    async fn list_api_keys(&self, tenant: TenantId, page: Page) -> Result<Vec<ApiKey>>;
    async fn revoke_api_key(&self, tenant: TenantId, id: Uuid, at: DateTime<Utc>) -> Result<ApiKey>;
    async fn touch_api_key(&self, tenant: TenantId, id: Uuid, at: DateTime<Utc>) -> Result<()>;
    /// The authentication lookup: the key's public id leads to its tenant.
    async fn find_api_key_for_auth(&self, key_id: &str) -> Result<Option<ApiKeyCredential>>;

    // Audit log.
    async fn append_audit(&self, tenant: TenantId, entry: &NewAuditEntry) -> Result<AuditEntry>;
    /// Writes many entries in one statement: all of them, or none.
    async fn append_audit_batch(&self, entries: &[TimedAuditEntry]) -> Result<()>;
    async fn list_audit(&self, tenant: TenantId, limit: u32) -> Result<Vec<AuditEntry>>;

    // Outbox.
    async fn enqueue_outbox(&self, tenant: TenantId, event: &EventEnvelope) -> Result<()>;
    /// Oldest unpublished events across tenants (the relay's view).
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxRecord>>;
    async fn mark_outbox_published(&self, id: Uuid, at: DateTime<Utc>) -> Result<()>;

    // Contexts.
    async fn create_context(&self, tenant: TenantId, context: &NewContext) -> Result<Context>;
    async fn get_context(&self, tenant: TenantId, id: Uuid) -> Result<Context>;
    async fn list_contexts(&self, tenant: TenantId, page: Page) -> Result<Vec<Context>>;
    async fn update_context(&self, tenant: TenantId, id: Uuid, update: &ContextUpdate) -> Result<Context>;
    /// Deletes the context and its items; returns the blob keys the caller must delete.
    async fn delete_context(&self, tenant: TenantId, id: Uuid) -> Result<Vec<String>>;
    /// Appends items atomically, applying the context's trim policy.
    async fn append_context_items(&self, tenant: TenantId, id: Uuid, items: &[NewContextItem])
    -> Result<AppendOutcome>;
    /// Items with `seq` greater than `after_seq`, in order.
    async fn list_context_items(
        &self,
        tenant: TenantId,
        id: Uuid,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<ContextItem>>;
    /// Items whose text contains `query` (case-insensitive), newest first,
    /// in one context or all of the tenant's.
    async fn search_context_items(
        &self,
        tenant: TenantId,
        context: Option<Uuid>,
        query: &str,
        limit: u32,
    ) -> Result<Vec<ContextItem>>;

    // Repositories.
    /// Registers `url` for the tenant, or returns the repository already registered there.
    async fn register_repository(&self, tenant: TenantId, url: &str, name: &str) -> Result<Repository>;
    async fn get_repository(&self, tenant: TenantId, id: Uuid) -> Result<Repository>;
    async fn find_repository(&self, tenant: TenantId, url: &str) -> Result<Option<Repository>>;
    async fn list_repositories(&self, tenant: TenantId, page: Page) -> Result<Vec<Repository>>;
    /// Records the state of an index run.
    async fn record_index(&self, tenant: TenantId, id: Uuid, record: &IndexRecord) -> Result<Repository>;
    /// Deletes a repository and its index.
    async fn delete_repository(&self, tenant: TenantId, id: Uuid) -> Result<()>;
    /// The code index on the same database.
    fn code(&self) -> std::sync::Arc<dyn CodeStore>;
    /// Pull requests, comments and reviews on the same database.
    fn pull_requests(&self) -> std::sync::Arc<dyn PullRequestStore>;
    /// Provider connections, credentials sealed.
    fn connections(&self) -> std::sync::Arc<dyn ConnectionStore>;
    /// The tools each tenant switched off.
    fn tool_settings(&self) -> std::sync::Arc<dyn ToolSettingsStore>;

    // Idempotency.
    /// Records that `key` had its effect. Returns false if it already had.
    async fn mark_processed(&self, tenant: TenantId, key: &str, event_type: &str) -> Result<bool>;
    async fn is_processed(&self, tenant: TenantId, key: &str) -> Result<bool>;
}

/// Options for connecting to either back end.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

/// Connects to the store named by the URL's scheme.
pub async fn connect(options: &ConnectOptions) -> Result<std::sync::Arc<dyn Store>> {
    if options.url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::connect(options).await?))
    } else {
        Ok(std::sync::Arc::new(PostgresStore::connect(options).await?))
    }
}
