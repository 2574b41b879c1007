//! The tools a tenant's admins switched off, for every key of the tenant.
//! Each change bumps the tenant's version, which MCP servers poll to tell
//! their sessions that the tool list changed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use devops_models::TenantId;
use sqlx::Row;
use sqlx::types::Json;

use crate::sql::to_u64;
use crate::{Error, PostgresStore, Result, SqliteStore};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolSettings {
    /// Tool names, sorted, without duplicates.
    pub disabled_tools: Vec<String>,
    /// 0 before the first change.
    pub version: u64,
    pub updated_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ToolSettingsStore: Send + Sync + 'static {
    /// The tenant's settings; defaults when it never changed them.
    async fn get_tool_settings(&self, tenant: TenantId) -> Result<ToolSettings>;
    /// Replaces the disabled tools and bumps the version.
    async fn put_tool_settings(&self, tenant: TenantId, disabled_tools: &[String]) -> Result<ToolSettings>;
    /// Every tenant's settings that ever changed, with its tenant.
    async fn all_tool_settings(&self) -> Result<Vec<(TenantId, ToolSettings)>>;
}

fn normalized(disabled_tools: &[String]) -> Vec<String> {
    let mut tools = disabled_tools.to_vec();
    tools.sort();
    tools.dedup();
    tools
}

macro_rules! impl_tool_settings_store {
    ($store:ty, $row:ty) => {
        impl $store {
            fn tool_settings_from(row: &$row) -> Result<ToolSettings> {
                let Json(disabled_tools): Json<Vec<String>> = row.try_get("disabled_tools")?;
                Ok(ToolSettings {
                    disabled_tools,
                    version: to_u64(row.try_get("version")?),
                    updated_at: Some(row.try_get("updated_at")?),
                })
            }
        }

        #[async_trait]
        impl ToolSettingsStore for $store {
            async fn get_tool_settings(&self, tenant: TenantId) -> Result<ToolSettings> {
                let row = sqlx::query(
                    "SELECT disabled_tools, version, updated_at FROM tenant_tool_settings WHERE tenant_id = $1",
                )
                .bind(tenant.0)
                .fetch_optional(self.pool())
                .await?;
                match row {
                    Some(row) => Self::tool_settings_from(&row),
                    None => Ok(ToolSettings::default()),
                }
            }

            async fn put_tool_settings(&self, tenant: TenantId, disabled_tools: &[String]) -> Result<ToolSettings> {
                let row = sqlx::query(
                    "INSERT INTO tenant_tool_settings (tenant_id, disabled_tools, version, updated_at) \
                     SELECT t.id, $2, 1, $3 FROM tenants t WHERE t.id = $1 \
                     ON CONFLICT (tenant_id) DO UPDATE SET disabled_tools = excluded.disabled_tools, \
                         version = tenant_tool_settings.version + 1, updated_at = excluded.updated_at \
                     RETURNING disabled_tools, version, updated_at",
                )
                .bind(tenant.0)
                .bind(Json(normalized(disabled_tools)))
                .bind(Utc::now())
                .fetch_optional(self.pool())
                .await?
                .ok_or(Error::NotFound("tenant"))?;
                Self::tool_settings_from(&row)
            }

            async fn all_tool_settings(&self) -> Result<Vec<(TenantId, ToolSettings)>> {
                let rows =
                    sqlx::query("SELECT tenant_id, disabled_tools, version, updated_at FROM tenant_tool_settings")
                        .fetch_all(self.pool())
                        .await?;
                rows.iter()
                    .map(|row| Ok((TenantId(row.try_get("tenant_id")?), Self::tool_settings_from(row)?)))
                    .collect()
            }
        }
    };
}

impl_tool_settings_store!(PostgresStore, sqlx::postgres::PgRow);
impl_tool_settings_store!(SqliteStore, sqlx::sqlite::SqliteRow);

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_sorted_once() {
        let tools = ["b".to_owned(), "a".to_owned(), "b".to_owned()];
        assert_eq!(super::normalized(&tools), ["a", "b"]);
    }
}
