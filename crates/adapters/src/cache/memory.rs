use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Cache, LockToken, new_token};
use crate::Result;

/// In-process cache and locks for a single-process fleet (`devops-mcp up`).
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, (Vec<u8>, Instant)>) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        // Expired entries are dropped lazily, bounded by the map's size.
        if entries.len() > 10_000 {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        f(&mut entries)
    }

    fn live(entries: &HashMap<String, (Vec<u8>, Instant)>, key: &str) -> Option<Vec<u8>> {
        entries.get(key).filter(|(_, expires)| *expires > Instant::now()).map(|(v, _)| v.clone())
    }

    /// Whether `token` holds the live lock stored at `lock_key`.
    fn held_by(entries: &HashMap<String, (Vec<u8>, Instant)>, lock_key: &str, token: &LockToken) -> bool {
        Self::live(entries, lock_key).is_some_and(|v| v == token.0.as_bytes())
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.with_entries(|entries| Self::live(entries, key)))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.with_entries(|entries| entries.insert(key.to_owned(), (value.to_vec(), Instant::now() + ttl)));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.with_entries(|entries| entries.remove(key));
        Ok(())
    }

    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let lock_key = format!("lock:{key}");
        Ok(self.with_entries(|entries| {
            if Self::live(entries, &lock_key).is_some() {
                return None;
            }
            let token = new_token();
            entries.insert(lock_key, (token.0.clone().into_bytes(), Instant::now() + ttl));
            Some(token)
        }))
    }

    async fn unlock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let lock_key = format!("lock:{key}");
        Ok(self.with_entries(|entries| {
            let held = Self::held_by(entries, &lock_key, token);
            if held {
                entries.remove(&lock_key);
            }
            held
        }))
    }

    async fn extend_lock(&self, key: &str, token: &LockToken, ttl: Duration) -> Result<bool> {
        let lock_key = format!("lock:{key}");
        Ok(self.with_entries(|entries| {
            let held = Self::held_by(entries, &lock_key, token);
            if held {
                entries.insert(lock_key, (token.0.clone().into_bytes(), Instant::now() + ttl));
            }
            held
        }))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
