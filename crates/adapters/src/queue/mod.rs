//! The event queue: receive, acknowledge, extend visibility, dead letters.
//! See `design.md` beside this file for the semantics both implementations share.

mod sqlite;
mod sqs;

use std::time::Duration;

use async_trait::async_trait;
use devops_models::EventEnvelope;

pub use sqlite::SqliteQueue;
pub use sqs::SqsQueue;

use crate::Result;

/// Opaque handle for one receipt of a message; only the latest receipt of a
/// message can acknowledge it or extend its visibility.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt(pub String);

#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt: Receipt,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// The raw body. A body that is not an [`EventEnvelope`] is poison: the
    /// consumer moves it to the DLQ with [`Queue::dead_letter`].
    pub body: String,
}

impl ReceivedMessage {
    pub fn envelope(&self) -> Result<EventEnvelope, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Messages waiting or in flight.
    pub active: u64,
    pub dead: u64,
}

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    async fn send(&self, event: &EventEnvelope) -> Result<()> {
        self.send_later(event, Duration::ZERO).await
    }
    /// Sends a message that becomes visible only after `delay` (at most 15
    /// minutes, SQS's limit), with a receive count of its own.
    async fn send_later(&self, event: &EventEnvelope, delay: Duration) -> Result<()>;
    /// Up to `max` visible messages, waiting up to `wait` for the first. Each
    /// becomes invisible for the visibility timeout. A message received
    /// `max_receives` times moves to the DLQ instead of being delivered again.
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<ReceivedMessage>>;
    /// The message had its effect: delete it.
    async fn ack(&self, receipt: &Receipt) -> Result<()>;
    /// Keeps a long-running message invisible for `by` from now.
    async fn extend_visibility(&self, receipt: &Receipt, by: Duration) -> Result<()>;
    /// Makes the message visible again now (graceful shutdown, retry sooner).
    async fn release(&self, receipt: &Receipt) -> Result<()>;
    /// Moves a message straight to the DLQ (poison that retrying cannot fix).
    async fn dead_letter(&self, message: &ReceivedMessage) -> Result<()>;
    /// Up to `max` dead letters, oldest first, without removing them.
    async fn list_dead_letters(&self, max: u32) -> Result<Vec<DeadLetter>>;
    /// Moves up to `max` dead letters back onto the queue; returns how many moved.
    async fn redrive(&self, max: u32) -> Result<u32>;
    /// Receipts after which a message moves to the DLQ.
    fn max_receives(&self) -> u32;
    /// Approximate depths, for metrics and readiness.
    async fn depth(&self) -> Result<QueueDepth>;
    async fn ping(&self) -> Result<()>;
}

/// The longest delay [`Queue::send_later`] honours: SQS's `DelaySeconds` limit.
pub const MAX_SEND_DELAY: Duration = Duration::from_secs(900);

/// What both implementations are configured with.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub name: String,
    pub max_receives: u32,
    pub visibility_timeout: Duration,
}

impl QueueSettings {
    pub fn dlq_name(&self) -> String {
        format!("{}-dlq", self.name)
    }
}
