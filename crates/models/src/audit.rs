use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Success,
    Failure,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(AuditOutcome::Success),
            "failure" => Some(AuditOutcome::Failure),
            _ => None,
        }
    }
}

/// One state-changing call or tool invocation. `detail` never holds argument
/// values that could be secrets; callers put names and ids there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// The key that acted, or `None` for an operator action (CLI).
    pub actor_key_id: Option<Uuid>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: AuditOutcome,
    pub duration_ms: u64,
    pub detail: serde_json::Value,
}

/// An entry that happened at `at`, written later together with others.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedAuditEntry {
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    pub entry: NewAuditEntry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    #[schema(value_type = uuid::Uuid)]
    pub tenant_id: TenantId,
    pub actor_key_id: Option<Uuid>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: AuditOutcome,
    pub duration_ms: u64,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}
