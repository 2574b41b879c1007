//! Relays events from the store's outbox to the queue. An event is marked
//! published only after the queue accepted it, so a crash in between
//! re-sends it; consumers are idempotent, so that duplicates nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use devops_adapters::queue::Queue;
use devops_store::Store;
use tokio_util::sync::CancellationToken;

const BATCH: u32 = 100;
const IDLE_POLL: Duration = Duration::from_millis(500);
const ERROR_BACKOFF: Duration = Duration::from_secs(2);

pub const OUTBOX_RELAYED_TOTAL: &str = "outbox_relayed_total";

/// Publishes one batch; returns how many events moved.
pub async fn relay_once(store: &dyn Store, queue: &dyn Queue) -> crate::Result<usize> {
    let pending = store.pending_outbox(BATCH).await?;
    for record in &pending {
        queue.send(&record.envelope).await?;
        store.mark_outbox_published(record.id, Utc::now()).await?;
        metrics::counter!(OUTBOX_RELAYED_TOTAL, "event_type" => record.envelope.event_type.clone()).increment(1);
    }
    Ok(pending.len())
}

/// Runs the relay until shutdown.
pub async fn run_relay(store: Arc<dyn Store>, queue: Arc<dyn Queue>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let pause = match relay_once(store.as_ref(), queue.as_ref()).await {
            Ok(n) if n as u32 == BATCH => Duration::ZERO,
            Ok(_) => IDLE_POLL,
            Err(err) => {
                tracing::warn!(error = %err, "outbox relay failed; retrying");
                ERROR_BACKOFF
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
