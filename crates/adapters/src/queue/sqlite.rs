use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use devops_models::EventEnvelope;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{DeadLetter, Queue, QueueDepth, QueueSettings, Receipt, ReceivedMessage};
use crate::{Error, Result};

const BACKEND: &str = "local queue";
const POLL_INTERVAL: Duration = Duration::from_millis(100);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    queue          TEXT NOT NULL,
    body           TEXT NOT NULL,
    receive_count  INTEGER NOT NULL DEFAULT 0,
    visible_at     INTEGER NOT NULL,
    receipt        TEXT,
    dead           INTEGER NOT NULL DEFAULT 0,
    sent_at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, dead, visible_at, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_receipt ON messages (receipt);
";

/// A durable queue in a SQLite file with SQS semantics (see `design.md`).
#[derive(Clone)]
pub struct SqliteQueue {
    pool: SqlitePool,
    settings: QueueSettings,
    sent: Arc<Notify>,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteQueue {
    pub async fn open(path: &Path, settings: QueueSettings) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::unavailable(BACKEND, e))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|e| Error::Invalid(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| Error::unavailable(BACKEND, e))?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(|e| Error::unavailable(BACKEND, e))?;
        Ok(Self { pool, settings, sent: Arc::new(Notify::new()) })
    }

    async fn insert(&self, id: &str, body: &str, delay: Duration) -> Result<()> {
        let now = now_ms();
        let delay_ms = i64::try_from(delay.min(super::MAX_SEND_DELAY).as_millis()).unwrap_or(i64::MAX);
        sqlx::query("INSERT INTO messages (id, queue, body, visible_at, sent_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(&self.settings.name)
            .bind(body)
            .bind(now + delay_ms)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| Error::backend(BACKEND, e))?;
        self.sent.notify_waiters();
        Ok(())
    }

    async fn try_receive(&self, max: u32) -> Result<Vec<ReceivedMessage>> {
        let now = now_ms();
        let mut tx = self.pool.begin().await.map_err(|e| Error::unavailable(BACKEND, e))?;
        sqlx::query(
            "UPDATE messages SET dead = 1, receipt = NULL \
             WHERE queue = $1 AND dead = 0 AND visible_at <= $2 AND receive_count >= $3",
        )
        .bind(&self.settings.name)
        .bind(now)
        .bind(i64::from(self.settings.max_receives))
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::backend(BACKEND, e))?;
        let rows = sqlx::query(
            "UPDATE messages SET receive_count = receive_count + 1, visible_at = $2, \
                 receipt = lower(hex(randomblob(16))) \
             WHERE seq IN (SELECT seq FROM messages WHERE queue = $1 AND dead = 0 AND visible_at <= $3 \
                           ORDER BY seq LIMIT $4) \
             RETURNING id, receipt, receive_count, body, seq",
        )
        .bind(&self.settings.name)
        .bind(now + millis(self.settings.visibility_timeout))
        .bind(now)
        .bind(i64::from(max.clamp(1, 10)))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| Error::backend(BACKEND, e))?;
        tx.commit().await.map_err(|e| Error::backend(BACKEND, e))?;
        let mut messages = rows
            .into_iter()
            .map(|row| -> Result<(i64, ReceivedMessage), sqlx::Error> {
                let count: i64 = row.try_get("receive_count")?;
                Ok((
                    row.try_get("seq")?,
                    ReceivedMessage {
                        message_id: row.try_get("id")?,
                        receipt: Receipt(row.try_get("receipt")?),
                        receive_count: u32::try_from(count).unwrap_or(u32::MAX),
                        body: row.try_get("body")?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::backend(BACKEND, e))?;
        messages.sort_by_key(|(seq, _)| *seq);
        Ok(messages.into_iter().map(|(_, m)| m).collect())
    }

    async fn update_by_receipt(&self, sql: &str, receipt: &Receipt, visible_at: i64) -> Result<()> {
        sqlx::query(sql)
            .bind(&receipt.0)
            .bind(visible_at)
            .execute(&self.pool)
            .await
            .map_err(|e| Error::backend(BACKEND, e))?;
        Ok(())
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send_later(&self, event: &EventEnvelope, delay: Duration) -> Result<()> {
        let body = serde_json::to_string(event).map_err(|e| Error::Invalid(e.to_string()))?;
        self.insert(&Uuid::now_v7().to_string(), &body, delay).await
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<ReceivedMessage>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.sent.notified();
            let messages = self.try_receive(max).await?;
            if !messages.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(messages);
            }
            let pause = POLL_INTERVAL.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            let _ = tokio::time::timeout(pause, notified).await;
        }
    }

    async fn ack(&self, receipt: &Receipt) -> Result<()> {
        sqlx::query("DELETE FROM messages WHERE receipt = $1 AND dead = 0")
            .bind(&receipt.0)
            .execute(&self.pool)
            .await
            .map_err(|e| Error::backend(BACKEND, e))?;
        Ok(())
    }

    async fn extend_visibility(&self, receipt: &Receipt, by: Duration) -> Result<()> {
        self.update_by_receipt(
            "UPDATE messages SET visible_at = $2 WHERE receipt = $1 AND dead = 0",
            receipt,
            now_ms() + millis(by),
        )
        .await
    }

    async fn release(&self, receipt: &Receipt) -> Result<()> {
        self.update_by_receipt(
            "UPDATE messages SET visible_at = $2, receipt = NULL WHERE receipt = $1 AND dead = 0",
            receipt,
            now_ms(),
        )
        .await?;
        self.sent.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, message: &ReceivedMessage) -> Result<()> {
        sqlx::query("UPDATE messages SET dead = 1, receipt = NULL WHERE receipt = $1")
            .bind(&message.receipt.0)
            .execute(&self.pool)
            .await
            .map_err(|e| Error::backend(BACKEND, e))?;
        Ok(())
    }

    async fn list_dead_letters(&self, max: u32) -> Result<Vec<DeadLetter>> {
        let rows = sqlx::query("SELECT id, body FROM messages WHERE queue = $1 AND dead = 1 ORDER BY seq LIMIT $2")
            .bind(&self.settings.name)
            .bind(i64::from(max))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| Error::backend(BACKEND, e))?;
        rows.into_iter()
            .map(|row| Ok(DeadLetter { message_id: row.try_get("id")?, body: row.try_get("body")? }))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| Error::backend(BACKEND, e))
    }

    async fn redrive(&self, max: u32) -> Result<u32> {
        let moved = sqlx::query(
            "UPDATE messages SET dead = 0, receive_count = 0, visible_at = $2, receipt = NULL \
             WHERE seq IN (SELECT seq FROM messages WHERE queue = $1 AND dead = 1 ORDER BY seq LIMIT $3)",
        )
        .bind(&self.settings.name)
        .bind(now_ms())
        .bind(i64::from(max))
        .execute(&self.pool)
        .await
        .map_err(|e| Error::backend(BACKEND, e))?;
        self.sent.notify_waiters();
        Ok(u32::try_from(moved.rows_affected()).unwrap_or(u32::MAX))
    }

    fn max_receives(&self) -> u32 {
        self.settings.max_receives
    }

    async fn depth(&self) -> Result<QueueDepth> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(dead = 0), 0) AS active, COALESCE(SUM(dead = 1), 0) AS dead \
             FROM messages WHERE queue = $1",
        )
        .bind(&self.settings.name)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| Error::backend(BACKEND, e))?;
        let get = |col: &str| -> Result<u64> {
            let n: i64 = row.try_get(col).map_err(|e| Error::backend(BACKEND, e))?;
            Ok(u64::try_from(n).unwrap_or_default())
        };
        Ok(QueueDepth { active: get("active")?, dead: get("dead")? })
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| Error::unavailable(BACKEND, e))?;
        Ok(())
    }
}
