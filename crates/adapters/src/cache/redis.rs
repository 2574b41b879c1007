use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::redis::{AsyncCommands, SetExpiry, SetOptions, cmd};
use deadpool_redis::{Connection, Pool, PoolConfig, Runtime, Timeouts};

use super::{Cache, LockToken, new_token};
use crate::{Error, Result};

const BACKEND: &str = "redis";
/// Deletes the lock only if the caller's token still holds it.
const UNLOCK: &str =
    r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;
/// Renews the lock's expiry only if the caller's token still holds it.
const EXTEND_LOCK: &str =
    r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end"#;

#[derive(Clone)]
pub struct RedisCache {
    pool: Pool,
    /// Prepended to every key so tenants of one Redis (and tests) don't collide.
    namespace: String,
}

impl RedisCache {
    /// Builds the pool and checks that Redis answers.
    pub async fn connect(url: &str, pool_size: usize, namespace: impl Into<String>) -> Result<Self> {
        let mut config = deadpool_redis::Config::from_url(url);
        let mut pool_config = PoolConfig::new(pool_size);
        let limit = Some(Duration::from_secs(2));
        pool_config.timeouts = Timeouts { wait: limit, create: limit, recycle: limit };
        config.pool = Some(pool_config);
        let pool = config.create_pool(Some(Runtime::Tokio1)).map_err(|e| Error::Invalid(e.to_string()))?;
        let cache = Self { pool, namespace: namespace.into() };
        cache.ping().await?;
        Ok(cache)
    }

    async fn conn(&self) -> Result<Connection> {
        self.pool.get().await.map_err(|e| Error::unavailable(BACKEND, e))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }
}

fn redis_err(err: deadpool_redis::redis::RedisError) -> Error {
    if err.is_io_error() || err.is_connection_dropped() || err.is_timeout() {
        Error::unavailable(BACKEND, err)
    } else {
        Error::backend(BACKEND, err)
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.conn().await?.get(self.key(key)).await.map_err(redis_err)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let options = SetOptions::default().with_expiration(SetExpiry::PX(ttl_ms(ttl)));
        self.conn().await?.set_options::<_, _, ()>(self.key(key), value, options).await.map_err(redis_err)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.conn().await?.del::<_, ()>(self.key(key)).await.map_err(redis_err)
    }

    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = new_token();
        let acquired: Option<String> = cmd("SET")
            .arg(self.key(&format!("lock:{key}")))
            .arg(&token.0)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async(&mut self.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(acquired.map(|_| token))
    }

    async fn unlock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let deleted: i64 = cmd("EVAL")
            .arg(UNLOCK)
            .arg(1)
            .arg(self.key(&format!("lock:{key}")))
            .arg(&token.0)
            .query_async(&mut self.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(deleted == 1)
    }

    async fn extend_lock(&self, key: &str, token: &LockToken, ttl: Duration) -> Result<bool> {
        let extended: i64 = cmd("EVAL")
            .arg(EXTEND_LOCK)
            .arg(1)
            .arg(self.key(&format!("lock:{key}")))
            .arg(&token.0)
            .arg(ttl_ms(ttl))
            .query_async(&mut self.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(extended == 1)
    }

    async fn ping(&self) -> Result<()> {
        let _: String = cmd("PING").query_async(&mut self.conn().await?).await.map_err(redis_err)?;
        Ok(())
    }
}
