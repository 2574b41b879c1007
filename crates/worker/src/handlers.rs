//! Handlers of this build's events.

use std::sync::Arc;

use async_trait::async_trait;
use devops_models::{AuditOutcome, EventEnvelope, NewAuditEntry};
use devops_store::Store;

use crate::{Handler, HandlerError};

/// What `repo.push` carries: a push reported by a webhook, or a request to
/// (re-)index from the REST API.
#[derive(Debug, serde::Deserialize)]
struct RepoPush {
    repository_url: String,
    #[serde(default)]
    git_ref: String,
}

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

/// `repo.push`: re-indexes the repository incrementally through the indexer.
/// The run is idempotent (an unchanged commit is a no-op), so a redelivery
/// after a crash costs one fetch.
pub struct RepoPushed {
    indexer: devops_runtime::clients::Indexer,
}

impl RepoPushed {
    pub fn new(indexer: devops_runtime::clients::Indexer) -> Self {
        Self { indexer }
    }
}

#[async_trait]
impl Handler for RepoPushed {
    fn downstream(&self) -> Option<&'static str> {
        Some("indexer")
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let push: RepoPush = serde_json::from_value(event.payload.clone()).map_err(|err| {
            HandlerError::new(devops_errors::ErrorCode::InvalidArgument, format!("repo.push payload: {err}"))
        })?;
        let request = devops_proto::indexer::v1::IndexRepositoryRequest {
            tenant_id: event.tenant_id.to_string(),
            repository_url: push.repository_url,
            git_ref: push.git_ref,
            full: false,
        };
        let grpc = |status: tonic::Status| {
            let api = devops_errors::ApiError::from(&status);
            HandlerError::new(api.code, api.message)
        };
        let mut stream = self.indexer.clone().index_repository(request).await.map_err(grpc)?.into_inner();
        let mut done = false;
        while let Some(progress) = stream.message().await.map_err(grpc)? {
            done = progress.done;
        }
        if done {
            Ok(())
        } else {
            Err(HandlerError::new(devops_errors::ErrorCode::Unavailable, "the indexer ended the run without a result"))
        }
    }
}

/// What `pull_request.opened|synchronize|reopened` carry.
#[derive(Debug, serde::Deserialize)]
struct PullRequestEvent {
    repository_url: String,
    number: u64,
}

/// `pull_request.*`: asks the reviewer to review and post. A re-review of
/// the same revision edits the earlier summary and posts no comment twice,
/// so a redelivery duplicates nothing.
pub struct PullRequestChanged {
    reviewer: devops_runtime::clients::Reviewer,
}

impl PullRequestChanged {
    pub fn new(reviewer: devops_runtime::clients::Reviewer) -> Self {
        Self { reviewer }
    }
}

#[async_trait]
impl Handler for PullRequestChanged {
    fn downstream(&self) -> Option<&'static str> {
        Some("reviewer")
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let pr: PullRequestEvent = serde_json::from_value(event.payload.clone()).map_err(|err| {
            HandlerError::new(devops_errors::ErrorCode::InvalidArgument, format!("{} payload: {err}", event.event_type))
        })?;
        let request = devops_proto::reviewer::v1::ReviewPullRequestRequest {
            tenant_id: event.tenant_id.to_string(),
            repository_url: pr.repository_url,
            number: pr.number,
            post: true,
        };
        let review = self.reviewer.clone().review_pull_request(request).await.map_err(|status| {
            let api = devops_errors::ApiError::from(&status);
            HandlerError::new(api.code, api.message)
        })?;
        let review = review.into_inner();
        tracing::info!(review_id = %review.id, findings = review.findings.len(), "pull request reviewed");
        Ok(())
    }
}
