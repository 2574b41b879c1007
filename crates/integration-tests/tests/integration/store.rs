//! One suite for both stores: SQLite, and PostgreSQL on the real server.

use std::sync::Arc;

use chrono::{Duration, Utc};
use devops_models::{
    ApiKeySecret, AuditOutcome, ContextUpdate, EventEnvelope, NewAuditEntry, NewContext, NewContextItem, ParsedApiKey,
    Role, Scope, TenantId, TimedAuditEntry, TrimPolicy,
};
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
    audit_batches_are_written_whole,
    tenant_creation_is_announced_through_the_outbox,
    processed_events_are_recorded_once,
    schema_is_current_after_migrate,
    contexts_are_per_tenant,
    appends_follow_the_trim_policy,
    context_items_are_searchable_and_paged,
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

async fn audit_batches_are_written_whole(store: Arc<dyn Store>) {
    let tenant = store.create_tenant("audit-batch").await.expect("tenant");
    let start = Utc::now() - Duration::minutes(5);
    let timed = |tenant: TenantId, minute: i64, action: &str| TimedAuditEntry {
        tenant,
        at: start + Duration::minutes(minute),
        entry: NewAuditEntry {
            actor_key_id: None,
            action: action.into(),
            target: Some("t".into()),
            outcome: AuditOutcome::Failure,
            duration_ms: 3,
            detail: serde_json::json!({ "error_code": "timeout" }),
        },
    };
    let batch = [timed(tenant.id, 0, "one"), timed(tenant.id, 2, "three"), timed(tenant.id, 1, "two")];
    store.append_audit_batch(&batch).await.expect("batch");
    let entries = store.list_audit(tenant.id, 10).await.expect("list");
    assert_eq!(entries.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["three", "two", "one"], "by when");
    assert_eq!(entries[2].outcome, AuditOutcome::Failure);
    assert_eq!(entries[2].detail, serde_json::json!({ "error_code": "timeout" }));
    assert!((entries[2].at - start).num_milliseconds().abs() < 1, "the entry's own time is kept");

    let orphaned = [timed(tenant.id, 3, "four"), timed(TenantId::new(), 3, "stray")];
    assert!(matches!(store.append_audit_batch(&orphaned).await, Err(Error::NotFound(_))));
    assert_eq!(store.list_audit(tenant.id, 10).await.expect("list").len(), 3, "all of a batch or none of it");
    store.append_audit_batch(&[]).await.expect("nothing to write");
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

fn new_context(name: &str, max_tokens: u64, trim_policy: TrimPolicy) -> NewContext {
    NewContext { name: name.into(), description: "test".into(), max_tokens, trim_policy }
}

async fn contexts_are_per_tenant(store: Arc<dyn Store>) {
    let a = store.create_tenant("ctx-a").await.expect("a");
    let b = store.create_tenant("ctx-b").await.expect("b");
    let context =
        store.create_context(a.id, &new_context("notes", 1000, TrimPolicy::DropOldest)).await.expect("create");
    assert_eq!(context.token_count, 0);
    assert!(matches!(
        store.create_context(a.id, &new_context("notes", 1000, TrimPolicy::Reject)).await,
        Err(Error::Conflict(_))
    ));
    store.create_context(b.id, &new_context("notes", 1000, TrimPolicy::Reject)).await.expect("same name, other tenant");
    assert!(matches!(store.get_context(b.id, context.id).await, Err(Error::NotFound(_))));
    assert!(matches!(store.delete_context(b.id, context.id).await, Err(Error::NotFound(_))));
    let item = NewContextItem::new(context.id, Role::User, "secret plan");
    assert!(matches!(
        store.append_context_items(b.id, context.id, std::slice::from_ref(&item)).await,
        Err(Error::NotFound(_))
    ));
    store.append_context_items(a.id, context.id, &[item]).await.expect("append");
    assert!(store.search_context_items(b.id, None, "secret", 10).await.expect("search").is_empty());
    assert!(store.list_context_items(b.id, context.id, 0, 10).await.expect("list").is_empty());
    assert_eq!(store.list_contexts(a.id, Page::first(10)).await.expect("list").len(), 1);

    let renamed = store
        .update_context(a.id, context.id, &ContextUpdate { name: Some("plans".into()), ..ContextUpdate::default() })
        .await
        .expect("update");
    assert_eq!(renamed.name, "plans");
    assert_eq!(renamed.max_tokens, 1000, "untouched fields stay");
    let too_small = ContextUpdate { max_tokens: Some(1), ..ContextUpdate::default() };
    assert!(matches!(store.update_context(a.id, context.id, &too_small).await, Err(Error::Invalid(_))));
    assert!(matches!(store.update_context(b.id, context.id, &ContextUpdate::default()).await, Err(Error::NotFound(_))));
    store.delete_context(a.id, context.id).await.expect("delete");
    assert!(matches!(store.get_context(a.id, context.id).await, Err(Error::NotFound(_))));
}

async fn appends_follow_the_trim_policy(store: Arc<dyn Store>) {
    let tenant = store.create_tenant("trim").await.expect("tenant");
    let rolling =
        store.create_context(tenant.id, &new_context("rolling", 15, TrimPolicy::DropOldest)).await.expect("c");
    let item = |text: &str| NewContextItem::new(rolling.id, Role::Note, text);
    // 7, 6 and 6 tokens by the estimate: the third append overflows 15.
    for text in ["alpha beta gamma delta", "epsilon zeta eta theta"] {
        store.append_context_items(tenant.id, rolling.id, &[item(text)]).await.expect("append");
    }
    let outcome =
        store.append_context_items(tenant.id, rolling.id, &[item("iota kappa lambda mu")]).await.expect("trim");
    assert_eq!(outcome.dropped.len(), 1, "the oldest item made room");
    assert_eq!(outcome.dropped[0].seq, 1);
    assert_eq!(outcome.context.token_count, 12);
    let items = store.list_context_items(tenant.id, rolling.id, 0, 10).await.expect("items");
    assert_eq!(items.iter().map(|i| i.seq).collect::<Vec<_>>(), [2, 3], "sequence numbers are never reused");
    let stored = store.get_context(tenant.id, rolling.id).await.expect("get");
    assert_eq!((stored.item_count, stored.token_count), (2, outcome.context.token_count));

    let strict = store.create_context(tenant.id, &new_context("strict", 10, TrimPolicy::Reject)).await.expect("c");
    let first = NewContextItem::new(strict.id, Role::User, "alpha beta gamma delta");
    store.append_context_items(tenant.id, strict.id, &[first]).await.expect("fits");
    let second = NewContextItem::new(strict.id, Role::User, "epsilon zeta eta theta");
    let err = store.append_context_items(tenant.id, strict.id, &[second]).await.expect_err("over budget");
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let unchanged = store.get_context(tenant.id, strict.id).await.expect("get");
    assert_eq!(unchanged.item_count, 1, "a refused append changes nothing");
    let huge = NewContextItem::new(strict.id, Role::User, &"word ".repeat(100));
    assert!(matches!(store.append_context_items(tenant.id, rolling.id, &[huge]).await, Err(Error::Invalid(_))));
}

async fn context_items_are_searchable_and_paged(store: Arc<dyn Store>) {
    let tenant = store.create_tenant("search").await.expect("tenant");
    let context = store.create_context(tenant.id, &new_context("log", 100_000, TrimPolicy::Reject)).await.expect("c");
    let items: Vec<_> = (0..30)
        .map(|n| NewContextItem::new(context.id, Role::Tool, &format!("step {n}: deployed service_{n} at 100%")))
        .collect();
    store.append_context_items(tenant.id, context.id, &items).await.expect("append");
    let page1 = store.list_context_items(tenant.id, context.id, 0, 10).await.expect("page 1");
    let page2 = store.list_context_items(tenant.id, context.id, page1[9].seq, 10).await.expect("page 2");
    assert_eq!(page1.len(), 10);
    assert_eq!(page2[0].seq, 11);
    let hits = store.search_context_items(tenant.id, Some(context.id), "SERVICE_7 ", 10).await.expect("search");
    assert_eq!(hits.len(), 1, "case-insensitive, and '_' is literal");
    assert!(hits[0].content.contains("service_7 "));
    let percent = store.search_context_items(tenant.id, None, "100%", 50).await.expect("search");
    assert_eq!(percent.len(), 30, "'%' is literal");
    assert!(store.search_context_items(tenant.id, None, "nothing like it", 10).await.expect("search").is_empty());
}
