//! Handlers of this build's events.

use std::sync::Arc;

use async_trait::async_trait;
use devops_models::{AuditOutcome, EventEnvelope, NewAuditEntry};
use devops_store::Store;

use crate::{Handler, HandlerError};

/// `tenant.created`: records that the tenant's provisioning ran. Later
/// issues hang per-tenant set-up (default toolsets, quotas) here.
pub struct TenantCreated {
    store: Arc<dyn Store>,
}

impl TenantCreated {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Handler for TenantCreated {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.store
            .append_audit(
                event.tenant_id,
                &NewAuditEntry {
                    actor_key_id: None,
                    action: "tenant.provisioned".into(),
                    target: Some(event.tenant_id.to_string()),
                    outcome: AuditOutcome::Success,
                    duration_ms: 0,
                    detail: serde_json::json!({ "event_id": event.id }),
                },
            )
            .await?;
        Ok(())
    }
}
