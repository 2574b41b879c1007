//! Streamable HTTP sessions that outlive the replica that made them.
//!
//! rmcp keeps each session's worker in memory; [`CacheSessionStore`] keeps
//! what it needs to rebuild one (the client's `initialize` parameters) in
//! the cache, Redis in production and in-process on embedded defaults. A
//! request that lands on a replica without the session restores it there, so
//! replicas need no sticky routing.
//!
//! A session belongs to the tenant that opened it: [`bind_to_tenant`]
//! records the owner when the session is made and answers every later
//! request from another tenant as if the session did not exist.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use devops_adapters::cache::Cache;
use devops_errors::{ApiError, ErrorCode};
use devops_models::{Principal, TenantId};
use rmcp::transport::common::http_header::HEADER_SESSION_ID;
use rmcp::transport::streamable_http_server::session::{SessionState, SessionStore, SessionStoreError};

/// rmcp's session state, kept in the cache for `ttl` after the handshake.
pub struct CacheSessionStore {
    cache: Arc<dyn Cache>,
    ttl: Duration,
}

impl CacheSessionStore {
    pub fn new(cache: Arc<dyn Cache>, ttl: Duration) -> Self {
        Self { cache, ttl }
    }
}

fn state_key(session_id: &str) -> String {
    format!("mcp:session:{session_id}")
}

fn owner_key(session_id: &str) -> String {
    format!("mcp:session-owner:{session_id}")
}

#[async_trait::async_trait]
impl SessionStore for CacheSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        match self.cache.get(&state_key(session_id)).await? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        Ok(self.cache.set(&state_key(session_id), &serde_json::to_vec(state)?, self.ttl).await?)
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        Ok(self.cache.delete(&state_key(session_id)).await?)
    }
}

/// Which tenant owns each session, in the cache the replicas share. Read
/// on every request rather than remembered, so a session closed on one
/// replica is closed on all of them at once.
#[derive(Clone)]
pub struct SessionOwners {
    cache: Arc<dyn Cache>,
    ttl: Duration,
}

impl SessionOwners {
    pub fn new(cache: Arc<dyn Cache>, ttl: Duration) -> Self {
        Self { cache, ttl }
    }

    async fn record(&self, session_id: &str, tenant: TenantId) -> devops_adapters::Result<()> {
        self.cache.set(&owner_key(session_id), tenant.to_string().as_bytes(), self.ttl).await
    }

    async fn owner(&self, session_id: &str) -> devops_adapters::Result<Option<TenantId>> {
        let stored = self.cache.get(&owner_key(session_id)).await?;
        Ok(stored.and_then(|bytes| uuid::Uuid::try_parse_ascii(&bytes).ok()).map(TenantId))
    }

    async fn forget(&self, session_id: &str) -> devops_adapters::Result<()> {
        self.cache.delete(&owner_key(session_id)).await
    }
}

/// Runs after authentication: a request naming a session must come
/// from the session's tenant; a response that opens a session records it.
pub async fn bind_to_tenant(owners: &SessionOwners, request: Request, next: Next) -> Response {
    let Some(tenant) = request.extensions().get::<Principal>().map(|p| p.tenant_id) else {
        return next.run(request).await;
    };
    let Some(session_id) = session_id(request.headers()) else {
        let response = next.run(request).await;
        if let Some(session_id) = session_id(response.headers())
            && let Err(err) = owners.record(&session_id, tenant).await
        {
            // A session nobody can be proven to own is useless: refuse it now
            // rather than 404 the client's next request.
            tracing::error!(error = %err, "could not record the owner of a new MCP session");
            return store_unreachable();
        }
        return response;
    };
    match owners.owner(&session_id).await {
        Ok(Some(owner)) if owner == tenant => {}
        // Worded as rmcp words an unknown session, so both read alike.
        Ok(_) => return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response(),
        Err(err) => {
            tracing::error!(error = %err, "could not look up the owner of an MCP session");
            return store_unreachable();
        }
    }
    let closing = request.method() == Method::DELETE;
    let response = next.run(request).await;
    if closing
        && response.status().is_success()
        && let Err(err) = owners.forget(&session_id).await
    {
        tracing::warn!(error = %err, "could not forget the owner of a closed MCP session; it expires on its own");
    }
    response
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers.get(HEADER_SESSION_ID).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn store_unreachable() -> Response {
    ApiError::new(ErrorCode::Unavailable, "the MCP session store is unreachable; retry shortly").into_response()
}
