//! The envelope every asynchronous event travels in, on SQS and on the
//! embedded queue alike.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TenantId;

/// W3C trace-context fields (`traceparent`, `tracestate`), carried so that
/// one trace follows an event across the queue.
pub type TraceContext = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// UUIDv7: sortable by creation time.
    pub id: Uuid,
    /// Dotted event type, e.g. `repo.push`, `pull_request.opened`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant_id: TenantId,
    pub occurred_at: DateTime<Utc>,
    /// Duplicates with the same key have one effect (e.g. a webhook delivery id).
    pub idempotency_key: String,
    #[serde(default)]
    pub trace_context: TraceContext,
    pub schema_version: u32,
    pub payload: serde_json::Value,
    /// Failed attempts spent by earlier copies of this event. The worker
    /// requeues an event it must wait on as a fresh message, whose receive
    /// count starts over; this carries the retry budget across.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl EventEnvelope {
    pub const SCHEMA_VERSION: u32 = 1;

    pub fn new(
        event_type: impl Into<String>,
        tenant_id: TenantId,
        idempotency_key: impl Into<String>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            tenant_id,
            occurred_at: Utc::now(),
            idempotency_key: idempotency_key.into(),
            trace_context: TraceContext::new(),
            schema_version: Self::SCHEMA_VERSION,
            payload,
            failed_attempts: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let mut event =
            EventEnvelope::new("repo.push", TenantId::new(), "delivery-1", serde_json::json!({"ref": "main"}));
        event.trace_context.insert("traceparent".into(), "00-abc-def-01".into());
        let json = serde_json::to_string(&event).expect("serialize");
        assert!(json.contains("\"type\":\"repo.push\""));
        let back: EventEnvelope = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, event);
        assert_eq!(back.id.get_version_num(), 7);
    }
}
