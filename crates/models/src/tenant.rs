use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Identifies a tenant. Every query on tenant-owned data takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl TenantId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    #[schema(value_type = uuid::Uuid)]
    pub id: TenantId,
    /// Unique, human-chosen name (`acme`, `platform-team`).
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Tenant names are DNS-label-like so they can appear in URLs, metrics and logs
/// without escaping.
pub fn validate_tenant_name(name: &str) -> Result<(), String> {
    let ok_len = (1..=63).contains(&name.len());
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let ok_edges = !name.starts_with('-') && !name.ends_with('-');
    if ok_len && ok_chars && ok_edges {
        Ok(())
    } else {
        Err("tenant name must be 1-63 characters of a-z, 0-9, '-' or '_', not starting or ending with '-'".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names() {
        assert!(validate_tenant_name("acme").is_ok());
        assert!(validate_tenant_name("team_1-a").is_ok());
        assert!(validate_tenant_name("").is_err());
        assert!(validate_tenant_name("Acme").is_err());
        assert!(validate_tenant_name("-acme").is_err());
        assert!(validate_tenant_name(&"a".repeat(64)).is_err());
        assert!(validate_tenant_name("a b").is_err());
    }
}
