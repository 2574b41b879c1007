//! One suite for both stores: SQLite, and PostgreSQL on the real server.

use std::sync::Arc;

use chrono::{Duration, Utc};
use devops_models::{ApiKeySecret, AuditOutcome, EventEnvelope, NewAuditEntry, ParsedApiKey, Scope, TenantId};
use devops_store::{Error, Page, Store};

macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    super::$name(devops_integration_tests::sqlite_store(dir.path()).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = devops_integration_tests::postgres_url() else { return };
                    super::$name(devops_integration_tests::postgres_store(&url).await).await;
                }
            )*
        }
    };
}

store_suite!(
    tenants_are_unique_and_paginated,
    keys_authenticate_only_with_their_secret,
    keys_are_scoped_to_their_tenant,
    audit_log_is_per_tenant,
    tenant_creation_is_announced_through_the_outbox,
    processed_events_are_recorded_once,
    schema_is_current_after_migrate,
);

async fn tenants_are_unique_and_paginated(store: Arc<dyn Store>) {
    let a = store.create_tenant("alpha").await.expect("create");
    assert_eq!(store.get_tenant(a.id).await.expect("get"), a);
    assert!(matches!(store.create_tenant("alpha").await, Err(Error::Conflict(_))));
    assert!(matches!(store.create_tenant("Not Valid").await, Err(Error::Invalid(_))));
    assert!(matches!(store.get_tenant(TenantId::new()).await, Err(Error::NotFound(_))));
    for name in ["beta", "gamma", "delta"] {
        store.create_tenant(name).await.expect("create");
    }
    let first = store.list_tenants(Page::first(2)).await.expect("page 1");
    let second = store.list_tenants(Page { after: Some(first[1].id.0), limit: 2 }).await.expect("page 2");
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 2);
    let mut all: Vec<_> = first.iter().chain(&second).map(|t| t.name.clone()).collect();
    all.sort();
    assert_eq!(all, ["alpha", "beta", "delta", "gamma"]);
    assert_eq!(store.find_tenant_by_name("beta").await.expect("find").map(|t| t.name), Some("beta".into()));
    assert_eq!(store.find_tenant_by_name("nobody").await.expect("find"), None);
}

async fn keys_authenticate_only_with_their_secret(store: Arc<dyn Store>) {
    let tenant = store.create_tenant("keys").await.expect("tenant");
    let expires = Utc::now() + Duration::days(1);
    let (secret, record) = ApiKeySecret::generate("ci", vec![Scope::Read, Scope::Write], Some(expires));
    let key = store.create_api_key(tenant.id, &record).await.expect("create key");
    assert_eq!(key.scopes, [Scope::Read, Scope::Write]);
    assert_eq!(key.prefix, record.prefix);
    assert!(key.expires_at.is_some_and(|at| (at - expires).num_milliseconds().abs() < 1000));

    let parsed = ParsedApiKey::parse(secret.expose()).expect("parse");
    let credential = store.find_api_key_for_auth(&parsed.key_id).await.expect("lookup").expect("found");
    assert_eq!(credential.key.tenant_id, tenant.id);
    assert!(parsed.matches_hash(&credential.hash));
    assert_ne!(credential.hash, secret.expose(), "only a hash is stored");
    assert!(store.find_api_key_for_auth("nosuchkeyid0").await.expect("lookup").is_none());

    let now = Utc::now();
    store.touch_api_key(tenant.id, key.id, now).await.expect("touch");
    let revoked = store.revoke_api_key(tenant.id, key.id, now).await.expect("revoke");
    assert!(revoked.is_revoked());
    assert!(revoked.last_used_at.is_some());
    let again = store.revoke_api_key(tenant.id, key.id, now + Duration::hours(1)).await.expect("revoke twice");
    assert_eq!(again.revoked_at, revoked.revoked_at, "revoking twice keeps the first time");
}

