//! One suite for both caches: in-process, and Redis on the real server.

use std::sync::Arc;
use std::time::Duration;

use devops_adapters::cache::{Cache, RedisCache};
use devops_integration_tests::unique;

pub async fn redis_cache(url: &str) -> Arc<dyn Cache> {
    Arc::new(RedisCache::connect(url, 4, unique("test:") + ":").await.expect("connect redis"))
}

macro_rules! cache_suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(std::sync::Arc::new(devops_adapters::cache::MemoryCache::new())).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = devops_integration_tests::redis_url() else { return };
                    super::$name(super::redis_cache(&url).await).await;
                }
            )*
        }
    };
}

cache_suite!(values_expire, locks_are_exclusive_and_need_their_token, a_holder_extends_its_lock_and_only_its_own);

async fn values_expire(cache: Arc<dyn Cache>) {
    assert_eq!(cache.get("k").await.expect("get"), None);
    cache.set("k", b"v1", Duration::from_millis(400)).await.expect("set");
    assert_eq!(cache.get("k").await.expect("get"), Some(b"v1".to_vec()));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get("k").await.expect("get"), None, "expired");
    cache.set("k", b"v2", Duration::from_secs(10)).await.expect("set");
    cache.delete("k").await.expect("delete");
    assert_eq!(cache.get("k").await.expect("get"), None);
    cache.ping().await.expect("ping");
}

async fn locks_are_exclusive_and_need_their_token(cache: Arc<dyn Cache>) {
    let held = cache.try_lock("repo", Duration::from_secs(5)).await.expect("lock").expect("free");
    assert!(cache.try_lock("repo", Duration::from_secs(5)).await.expect("lock").is_none(), "exclusive");
    let stranger = devops_adapters::cache::LockToken("not-the-holder".into());
    assert!(!cache.unlock("repo", &stranger).await.expect("unlock"), "needs the token");
    assert!(cache.unlock("repo", &held).await.expect("unlock"));
    let short = cache.try_lock("repo", Duration::from_millis(300)).await.expect("lock").expect("free again");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let next = cache.try_lock("repo", Duration::from_secs(5)).await.expect("lock").expect("expired lock is free");
    assert!(!cache.unlock("repo", &short).await.expect("unlock"), "an expired holder cannot release the next");
    assert!(cache.unlock("repo", &next).await.expect("unlock"));
}

async fn a_holder_extends_its_lock_and_only_its_own(cache: Arc<dyn Cache>) {
    let held = cache.try_lock("event", Duration::from_millis(400)).await.expect("lock").expect("free");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(cache.extend_lock("event", &held, Duration::from_secs(5)).await.expect("extend"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        cache.try_lock("event", Duration::from_secs(5)).await.expect("lock").is_none(),
        "still held past its first ttl"
    );
    let stranger = devops_adapters::cache::LockToken("not-the-holder".into());
    assert!(!cache.extend_lock("event", &stranger, Duration::from_secs(5)).await.expect("extend"), "needs the token");
    assert!(cache.unlock("event", &held).await.expect("unlock"));
    assert!(
        !cache.extend_lock("event", &held, Duration::from_secs(5)).await.expect("extend"),
        "a released lock stays free"
    );
    assert!(cache.try_lock("event", Duration::from_secs(5)).await.expect("lock").is_some());
}

#[tokio::test]
async fn redis_connect_fails_clearly_when_unreachable() {
    let err = match RedisCache::connect("redis://127.0.0.1:9", 1, "x:").await {
        Ok(_) => panic!("no Redis listens on port 9"),
        Err(err) => err,
    };
    assert_eq!(devops_errors::HasErrorCode::code(&err), devops_errors::ErrorCode::Unavailable, "{err}");
}
