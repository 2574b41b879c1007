//! One body of SQL for both back ends. The statements use only what
//! PostgreSQL and SQLite share (`$n` parameters, `RETURNING`, `ON CONFLICT`),
//! and the column types decode to the same Rust types on both, so a macro
//! stamps out the two implementations instead of hiding them behind
//! `sqlx::Any`, which would lose native UUID, timestamp and JSON columns on
//! PostgreSQL.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use devops_models::{
    ApiKey, AuditEntry, AuditOutcome, EventEnvelope, NewApiKey, NewAuditEntry, Scope, Tenant, TenantId,
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
const AUDIT_COLUMNS: &str = "id, tenant_id, actor_key_id, action, target, outcome, duration_ms, detail, at";

/// PostgreSQL with pgvector: the production store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(options: &ConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect(&options.url)
            .await
            .map_err(Error::from)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
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

fn parse_outcome(raw: &str) -> Result<AuditOutcome> {
    AuditOutcome::parse(raw).ok_or_else(|| Error::Corrupt(format!("unknown audit outcome {raw:?}")))
}

macro_rules! impl_store {
    ($store:ty, $row:ty, $migrator:expr) => {
        impl $store {
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
                let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2");
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(Error::NotFound("api key"))?;
                Self::api_key_from(&row)
            }

            async fn list_api_keys(&self, tenant: TenantId, page: Page) -> Result<Vec<ApiKey>> {
                let sql = format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
                     ORDER BY id LIMIT $3"
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(page.after)
                    .bind(page.clamped_limit())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::api_key_from).collect()
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
                    .map_err(|err| match Error::from(err) {
                        Error::Database(db) if db.as_database_error().is_some_and(|e| e.is_foreign_key_violation()) => {
                            Error::NotFound("tenant")
                        }
                        other => other,
                    })?;
                Self::audit_from(&row)
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
