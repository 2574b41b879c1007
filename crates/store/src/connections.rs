//! A tenant's connections to code hosts. The store keeps the credentials
//! sealed; sealing and opening them is the providers crate's job, so the
//! database never sees them in the clear.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use devops_models::TenantId;
use sqlx::Row;
use uuid::Uuid;

use crate::{Error, PostgresStore, Result, SqliteStore};

const COLUMNS: &str =
    "id, tenant_id, name, provider, base_url, web_url, auth_kind, sealed_credentials, key_id, created_at, updated_at";

/// A connection as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub name: String,
    pub provider: String,
    pub base_url: String,
    pub web_url: String,
    pub auth_kind: String,
    /// Nonce and ciphertext; opaque here.
    pub sealed_credentials: Vec<u8>,
    /// The data key that sealed them.
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConnectionRecord {
    pub name: String,
    pub provider: String,
    pub base_url: String,
    pub web_url: String,
    pub auth_kind: String,
    pub sealed_credentials: Vec<u8>,
    pub key_id: String,
}

#[async_trait]
pub trait ConnectionStore: Send + Sync + 'static {
    /// Fails with `conflict` when the tenant already has the name.
    async fn create_connection(&self, tenant: TenantId, connection: &NewConnectionRecord) -> Result<ConnectionRecord>;
    async fn get_connection(&self, tenant: TenantId, id: Uuid) -> Result<ConnectionRecord>;
    /// By name.
    async fn list_connections(&self, tenant: TenantId) -> Result<Vec<ConnectionRecord>>;
    /// Replaces the credentials (rotation).
    async fn update_credentials(
        &self,
        tenant: TenantId,
        id: Uuid,
        auth_kind: &str,
        sealed_credentials: &[u8],
        key_id: &str,
    ) -> Result<ConnectionRecord>;
    async fn delete_connection(&self, tenant: TenantId, id: Uuid) -> Result<()>;
}

macro_rules! impl_connection_store {
    ($store:ty, $row:ty) => {
        impl $store {
            fn connection_from(row: &$row) -> Result<ConnectionRecord> {
                Ok(ConnectionRecord {
                    id: row.try_get("id")?,
                    tenant_id: TenantId(row.try_get("tenant_id")?),
                    name: row.try_get("name")?,
                    provider: row.try_get("provider")?,
                    base_url: row.try_get("base_url")?,
                    web_url: row.try_get("web_url")?,
                    auth_kind: row.try_get("auth_kind")?,
                    sealed_credentials: row.try_get("sealed_credentials")?,
                    key_id: row.try_get("key_id")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }
        }

        #[async_trait]
        impl ConnectionStore for $store {
            async fn create_connection(
                &self,
                tenant: TenantId,
                connection: &NewConnectionRecord,
            ) -> Result<ConnectionRecord> {
                let sql = format!(
                    "INSERT INTO provider_connections ({COLUMNS}) \
                     SELECT $1, t.id, $3, $4, $5, $6, $7, $8, $9, $10, $10 FROM tenants t WHERE t.id = $2 \
                     RETURNING {COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(Uuid::now_v7())
                    .bind(tenant.0)
                    .bind(&connection.name)
                    .bind(&connection.provider)
                    .bind(&connection.base_url)
                    .bind(&connection.web_url)
                    .bind(&connection.auth_kind)
                    .bind(&connection.sealed_credentials)
                    .bind(&connection.key_id)
                    .bind(chrono::Utc::now())
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(Error::NotFound("tenant"))?;
                Self::connection_from(&row)
            }

            async fn get_connection(&self, tenant: TenantId, id: Uuid) -> Result<ConnectionRecord> {
                let sql = format!("SELECT {COLUMNS} FROM provider_connections WHERE tenant_id = $1 AND id = $2");
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(Error::NotFound("connection"))?;
                Self::connection_from(&row)
            }

            async fn list_connections(&self, tenant: TenantId) -> Result<Vec<ConnectionRecord>> {
                let sql = format!("SELECT {COLUMNS} FROM provider_connections WHERE tenant_id = $1 ORDER BY name");
                let rows = sqlx::query(&sql).bind(tenant.0).fetch_all(self.pool()).await?;
                rows.iter().map(Self::connection_from).collect()
            }

            async fn update_credentials(
                &self,
                tenant: TenantId,
                id: Uuid,
                auth_kind: &str,
                sealed_credentials: &[u8],
                key_id: &str,
            ) -> Result<ConnectionRecord> {
                let sql = format!(
                    "UPDATE provider_connections SET auth_kind = $3, sealed_credentials = $4, key_id = $5, \
                     updated_at = $6 WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(id)
                    .bind(auth_kind)
                    .bind(sealed_credentials)
                    .bind(key_id)
                    .bind(chrono::Utc::now())
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(Error::NotFound("connection"))?;
                Self::connection_from(&row)
            }

            async fn delete_connection(&self, tenant: TenantId, id: Uuid) -> Result<()> {
                let done = sqlx::query("DELETE FROM provider_connections WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::NotFound("connection"));
                }
                Ok(())
            }
        }
    };
}

impl_connection_store!(PostgresStore, sqlx::postgres::PgRow);
impl_connection_store!(SqliteStore, sqlx::sqlite::SqliteRow);
