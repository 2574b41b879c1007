//! One body of SQL for both back ends. The statements use only what
//! PostgreSQL and SQLite share (`$n` parameters, `RETURNING`, `ON CONFLICT`),
//! and the column types decode to the same Rust types on both, so a macro
//! stamps out the two implementations instead of hiding them behind
//! `sqlx::Any`, which would lose native UUID, timestamp and JSON columns on
//! PostgreSQL.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use devops_models::{
    ApiKey, AppendOutcome, AuditEntry, AuditOutcome, Context, ContextItem, ContextUpdate, EventEnvelope, IndexRecord,
    IndexState, NewApiKey, NewAuditEntry, NewContext, NewContextItem, Repository, Scope, Tenant, TenantId,
    TimedAuditEntry, TrimPolicy,
};
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{ApiKeyCredential, ConnectOptions, Error, OutboxRecord, Page, Result, Store};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

const API_KEY_COLUMNS: &str = "id, tenant_id, prefix, name, scopes, created_at, expires_at, revoked_at, last_used_at";
const CONTEXT_COLUMNS: &str =
    "id, tenant_id, name, description, max_tokens, trim_policy, token_count, item_count, created_at, updated_at";
const ITEM_COLUMNS: &str = "id, context_id, seq, role, content, blob_key, byte_len, token_count, created_at";
const REPOSITORY_COLUMNS: &str = "id, tenant_id, url, name, state, last_indexed_commit, embedder, file_count, \
                                  chunk_count, last_error, created_at, updated_at, indexed_at";
const AUDIT_COLUMNS: &str = "id, tenant_id, actor_key_id, action, target, outcome, duration_ms, detail, at";

/// PostgreSQL with pgvector: the production store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    term_frequencies: Arc<crate::code::TermFrequencies>,
}