async fn keys_are_scoped_to_their_tenant(store: Arc<dyn Store>) {
    let a = store.create_tenant("tenant-a").await.expect("a");
    let b = store.create_tenant("tenant-b").await.expect("b");
    let (_, record) = ApiKeySecret::generate("a-key", vec![Scope::Admin], None);
    let key = store.create_api_key(a.id, &record).await.expect("create");
    assert!(matches!(store.get_api_key(b.id, key.id).await, Err(Error::NotFound(_))));
    assert!(matches!(store.revoke_api_key(b.id, key.id, Utc::now()).await, Err(Error::NotFound(_))));
    assert!(store.list_api_keys(b.id, Page::first(50)).await.expect("list").is_empty());
    assert_eq!(store.list_api_keys(a.id, Page::first(50)).await.expect("list").len(), 1);
    assert!(!store.get_api_key(a.id, key.id).await.expect("get").is_revoked(), "b's revoke did nothing");
    let (_, orphan) = ApiKeySecret::generate("orphan", vec![Scope::Read], None);
    assert!(matches!(store.create_api_key(TenantId::new(), &orphan).await, Err(Error::NotFound(_))));
}

async fn audit_log_is_per_tenant(store: Arc<dyn Store>) {
    let a = store.create_tenant("audit-a").await.expect("a");
    let b = store.create_tenant("audit-b").await.expect("b");
    for action in ["first", "second"] {
        let entry = NewAuditEntry {
            actor_key_id: None,
            action: action.into(),
            target: Some("thing".into()),
            outcome: AuditOutcome::Success,
            duration_ms: 7,
            detail: serde_json::json!({ "n": 1 }),
        };
        store.append_audit(a.id, &entry).await.expect("append");
    }
    let entries = store.list_audit(a.id, 10).await.expect("list");
    assert_eq!(entries.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["second", "first"]);
    assert_eq!(entries[0].duration_ms, 7);
    assert_eq!(entries[0].detail, serde_json::json!({ "n": 1 }));
    assert!(store.list_audit(b.id, 10).await.expect("list").is_empty());
}

async fn tenant_creation_is_announced_through_the_outbox(store: Arc<dyn Store>) {
    let tenant = store.create_tenant("outbox").await.expect("tenant");
    let pending = store.pending_outbox(10).await.expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].envelope.event_type, "tenant.created");
    assert_eq!(pending[0].envelope.tenant_id, tenant.id);
    let extra = EventEnvelope::new("repo.push", tenant.id, "delivery-1", serde_json::json!({}));
    store.enqueue_outbox(tenant.id, &extra).await.expect("enqueue");
    let other = EventEnvelope::new("repo.push", TenantId::new(), "x", serde_json::json!({}));
    assert!(matches!(store.enqueue_outbox(tenant.id, &other).await, Err(Error::Invalid(_))));
    store.mark_outbox_published(pending[0].id, Utc::now()).await.expect("publish");
    let rest = store.pending_outbox(10).await.expect("pending");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].envelope, extra);
}

async fn processed_events_are_recorded_once(store: Arc<dyn Store>) {
    let a = store.create_tenant("idem-a").await.expect("a");
    let b = store.create_tenant("idem-b").await.expect("b");
    assert!(!store.is_processed(a.id, "k1").await.expect("check"));
    assert!(store.mark_processed(a.id, "k1", "repo.push").await.expect("mark"));
    assert!(!store.mark_processed(a.id, "k1", "repo.push").await.expect("mark again"));
    assert!(store.is_processed(a.id, "k1").await.expect("check"));
    assert!(!store.is_processed(b.id, "k1").await.expect("other tenant"), "keys are per tenant");
}

async fn schema_is_current_after_migrate(store: Arc<dyn Store>) {
    store.check_schema().await.expect("schema current");
    store.migrate().await.expect("migrating twice is a no-op");
    store.ping().await.expect("ping");
}

#[tokio::test]
async fn an_unmigrated_database_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("empty.db").display());
    let store = devops_store::SqliteStore::connect(&devops_store::ConnectOptions {
        url,
        max_connections: 1,
        connect_timeout: std::time::Duration::from_secs(1),
    })
    .await
    .expect("connect");
    let err = store.check_schema().await.expect_err("not migrated");
    assert!(err.to_string().contains("devops-mcp migrate"), "{err}");
}
