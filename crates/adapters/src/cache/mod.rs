//! Cache and distributed locks: Redis in production, an in-process map
//! embedded. Values are bytes; callers choose the encoding.

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use memory::MemoryCache;
pub use redis::RedisCache;

use crate::Result;

/// Proof of holding a lock; releasing needs it, so a holder whose lock expired
/// and was taken by another cannot release the other's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockToken(pub String);

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Takes the lock `key` for `ttl` if nobody holds it.
    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>>;
    /// Releases the lock if `token` still holds it; returns whether it did.
    async fn unlock(&self, key: &str, token: &LockToken) -> Result<bool>;
    /// Holds the lock for `ttl` from now if `token` still holds it; returns
    /// whether it did. A holder whose work outlasts the lock's first `ttl`
    /// keeps it this way.
    async fn extend_lock(&self, key: &str, token: &LockToken, ttl: Duration) -> Result<bool>;
    async fn ping(&self) -> Result<()>;
}

fn new_token() -> LockToken {
    LockToken(uuid::Uuid::new_v4().to_string())
}