impl PostgresStore {
    pub async fn connect(options: &ConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect(&options.url)
            .await
            .map_err(Error::from)?;
        Ok(Self { pool, term_frequencies: Arc::default() })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn term_frequencies(&self) -> &crate::code::TermFrequencies {
        &self.term_frequencies
    }
}

/// SQLite in the data directory: the embedded store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(options: &ConnectOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(&options.url)
            .map_err(|err| Error::Invalid(format!("bad sqlite url: {err}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(options.connect_timeout)
            .foreign_keys(true);
        if let Some(parent) = connect.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|err| Error::Invalid(format!("cannot create {}: {err}", parent.display())))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(Error::from)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn expected_version(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

fn parse_scopes(raw: Vec<String>) -> Result<Vec<Scope>> {
    raw.iter().map(|s| Scope::from_str(s).map_err(Error::Corrupt)).collect()
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

pub(crate) fn parse<T: FromStr<Err = String>>(raw: &str) -> Result<T> {
    raw.parse().map_err(Error::Corrupt)
}

/// `%`, `_` and `\` are literal in a search.
fn like_pattern(query: &str) -> String {
    let escaped = query.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

fn validate_context_fields(name: Option<&str>, max_tokens: Option<u64>) -> Result<()> {
    if let Some(name) = name
        && (name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control))
    {
        return Err(Error::Invalid("context name must be 1-200 printable characters".into()));
    }
    if max_tokens.is_some_and(|max| !(1..=10_000_000).contains(&max)) {
        return Err(Error::Invalid("max_tokens must be between 1 and 10000000".into()));
    }
    Ok(())
}

fn parse_outcome(raw: &str) -> Result<AuditOutcome> {
    AuditOutcome::parse(raw).ok_or_else(|| Error::Corrupt(format!("unknown audit outcome {raw:?}")))
}

/// An audit entry's tenant that does not exist breaks the foreign key.
fn unknown_tenant(err: sqlx::Error) -> Error {
    match Error::from(err) {
        Error::Database(db) if db.as_database_error().is_some_and(|e| e.is_foreign_key_violation()) => {
            Error::NotFound("tenant")
        }
        other => other,
    }
}

macro_rules! impl_store {
    ($store:ty, $row:ty, $migrator:expr) => {
        impl $store {
            /// One row of `table` owned by `tenant`, by id.
            async fn one<T>(
                &self,
                table: &str,
                columns: &str,
                tenant: TenantId,
                id: Uuid,
                what: &'static str,
                decode: fn(&$row) -> Result<T>,
            ) -> Result<T> {
                let sql = format!("SELECT {columns} FROM {table} WHERE tenant_id = $1 AND id = $2");
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(Error::NotFound(what))?;
                decode(&row)
            }

            /// A keyset page of `table` owned by `tenant`, by id.
            async fn page<T>(
                &self,
                table: &str,
                columns: &str,
                tenant: TenantId,
                page: Page,
                decode: fn(&$row) -> Result<T>,
            ) -> Result<Vec<T>> {
                let sql = format!(
                    "SELECT {columns} FROM {table} WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(page.after)
                    .bind(page.clamped_limit())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(decode).collect()
            }

            fn tenant_from(row: &$row) -> Result<Tenant> {
                Ok(Tenant {
                    id: TenantId(row.try_get("id")?),
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            fn api_key_from(row: &$row) -> Result<ApiKey> {
                let Json(scopes): Json<Vec<String>> = row.try_get("scopes")?;
                Ok(ApiKey {
                    id: row.try_get("id")?,
                    tenant_id: TenantId(row.try_get("tenant_id")?),
                    name: row.try_get("name")?,
                    prefix: row.try_get("prefix")?,
                    scopes: parse_scopes(scopes)?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                })
            }

            fn repository_from(row: &$row) -> Result<Repository> {
                let state: String = row.try_get("state")?;
                Ok(Repository {
                    id: row.try_get("id")?,
                    tenant_id: TenantId(row.try_get("tenant_id")?),
                    url: row.try_get("url")?,
                    name: row.try_get("name")?,
                    state: parse::<IndexState>(&state)?,
                    last_indexed_commit: row.try_get("last_indexed_commit")?,
                    embedder: row.try_get("embedder")?,
                    file_count: to_u64(row.try_get("file_count")?),
                    chunk_count: to_u64(row.try_get("chunk_count")?),
                    last_error: row.try_get("last_error")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                    indexed_at: row.try_get("indexed_at")?,
                })
            }

            fn context_from(row: &$row) -> Result<Context> {
                let policy: String = row.try_get("trim_policy")?;
                Ok(Context {
                    id: row.try_get("id")?,
                    tenant_id: TenantId(row.try_get("tenant_id")?),
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    max_tokens: to_u64(row.try_get("max_tokens")?),
                    trim_policy: parse(&policy)?,
                    token_count: to_u64(row.try_get("token_count")?),
                    item_count: to_u64(row.try_get("item_count")?),
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn item_from(row: &$row) -> Result<ContextItem> {
                let role: String = row.try_get("role")?;
                Ok(ContextItem {
                    id: row.try_get("id")?,
                    context_id: row.try_get("context_id")?,
                    seq: to_u64(row.try_get("seq")?),
                    role: parse(&role)?,
                    content: row.try_get("content")?,
                    blob_key: row.try_get("blob_key")?,
                    byte_len: to_u64(row.try_get("byte_len")?),
                    token_count: to_u64(row.try_get("token_count")?),
                    created_at: row.try_get("created_at")?,
                })
            }

            fn audit_from(row: &$row) -> Result<AuditEntry> {
                let outcome: String = row.try_get("outcome")?;
                let duration_ms: i64 = row.try_get("duration_ms")?;
                let Json(detail): Json<serde_json::Value> = row.try_get("detail")?;
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    tenant_id: TenantId(row.try_get("tenant_id")?),
                    actor_key_id: row.try_get("actor_key_id")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    outcome: parse_outcome(&outcome)?,
                    duration_ms: u64::try_from(duration_ms).unwrap_or_default(),
                    detail,
                    at: row.try_get("at")?,
                })
            }
        }

        #[async_trait]
        impl Store for $store {
            #[tracing::instrument(name = "store.ping", skip_all)]
            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn check_schema(&self) -> Result<()> {
                let expected = expected_version(&$migrator);
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&self.pool)
                        .await
                        .ok()
                        .flatten();
                if found == Some(expected) {
                    Ok(())
                } else {
                    Err(Error::SchemaMismatch { found, expected })
                }
            }

            async fn migrate(&self) -> Result<()> {
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            #[tracing::instrument(name = "store.create_tenant", skip_all)]
            async fn create_tenant(&self, name: &str) -> Result<Tenant> {
                devops_models::tenant::validate_tenant_name(name).map_err(Error::Invalid)?;
                // PostgreSQL keeps microseconds; round so the value returned equals the one stored.
                let created_at = Utc::now().trunc_subsecs(6);
                let tenant = Tenant { id: TenantId::new(), name: name.to_owned(), created_at };
                let event = EventEnvelope::new(
                    "tenant.created",
                    tenant.id,
                    format!("tenant.created:{}", tenant.id),
                    serde_json::json!({ "name": tenant.name }),
                );
                let mut tx = self.pool.begin().await?;
                sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(tenant.id.0)
                    .bind(&tenant.name)
                    .bind(tenant.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|err| match Error::from(err) {
                        Error::Conflict(_) => Error::Conflict(format!("tenant {name:?} already exists")),
                        other => other,
                    })?;
                sqlx::query("INSERT INTO outbox (id, tenant_id, envelope, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(event.id)
                    .bind(tenant.id.0)
                    .bind(Json(&event))
                    .bind(event.occurred_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(tenant)
            }

            async fn get_tenant(&self, id: TenantId) -> Result<Tenant> {
                let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(Error::NotFound("tenant"))?;
                Self::tenant_from(&row)
            }

            async fn find_tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
                let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::tenant_from).transpose()
            }

            async fn list_tenants(&self, page: Page) -> Result<Vec<Tenant>> {
                let rows = sqlx::query(
                    "SELECT id, name, created_at FROM tenants WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
                )
                .bind(page.after)
                .bind(page.clamped_limit())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::tenant_from).collect()
            }

            #[tracing::instrument(name = "store.create_api_key", skip_all, fields(tenant = %tenant))]
            async fn create_api_key(&self, tenant: TenantId, key: &NewApiKey) -> Result<ApiKey> {
                let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                let sql = format!(
                    "INSERT INTO api_keys (id, tenant_id, key_id, prefix, hash, name, scopes, created_at, expires_at) \
                     SELECT $1, id, $3, $4, $5, $6, $7, $8, $9 FROM tenants WHERE id = $2 \
                     RETURNING {API_KEY_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(key.id)
                    .bind(tenant.0)
                    .bind(&key.key_id)
                    .bind(&key.prefix)
                    .bind(&key.hash)
                    .bind(&key.name)
                    .bind(Json(scopes))
                    .bind(Utc::now())
                    .bind(key.expires_at)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(Error::NotFound("tenant"))?;
                Self::api_key_from(&row)
            }

            async fn get_api_key(&self, tenant: TenantId, id: Uuid) -> Result<ApiKey> {
                self.one("api_keys", API_KEY_COLUMNS, tenant, id, "api key", Self::api_key_from).await
            }

            async fn list_api_keys(&self, tenant: TenantId, page: Page) -> Result<Vec<ApiKey>> {
                self.page("api_keys", API_KEY_COLUMNS, tenant, page, Self::api_key_from).await
            }

            async fn revoke_api_key(&self, tenant: TenantId, id: Uuid, at: DateTime<Utc>) -> Result<ApiKey> {
                let sql = format!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2 \
                     RETURNING {API_KEY_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .bind(at)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(Error::NotFound("api key"))?;
                Self::api_key_from(&row)
            }

            async fn touch_api_key(&self, tenant: TenantId, id: Uuid, at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(name = "store.find_api_key_for_auth", skip_all)]
            async fn find_api_key_for_auth(&self, key_id: &str) -> Result<Option<ApiKeyCredential>> {
                let sql = format!("SELECT {API_KEY_COLUMNS}, hash FROM api_keys WHERE key_id = $1");
                let row = sqlx::query(&sql).bind(key_id).fetch_optional(&self.pool).await?;
                row.map(|row| Ok(ApiKeyCredential { key: Self::api_key_from(&row)?, hash: row.try_get("hash")? }))
                    .transpose()
            }

            async fn append_audit(&self, tenant: TenantId, entry: &NewAuditEntry) -> Result<AuditEntry> {
                let sql = format!(
                    "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     RETURNING {AUDIT_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(Uuid::now_v7())
                    .bind(tenant.0)
                    .bind(entry.actor_key_id)
                    .bind(&entry.action)
                    .bind(&entry.target)
                    .bind(entry.outcome.as_str())
                    .bind(i64::try_from(entry.duration_ms).unwrap_or(i64::MAX))
                    .bind(Json(&entry.detail))
                    .bind(Utc::now())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(unknown_tenant)?;
                Self::audit_from(&row)
            }

            async fn append_audit_batch(&self, entries: &[TimedAuditEntry]) -> Result<()> {
                if entries.is_empty() {
                    return Ok(());
                }
                let mut insert = sqlx::QueryBuilder::<<$row as sqlx::Row>::Database>::new(format!(
                    "INSERT INTO audit_log ({AUDIT_COLUMNS}) "
                ));
                insert.push_values(entries, |mut row, timed| {
                    let entry = &timed.entry;
                    row.push_bind(Uuid::now_v7())
                        .push_bind(timed.tenant.0)
                        .push_bind(entry.actor_key_id)
                        .push_bind(&entry.action)
                        .push_bind(&entry.target)
                        .push_bind(entry.outcome.as_str())
                        .push_bind(i64::try_from(entry.duration_ms).unwrap_or(i64::MAX))
                        .push_bind(Json(&entry.detail))
                        .push_bind(timed.at);
                });
                insert.build().execute(&self.pool).await.map_err(unknown_tenant)?;
                Ok(())
            }

            async fn list_audit(&self, tenant: TenantId, limit: u32) -> Result<Vec<AuditEntry>> {
                let sql = format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE tenant_id = $1 ORDER BY at DESC, id DESC LIMIT $2"
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(Page::first(limit).clamped_limit())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::audit_from).collect()
            }

            async fn enqueue_outbox(&self, tenant: TenantId, event: &EventEnvelope) -> Result<()> {
                if event.tenant_id != tenant {
                    return Err(Error::Invalid("event belongs to another tenant".into()));
                }
                sqlx::query("INSERT INTO outbox (id, tenant_id, envelope, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(event.id)
                    .bind(tenant.0)
                    .bind(Json(event))
                    .bind(event.occurred_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxRecord>> {
                let rows = sqlx::query(
                    "SELECT id, envelope FROM outbox WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1",
                )
                .bind(Page::first(limit).clamped_limit())
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let Json(envelope): Json<EventEnvelope> = row.try_get("envelope")?;
                        Ok(OutboxRecord { id: row.try_get("id")?, envelope })
                    })
                    .collect()
            }

            async fn mark_outbox_published(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE outbox SET published_at = $2 WHERE id = $1 AND published_at IS NULL")
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(name = "store.create_context", skip_all, fields(tenant = %tenant))]
            async fn create_context(&self, tenant: TenantId, context: &NewContext) -> Result<Context> {
                validate_context_fields(Some(&context.name), Some(context.max_tokens))?;
                let now = Utc::now();
                let sql = format!(
                    "INSERT INTO contexts (id, tenant_id, name, description, max_tokens, trim_policy, created_at, updated_at) \
                     SELECT $1, id, $3, $4, $5, $6, $7, $7 FROM tenants WHERE id = $2 RETURNING {CONTEXT_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(Uuid::now_v7())
                    .bind(tenant.0)
                    .bind(&context.name)
                    .bind(&context.description)
                    .bind(to_i64(context.max_tokens))
                    .bind(context.trim_policy.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|err| match Error::from(err) {
                        Error::Conflict(_) => Error::Conflict(format!("a context named {:?} already exists", context.name)),
                        other => other,
                    })?
                    .ok_or(Error::NotFound("tenant"))?;
                Self::context_from(&row)
            }

            async fn get_context(&self, tenant: TenantId, id: Uuid) -> Result<Context> {
                self.one("contexts", CONTEXT_COLUMNS, tenant, id, "context", Self::context_from).await
            }

            async fn list_contexts(&self, tenant: TenantId, page: Page) -> Result<Vec<Context>> {
                self.page("contexts", CONTEXT_COLUMNS, tenant, page, Self::context_from).await
            }

            async fn update_context(&self, tenant: TenantId, id: Uuid, update: &ContextUpdate) -> Result<Context> {
                validate_context_fields(update.name.as_deref(), update.max_tokens)?;
                let sql = format!(
                    "UPDATE contexts SET name = COALESCE($3, name), description = COALESCE($4, description), \
                         max_tokens = COALESCE($5, max_tokens), trim_policy = COALESCE($6, trim_policy), updated_at = $7 \
                     WHERE tenant_id = $1 AND id = $2 AND token_count <= COALESCE($5, max_tokens) \
                     RETURNING {CONTEXT_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .bind(&update.name)
                    .bind(&update.description)
                    .bind(update.max_tokens.map(to_i64))
                    .bind(update.trim_policy.map(|p| p.as_str()))
                    .bind(Utc::now())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|err| match Error::from(err) {
                        Error::Conflict(_) => Error::Conflict("a context with that name already exists".into()),
                        other => other,
                    })?;
                match row {
                    Some(row) => Self::context_from(&row),
                    // Tell a missing context from a budget below what it holds.
                    None => {
                        let context = self.get_context(tenant, id).await?;
                        Err(Error::Invalid(format!(
                            "max_tokens cannot go below the {} tokens the context holds",
                            context.token_count
                        )))
                    }
                }
            }

            async fn delete_context(&self, tenant: TenantId, id: Uuid) -> Result<Vec<String>> {
                let mut tx = self.pool.begin().await?;
                // Write before reading: a SQLite transaction that reads first
                // cannot take the write lock after a concurrent commit.
                let blobs: Vec<Option<String>> = sqlx::query_scalar(
                    "DELETE FROM context_items WHERE tenant_id = $1 AND context_id = $2 RETURNING blob_key",
                )
                .bind(tenant.0)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                let blobs: Vec<String> = blobs.into_iter().flatten().collect();
                let deleted = sqlx::query("DELETE FROM contexts WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if deleted.rows_affected() == 0 {
                    return Err(Error::NotFound("context"));
                }
                tx.commit().await?;
                Ok(blobs)
            }

            #[tracing::instrument(name = "store.append_context_items", skip_all, fields(tenant = %tenant, items = items.len()))]
            async fn append_context_items(
                &self,
                tenant: TenantId,
                id: Uuid,
                items: &[NewContextItem],
            ) -> Result<AppendOutcome> {
                let now = Utc::now();
                let mut tx = self.pool.begin().await?;
                // Writing first takes the row lock (PostgreSQL) or the write lock (SQLite).
                let sql = format!(
                    "UPDATE contexts SET updated_at = $3 WHERE tenant_id = $1 AND id = $2 RETURNING {CONTEXT_COLUMNS}, next_seq"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(Error::NotFound("context"))?;
                let mut context = Self::context_from(&row)?;
                let mut next_seq: i64 = row.try_get("next_seq")?;
                let incoming: u64 = items.iter().map(|i| i.token_count).sum();
                if incoming > context.max_tokens {
                    return Err(Error::Invalid(format!(
                        "the items hold {incoming} tokens, more than the context's budget of {}",
                        context.max_tokens
                    )));
                }
                let mut dropped = Vec::new();
                let overflow = (context.token_count + incoming).saturating_sub(context.max_tokens);
                if overflow > 0 {
                    if context.trim_policy == TrimPolicy::Reject {
                        return Err(Error::Invalid(format!(
                            "appending {incoming} tokens would exceed the budget of {} ({} used); \
                             the context's trim policy is reject",
                            context.max_tokens, context.token_count
                        )));
                    }
                    let sql = format!(
                        "SELECT {ITEM_COLUMNS} FROM context_items WHERE tenant_id = $1 AND context_id = $2 ORDER BY seq"
                    );
                    let mut freed = 0;
                    for row in sqlx::query(&sql).bind(tenant.0).bind(id).fetch_all(&mut *tx).await? {
                        let item = Self::item_from(&row)?;
                        freed += item.token_count;
                        dropped.push(item);
                        if freed >= overflow {
                            break;
                        }
                    }
                    if let Some(last) = dropped.last() {
                        sqlx::query("DELETE FROM context_items WHERE tenant_id = $1 AND context_id = $2 AND seq <= $3")
                            .bind(tenant.0)
                            .bind(id)
                            .bind(to_i64(last.seq))
                            .execute(&mut *tx)
                            .await?;
                    }
                    context.token_count -= freed;
                    context.item_count -= dropped.len() as u64;
                }
                let insert = format!(
                    "INSERT INTO context_items (id, tenant_id, context_id, seq, role, content, blob_key, byte_len, token_count, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {ITEM_COLUMNS}"
                );
                let mut appended = Vec::with_capacity(items.len());
                for item in items {
                    let row = sqlx::query(&insert)
                        .bind(item.id)
                        .bind(tenant.0)
                        .bind(id)
                        .bind(next_seq)
                        .bind(item.role.as_str())
                        .bind(&item.content)
                        .bind(&item.blob_key)
                        .bind(to_i64(item.byte_len))
                        .bind(to_i64(item.token_count))
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?;
                    appended.push(Self::item_from(&row)?);
                    next_seq += 1;
                }
                context.token_count += incoming;
                context.item_count += items.len() as u64;
                context.updated_at = now;
                sqlx::query(
                    "UPDATE contexts SET token_count = $3, item_count = $4, next_seq = $5 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(id)
                .bind(to_i64(context.token_count))
                .bind(to_i64(context.item_count))
                .bind(next_seq)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(AppendOutcome { context, appended, dropped })
            }

            async fn list_context_items(
                &self,
                tenant: TenantId,
                id: Uuid,
                after_seq: u64,
                limit: u32,
            ) -> Result<Vec<ContextItem>> {
                let sql = format!(
                    "SELECT {ITEM_COLUMNS} FROM context_items WHERE tenant_id = $1 AND context_id = $2 AND seq > $3 \
                     ORDER BY seq LIMIT $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .bind(to_i64(after_seq))
                    .bind(Page::first(limit).clamped_limit())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::item_from).collect()
            }

            async fn search_context_items(
                &self,
                tenant: TenantId,
                context: Option<Uuid>,
                query: &str,
                limit: u32,
            ) -> Result<Vec<ContextItem>> {
                let sql = format!(
                    "SELECT {ITEM_COLUMNS} FROM context_items WHERE tenant_id = $1 AND ($2 IS NULL OR context_id = $2) \
                     AND LOWER(content) LIKE $3 ESCAPE '\\' ORDER BY created_at DESC, seq DESC LIMIT $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(context)
                    .bind(like_pattern(query))
                    .bind(Page::first(limit).clamped_limit())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::item_from).collect()
            }

            async fn register_repository(&self, tenant: TenantId, url: &str, name: &str) -> Result<Repository> {
                if url.is_empty() || url.len() > 2048 || name.len() > 512 {
                    return Err(Error::Invalid("repository url must be 1-2048 bytes and name at most 512".into()));
                }
                let now = Utc::now();
                // The no-op update makes RETURNING yield the existing row.
                let sql = format!(
                    "INSERT INTO repositories (id, tenant_id, url, name, state, created_at, updated_at) \
                     SELECT $1, id, $3, $4, $5, $6, $6 FROM tenants WHERE id = $2 \
                     ON CONFLICT (tenant_id, url) DO UPDATE SET url = excluded.url RETURNING {REPOSITORY_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(Uuid::now_v7())
                    .bind(tenant.0)
                    .bind(url)
                    .bind(name)
                    .bind(IndexState::Registered.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(Error::NotFound("tenant"))?;
                Self::repository_from(&row)
            }

            async fn get_repository(&self, tenant: TenantId, id: Uuid) -> Result<Repository> {
                self.one("repositories", REPOSITORY_COLUMNS, tenant, id, "repository", Self::repository_from).await
            }

            async fn find_repository(&self, tenant: TenantId, url: &str) -> Result<Option<Repository>> {
                let sql = format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE tenant_id = $1 AND url = $2");
                let row = sqlx::query(&sql).bind(tenant.0).bind(url).fetch_optional(&self.pool).await?;
                row.as_ref().map(Self::repository_from).transpose()
            }

            async fn list_repositories(&self, tenant: TenantId, page: Page) -> Result<Vec<Repository>> {
                self.page("repositories", REPOSITORY_COLUMNS, tenant, page, Self::repository_from).await
            }

            async fn record_index(&self, tenant: TenantId, id: Uuid, record: &IndexRecord) -> Result<Repository> {
                let sql = format!(
                    "UPDATE repositories SET state = $3, last_indexed_commit = COALESCE($4, last_indexed_commit), \
                         embedder = COALESCE($5, embedder), file_count = COALESCE($6, file_count), \
                         chunk_count = COALESCE($7, chunk_count), last_error = $8, updated_at = $9, \
                         indexed_at = CASE WHEN $4 IS NULL THEN indexed_at ELSE $9 END \
                     WHERE tenant_id = $1 AND id = $2 RETURNING {REPOSITORY_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .bind(record.state.as_str())
                    .bind(&record.commit)
                    .bind(&record.embedder)
                    .bind(record.file_count.map(to_i64))
                    .bind(record.chunk_count.map(to_i64))
                    .bind(&record.last_error)
                    .bind(Utc::now())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(Error::NotFound("repository"))?;
                Self::repository_from(&row)
            }

            async fn delete_repository(&self, tenant: TenantId, id: Uuid) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                // Chunks first: SQLite only cascades with foreign keys on, and this must not depend on it.
                sqlx::query("DELETE FROM code_chunks WHERE tenant_id = $1 AND repository_id = $2")
                    .bind(tenant.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let deleted = sqlx::query("DELETE FROM repositories WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if deleted.rows_affected() == 0 {
                    return Err(Error::NotFound("repository"));
                }
                tx.commit().await?;
                Ok(())
            }

            fn code(&self) -> std::sync::Arc<dyn crate::CodeStore> {
                std::sync::Arc::new(self.clone())
            }

            fn pull_requests(&self) -> std::sync::Arc<dyn crate::PullRequestStore> {
                std::sync::Arc::new(self.clone())
            }

            fn connections(&self) -> std::sync::Arc<dyn crate::ConnectionStore> {
                std::sync::Arc::new(self.clone())
            }

            fn tool_settings(&self) -> std::sync::Arc<dyn crate::ToolSettingsStore> {
                std::sync::Arc::new(self.clone())
            }

            async fn mark_processed(&self, tenant: TenantId, key: &str, event_type: &str) -> Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO processed_events (tenant_id, idempotency_key, event_type, processed_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(tenant.0)
                .bind(key)
                .bind(event_type)
                .bind(Utc::now())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn is_processed(&self, tenant: TenantId, key: &str) -> Result<bool> {
                let found: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM processed_events WHERE tenant_id = $1 AND idempotency_key = $2",
                )
                .bind(tenant.0)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(found.is_some())
            }
        }
    };
}

impl_store!(PostgresStore, sqlx::postgres::PgRow, POSTGRES_MIGRATIONS);
impl_store!(SqliteStore, sqlx::sqlite::SqliteRow, SQLITE_MIGRATIONS);
