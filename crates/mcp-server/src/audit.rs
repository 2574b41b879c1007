//! The audit record of tool calls, written off the request path in batches.
//!
//! One insert per call made the audit log the busiest writer of the whole
//! server under load (docs/benchmarks.md); one statement per batch costs a
//! fraction of that. Entries wait in a bounded queue: when it is full a call
//! waits for room rather than losing its record, and closing the writer
//! writes whatever is still queued.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use devops_models::{NewAuditEntry, TenantId, TimedAuditEntry};
use devops_store::Store;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Entries queued before a call has to wait for the writer.
const QUEUE: usize = 8192;
/// Entries written in one statement, at most.
const BATCH: usize = 256;
/// How long a batch that is not full waits for more entries. Under light load
/// calls arrive one at a time, and a commit (with its sync to disk) per call
/// slowed every read of the embedded store; this bounds commits to 100 a
/// second, at the cost of entries reaching the log up to 10 ms later.
const LINGER: Duration = Duration::from_millis(10);

pub struct AuditWriter {
    queue: mpsc::Sender<TimedAuditEntry>,
    closing: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// Starts the task that writes queued entries to `store`.
    pub fn start(store: Arc<dyn Store>) -> AuditWriter {
        let (queue, entries) = mpsc::channel(QUEUE);
        let closing = CancellationToken::new();
        let task = tokio::spawn(write_batches(store, entries, closing.clone()));
        AuditWriter { queue, closing, task: Mutex::new(Some(task)) }
    }

    /// Queues an entry that happened now.
    pub async fn record(&self, tenant: TenantId, entry: NewAuditEntry) {
        let timed = TimedAuditEntry { tenant, at: Utc::now(), entry };
        if let Err(refused) = self.queue.send(timed).await {
            tracing::error!(action = %refused.0.entry.action, "audit entry after the audit writer closed; not recorded");
        }
    }

    /// Writes what is queued and stops; later entries are refused (and logged).
    pub async fn close(&self) {
        self.closing.cancel();
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        if let Some(task) = task
            && let Err(err) = task.await
        {
            tracing::error!(error = %err, "the audit writer failed");
        }
    }
}

async fn write_batches(
    store: Arc<dyn Store>,
    mut entries: mpsc::Receiver<TimedAuditEntry>,
    closing: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = entries.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    return;
                }
                let linger = tokio::time::sleep(LINGER);
                tokio::pin!(linger);
                while batch.len() < BATCH {
                    let room = BATCH - batch.len();
                    tokio::select! {
                        more = entries.recv_many(&mut batch, room) => if more == 0 { break },
                        () = &mut linger => break,
                        () = closing.cancelled() => break,
                    }
                }
                write(store.as_ref(), &mut batch).await;
            }
            () = closing.cancelled() => {
                entries.close();
                while entries.recv_many(&mut batch, BATCH).await > 0 {
                    write(store.as_ref(), &mut batch).await;
                }
                return;
            }
        }
    }
}

/// Writes `batch` in one statement, or entry by entry when that fails, so
/// one bad entry (a tenant deleted meanwhile) costs only its own record.
async fn write(store: &dyn Store, batch: &mut Vec<TimedAuditEntry>) {
    if let Err(err) = store.append_audit_batch(batch).await {
        tracing::warn!(error = %err, entries = batch.len(), "audit batch failed; writing its entries one by one");
        for timed in batch.iter() {
            if let Err(err) = store.append_audit_batch(std::slice::from_ref(timed)).await {
                tracing::error!(error = %err, action = %timed.entry.action, "cannot audit tool call");
            }
        }
    }
    batch.clear();
}
