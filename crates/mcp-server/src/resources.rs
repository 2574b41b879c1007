//! Contexts as MCP resources (`context://<id>`), with `resources/subscribe`:
//! a session that subscribes to a context hears `notifications/resources/updated`
//! when a tool changes it, and `list_changed` when the tenant creates one.
//! Changes travel on an in-process channel, so subscribers hear about changes
//! made through the same server process.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use devops_models::TenantId;
use devops_store::{Page, Store};
use rmcp::model::{ReadResourceResult, Resource, ResourceTemplate, ResourceUpdatedNotificationParam, ResultType};
use rmcp::{ErrorData as McpError, Peer, RoleServer};
use serde_json::json;
use tokio::sync::broadcast;
use uuid::Uuid;

use devops_models::sanitize::sanitize;

pub const SCHEME: &str = "context://";
const ITEMS_IN_RESOURCE: u32 = 200;

/// A change to a tenant's contexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextChange {
    Updated { tenant: TenantId, context: Uuid },
    Created { tenant: TenantId },
}

pub fn uri(id: Uuid) -> String {
    format!("{SCHEME}{id}")
}

pub fn parse_uri(uri: &str) -> Option<Uuid> {
    uri.strip_prefix(SCHEME)?.parse().ok()
}

fn store_error(err: devops_store::Error) -> McpError {
    match err {
        devops_store::Error::NotFound(_) => McpError::resource_not_found("no such context", None),
        other => {
            tracing::error!(error = %other, "context resource failed");
            McpError::internal_error("context store unavailable", None)
        }
    }
}

pub async fn list(store: &dyn Store, tenant: TenantId) -> Result<Vec<Resource>, McpError> {
    let contexts = store.list_contexts(tenant, Page::first(Page::MAX_LIMIT)).await.map_err(store_error)?;
    Ok(contexts
        .into_iter()
        .map(|c| {
            Resource::new(uri(c.id), sanitize(&c.name).into_owned())
                .with_description(format!("{} items, {} of {} tokens", c.item_count, c.token_count, c.max_tokens))
                .with_mime_type("application/json")
        })
        .collect())
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{SCHEME}{{context_id}}"), "context")
            .with_description("A context and its first items, as JSON")
            .with_mime_type("application/json"),
    ]
}

/// The context and its first items, as one JSON document.
pub async fn read(store: &dyn Store, tenant: TenantId, id: Uuid) -> Result<ReadResourceResult, McpError> {
    let context = store.get_context(tenant, id).await.map_err(store_error)?;
    let items = store.list_context_items(tenant, id, 0, ITEMS_IN_RESOURCE).await.map_err(store_error)?;
    let document = json!({
        "id": context.id,
        "name": sanitize(&context.name),
        "description": sanitize(&context.description),
        "token_count": context.token_count,
        "max_tokens": context.max_tokens,
        "items": items.iter().map(|i| json!({
            "seq": i.seq, "role": i.role.as_str(), "content": sanitize(&i.content), "preview": i.blob_key.is_some(),
        })).collect::<Vec<_>>(),
    });
    let mut result: ReadResourceResult = serde_json::from_value(json!({ "contents": [{
        "uri": uri(id), "mimeType": "application/json", "text": document.to_string() }] }))
    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
    result.result_type = Some(ResultType::COMPLETE);
    Ok(result)
}

/// One session's subscriptions, and the task that forwards changes to it.
#[derive(Default)]
pub struct Subscriptions {
    uris: HashSet<String>,
    forwarder: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if let Some(forwarder) = self.forwarder.take() {
            forwarder.abort();
        }
    }
}

pub type SessionSubscriptions = Arc<Mutex<Subscriptions>>;

/// Subscribes the session to `uri`, starting its forwarder on first use.
pub fn subscribe(
    subscriptions: &SessionSubscriptions,
    watched_uri: String,
    tenant: TenantId,
    peer: Peer<RoleServer>,
    changes: &broadcast::Sender<ContextChange>,
) {
    let mut state = subscriptions.lock().unwrap_or_else(PoisonError::into_inner);
    state.uris.insert(watched_uri);
    if state.forwarder.is_some() {
        return;
    }
    let mut receiver = changes.subscribe();
    let watched = Arc::downgrade(subscriptions);
    state.forwarder = Some(tokio::spawn(async move {
        while let Ok(change) = receiver.recv().await {
            let Some(watched) = watched.upgrade() else { return };
            let sent = match change {
                ContextChange::Updated { tenant: t, context } if t == tenant => {
                    let changed = uri(context);
                    let wanted = watched.lock().unwrap_or_else(PoisonError::into_inner).uris.contains(&changed);
                    if !wanted {
                        continue;
                    }
                    peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(changed)).await
                }
                ContextChange::Created { tenant: t } if t == tenant => peer.notify_resource_list_changed().await,
                _ => continue,
            };
            if sent.is_err() {
                return; // the session is gone
            }
        }
    }));
}

pub fn unsubscribe(subscriptions: &SessionSubscriptions, uri: &str) {
    subscriptions.lock().unwrap_or_else(PoisonError::into_inner).uris.remove(uri);
}
