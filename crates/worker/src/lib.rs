//! The worker: consumes events from the queue and dispatches them to their
//! handlers, with idempotency, retries with backoff, visibility extension
//! for long jobs and a dead-letter queue for poison.
//!
//! Per message:
//! 1. A body that is not an event envelope, or an event type nobody
//!    handles, is dead-lettered at once: retrying cannot fix it.
//! 2. An event whose idempotency key was already processed is acknowledged
//!    without effect. One with the same key being handled right now (a
//!    duplicate delivered alongside, here or on another replica: the key is
//!    locked in the cache) comes back shortly and is then a duplicate.
//! 3. A handler bound for a downstream service whose circuit is open
//!    ([`breaker`]) is not called; the message comes back after the
//!    cooldown. Both waits requeue the event as a fresh message, so waiting
//!    spends none of its receives. While a handler runs, a heartbeat extends
//!    the message's visibility and the key's lock.
//! 4. Success records the key as processed, then acknowledges. A retry-safe
//!    failure hides the message for an exponential backoff with jitter; any
//!    other failure dead-letters it. Failed attempts count across requeued
//!    copies, and an event out of them (`max_receives`) is dead-lettered, as
//!    the queue itself does after `max_receives` receipts: nothing retries
//!    forever and nothing is dropped.

pub mod breaker;
mod handlers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use devops_adapters::cache::{Cache, LockToken};
use devops_adapters::queue::{Queue, ReceivedMessage};
use devops_errors::ErrorCode;
use devops_models::EventEnvelope;
use devops_runtime::{Backend, ServiceContext, http, ops};
use devops_store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use handlers::{PullRequestChanged, RepoPushed, TenantCreated};

pub const NAME: &str = "worker";
/// The cache holds the per-key locks that keep concurrent duplicates apart.
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Queue, Backend::Cache];

pub const EVENTS_TOTAL: &str = "worker_events_total";
pub const EVENT_DURATION_SECONDS: &str = "worker_event_duration_seconds";

const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A message whose key another consumer holds comes back after this.
const BUSY_KEY_DELAY: Duration = Duration::from_secs(2);

/// A handler's failure, with the code that decides retry or dead letter.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HandlerError {
    pub code: ErrorCode,
    pub message: String,
}

impl HandlerError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl<E: devops_errors::HasErrorCode> From<E> for HandlerError {
    fn from(err: E) -> Self {
        Self::new(err.code(), err.to_string())
    }
}

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError>;

    /// The service this handler calls, whose outages open a circuit.
    fn downstream(&self) -> Option<&'static str> {
        None
    }
}

/// Event type → handler.
#[derive(Clone, Default)]
pub struct Handlers(HashMap<&'static str, Arc<dyn Handler>>);

impl Handlers {
    pub fn with(mut self, event_type: &'static str, handler: impl Handler) -> Self {
        self.0.insert(event_type, Arc::new(handler));
        self
    }

    /// The handlers of this build.
    pub fn standard(
        store: Arc<dyn Store>,
        indexer: devops_runtime::clients::Indexer,
        reviewer: devops_runtime::clients::Reviewer,
    ) -> Self {
        let review = || PullRequestChanged::new(reviewer.clone());
        Handlers::default()
            .with("tenant.created", TenantCreated::new(store))
            .with("repo.push", RepoPushed::new(indexer))
            .with("pull_request.opened", review())
            .with("pull_request.synchronize", review())
            .with("pull_request.reopened", review())
    }
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Duplicate,
    Retried,
    /// Another consumer is handling the same key, or the downstream's
    /// circuit is open: it comes back shortly, as a fresh message.
    Deferred,
    DeadLettered,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Retried => "retried",
            Outcome::Deferred => "deferred",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

#[derive(Clone)]
pub struct Consumer {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub cache: Arc<dyn Cache>,
    pub breakers: Arc<breaker::Breakers>,
    pub handlers: Handlers,
    pub visibility_timeout: Duration,
}

impl Consumer {
    /// Handles one received message to its end.
    pub async fn process(&self, message: ReceivedMessage) -> devops_runtime::Result<Outcome> {
        let started = Instant::now();
        let outcome = self.dispatch(&message).await?;
        let event_type = message.envelope().map(|e| e.event_type).unwrap_or_else(|_| "malformed".to_owned());
        let labels = [("event_type", event_type), ("outcome", outcome.as_str().to_owned())];
        metrics::counter!(EVENTS_TOTAL, &labels).increment(1);
        metrics::histogram!(EVENT_DURATION_SECONDS, &labels).record(started.elapsed().as_secs_f64());
        Ok(outcome)
    }

    async fn dispatch(&self, message: &ReceivedMessage) -> devops_runtime::Result<Outcome> {
        let event = match message.envelope() {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(message_id = %message.message_id, error = %err, "malformed event; dead-lettering");
                self.queue.dead_letter(message).await?;
                return Ok(Outcome::DeadLettered);
            }
        };
        let span = tracing::info_span!("worker.event", event_type = %event.event_type, event_id = %event.id, tenant = %event.tenant_id);
        devops_telemetry::continue_trace(&span, &event.trace_context);
        // Instrumented, never entered: a guard held across an await leaves the
        // span current on the thread for whatever task runs there next, which
        // panics once the span has closed.
        self.dispatch_event(message, &event).instrument(span).await
    }

    async fn dispatch_event(
        &self,
        message: &ReceivedMessage,
        event: &EventEnvelope,
    ) -> devops_runtime::Result<Outcome> {
        if self.store.is_processed(event.tenant_id, &event.idempotency_key).await? {
            self.queue.ack(&message.receipt).await?;
            return Ok(Outcome::Duplicate);
        }
        let Some(handler) = self.handlers.0.get(event.event_type.as_str()).cloned() else {
            tracing::warn!(event_type = %event.event_type, "no handler for event type; dead-lettering");
            self.queue.dead_letter(message).await?;
            return Ok(Outcome::DeadLettered);
        };
        let lock_key = event_lock_key(event.tenant_id, &event.idempotency_key);
        let Some(token) = self.cache.try_lock(&lock_key, self.visibility_timeout).await? else {
            self.defer(message, event, BUSY_KEY_DELAY).await?;
            return Ok(Outcome::Deferred);
        };
        // Checked again under the lock: the holder may have just finished.
        if self.store.is_processed(event.tenant_id, &event.idempotency_key).await? {
            self.cache.unlock(&lock_key, &token).await?;
            self.queue.ack(&message.receipt).await?;
            return Ok(Outcome::Duplicate);
        }
        let downstream = handler.downstream();
        if let Some(name) = downstream
            && let breaker::Admission::Rejected(wait) = self.breakers.admit(name)
        {
            self.cache.unlock(&lock_key, &token).await?;
            self.defer(message, event, wait.max(BUSY_KEY_DELAY)).await?;
            return Ok(Outcome::Deferred);
        }
        let result = self.with_heartbeat(message, (&lock_key, &token), handler.handle(event)).await;
        if let Some(name) = downstream {
            match &result {
                Ok(()) => self.breakers.succeeded(name),
                Err(err) if err.code.retry_safe() => self.breakers.failed(name),
                // The downstream answered: a bad request is not an outage.
                Err(_) => self.breakers.succeeded(name),
            }
        }
        let outcome = self.settle(message, event, result).await;
        if let Err(err) = self.cache.unlock(&lock_key, &token).await {
            tracing::warn!(error = %err, "cannot release the event lock; it expires on its own");
        }
        outcome
    }

    async fn settle(
        &self,
        message: &ReceivedMessage,
        event: &EventEnvelope,
        result: Result<(), HandlerError>,
    ) -> devops_runtime::Result<Outcome> {
        match result {
            Ok(()) => {
                self.store.mark_processed(event.tenant_id, &event.idempotency_key, &event.event_type).await?;
                self.queue.ack(&message.receipt).await?;
                Ok(Outcome::Processed)
            }
            Err(err) if err.code.retry_safe() => {
                // The queue counts this copy's receipts; earlier copies'
                // failures ride in the event.
                let attempt = event.failed_attempts.saturating_add(message.receive_count);
                if attempt >= self.queue.max_receives() {
                    tracing::error!(error = %err, attempt, "handler failed on every attempt; dead-lettering");
                    self.queue.dead_letter(message).await?;
                    return Ok(Outcome::DeadLettered);
                }
                let delay = backoff(attempt);
                tracing::warn!(error = %err, attempt, retry_in_ms = delay.as_millis() as u64, "handler failed; will retry");
                self.queue.extend_visibility(&message.receipt, delay).await?;
                Ok(Outcome::Retried)
            }
            Err(err) => {
                tracing::error!(error = %err, "handler failed permanently; dead-lettering");
                self.queue.dead_letter(message).await?;
                Ok(Outcome::DeadLettered)
            }
        }
    }

    /// Puts an event that cannot run yet back for `wait` as a fresh message:
    /// waiting on a busy key or an open circuit must not spend the message's
    /// receives, or an outage longer than `max_receives` deferrals would
    /// dead-letter it. The copy carries the failures of the receipts before
    /// this one, so an event that keeps failing still runs out of attempts.
    /// It is sent before the original is acknowledged: a failure between the
    /// two leaves a duplicate, which idempotency absorbs, never a loss; if the
    /// copy cannot be sent the original waits in place.
    async fn defer(
        &self,
        message: &ReceivedMessage,
        event: &EventEnvelope,
        wait: Duration,
    ) -> devops_runtime::Result<()> {
        let copy = EventEnvelope {
            failed_attempts: event.failed_attempts.saturating_add(message.receive_count.saturating_sub(1)),
            ..event.clone()
        };
        match self.queue.send_later(&copy, wait).await {
            Ok(()) => self.queue.ack(&message.receipt).await.inspect_err(|err| {
                tracing::warn!(error = %err, "deferred event requeued but not acknowledged; a duplicate will follow");
            })?,
            Err(err) => {
                tracing::warn!(error = %err, "cannot requeue a deferred event; it waits in place");
                self.queue.extend_visibility(&message.receipt, wait).await?;
            }
        }
        Ok(())
    }

    /// Runs `work` while extending the message's visibility and the event's
    /// lock every half timeout: a handler that outlasts the timeout keeps both,
    /// so no other copy of the event runs beside it.
    async fn with_heartbeat<T>(
        &self,
        message: &ReceivedMessage,
        (lock_key, token): (&str, &LockToken),
        work: impl Future<Output = T>,
    ) -> T {
        let period = self.visibility_timeout / 2;
        let heartbeat = async {
            loop {
                tokio::time::sleep(period).await;
                if let Err(err) = self.queue.extend_visibility(&message.receipt, self.visibility_timeout).await {
                    tracing::warn!(error = %err, "cannot extend visibility");
                }
                match self.cache.extend_lock(lock_key, token, self.visibility_timeout).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!("the event's lock expired while its handler ran"),
                    Err(err) => tracing::warn!(error = %err, "cannot extend the event's lock"),
                }
            }
        };
        tokio::select! {
            result = work => result,
            never = heartbeat => never,
        }
    }

    /// Receives and processes until shutdown, at most `concurrency` at once,
    /// then waits for in-flight messages up to the drain timeout. Messages
    /// still running then are not acknowledged and will be redelivered.
    pub async fn run(&self, concurrency: usize, wait: Duration, shutdown: CancellationToken) {
        let mut in_flight = JoinSet::new();
        while !shutdown.is_cancelled() {
            let capacity = concurrency.saturating_sub(in_flight.len());
            if capacity == 0 {
                in_flight.join_next().await;
                continue;
            }
            let received = tokio::select! {
                () = shutdown.cancelled() => break,
                received = self.queue.receive(u32::try_from(capacity.min(10)).unwrap_or(10), wait) => received,
            };
            match received {
                Ok(messages) => {
                    for message in messages {
                        let consumer = self.clone();
                        in_flight.spawn(async move {
                            if let Err(err) = consumer.process(message).await {
                                tracing::warn!(error = %err, "message left for redelivery");
                            }
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "receive failed; backing off");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
            while in_flight.try_join_next().is_some() {}
        }
        let drained =
            tokio::time::timeout(http::DRAIN_TIMEOUT, async { while in_flight.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = in_flight.len(),
                "in-flight events abandoned at shutdown; they will be redelivered"
            );
            in_flight.abort_all();
        }
    }
}

/// The cache lock a consumer holds while it handles an event's key.
pub fn event_lock_key(tenant: devops_models::TenantId, idempotency_key: &str) -> String {
    format!("event-lock:{tenant}:{idempotency_key}")
}

/// Exponential backoff with full jitter: a random delay up to
/// `BACKOFF_BASE * 2^(attempt-1)`, capped.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(BACKOFF_MAX);
    let jitter = uuid::Uuid::new_v4().as_u128() % (ceiling.as_millis().max(1));
    Duration::from_millis(u64::try_from(jitter).unwrap_or(0)).max(Duration::from_millis(100))
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let store = ctx.backends.store()?;
    let consumer = Consumer {
        cache: ctx.backends.cache()?,
        breakers: Arc::new(breaker::Breakers::new(
            ctx.config.worker.breaker_threshold,
            Duration::from_secs(ctx.config.worker.breaker_cooldown_secs),
        )),
        handlers: Handlers::standard(
            store.clone(),
            devops_runtime::clients::indexer(&ctx.config)?,
            devops_runtime::clients::reviewer(&ctx.config)?,
        ),
        store,
        queue: ctx.backends.queue()?,
        visibility_timeout: Duration::from_secs(ctx.config.queue.visibility_timeout_secs),
    };
    let listener = http::bind(ctx.config.services.worker.listen).await?;
    let ops = http::serve(listener, ops::router(ctx.backends.readiness()), ctx.shutdown.clone());
    let consume = consumer.run(
        ctx.config.worker.concurrency,
        Duration::from_secs(ctx.config.worker.receive_wait_secs),
        ctx.shutdown.clone(),
    );
    let (served, ()) = tokio::join!(ops, consume);
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..40 {
            let delay = backoff(attempt);
            assert!(delay >= Duration::from_millis(100));
            assert!(delay <= BACKOFF_MAX);
        }
        let ceiling = |attempt| BACKOFF_BASE.saturating_mul(1u32 << (attempt - 1));
        assert!((0..50).all(|_| backoff(1) <= ceiling(1)));
        assert!((0..50).all(|_| backoff(3) <= ceiling(3)));
    }
}
