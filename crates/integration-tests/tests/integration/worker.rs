//! The worker's consumer against both queues: idempotency, poison,
//! retries and the DLQ.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use devops_adapters::queue::Queue;
use devops_errors::ErrorCode;
use devops_models::EventEnvelope;
use devops_store::Store;
use devops_worker::{Consumer, Handler, HandlerError, Handlers, Outcome};

/// Counts calls, and fails with `fail_with` if set.
#[derive(Clone, Default)]
struct Probe {
    calls: Arc<AtomicU32>,
    fail_with: Option<ErrorCode>,
}

#[async_trait]
impl Handler for Probe {
    async fn handle(&self, _event: &EventEnvelope) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.fail_with {
            Some(code) => Err(HandlerError::new(code, "injected failure")),
            None => Ok(()),
        }
    }
}

fn consumer(store: Arc<dyn Store>, queue: Arc<dyn Queue>, probe: &Probe) -> Consumer {
    Consumer {
        handlers: Handlers::default().with("probe.event", probe.clone()),
        store,
        queue,
        cache: Arc::new(devops_adapters::cache::MemoryCache::new()),
        breakers: Arc::new(devops_worker::breaker::Breakers::new(2, Duration::from_secs(2))),
        visibility_timeout: Duration::from_secs(1),
    }
}

async fn receive(consumer: &Consumer) -> devops_adapters::queue::ReceivedMessage {
    for _ in 0..5 {
        if let Some(message) =
            consumer.queue.receive(1, Duration::from_secs(1)).await.expect("receive").into_iter().next()
        {
            return message;
        }
    }
    panic!("no message arrived");
}

async fn next(consumer: &Consumer) -> Outcome {
    let message = receive(consumer).await;
    consumer.process(message).await.expect("process")
}

macro_rules! worker_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = devops_integration_tests::sqlite_store(dir.path()).await;
                    super::$name(store, crate::queue::sqlite_queue(dir.path(), 2).await).await;
                }
            )*
        }
        mod sqs {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(endpoint) = devops_integration_tests::aws_endpoint() else { return };
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = devops_integration_tests::sqlite_store(dir.path()).await;
                    super::$name(store, crate::queue::sqs_queue(&endpoint, 2).await).await;
                }
            )*
        }
    };
}

worker_suite!(
    duplicate_deliveries_have_one_effect,
    unknown_event_types_are_dead_lettered,
    transient_failures_retry_then_dead_letter,
    permanent_failures_dead_letter_at_once,
    a_crash_mid_message_redelivers_and_processes_once,
    waiting_on_a_busy_key_spends_no_receives,
    an_event_that_keeps_failing_runs_out_of_attempts_across_deferrals,
);

async fn tenant_event(store: &dyn Store, key: &str) -> EventEnvelope {
    let tenant = store.create_tenant(&devops_integration_tests::unique("w")).await.expect("tenant");
    EventEnvelope::new("probe.event", tenant.id, key, serde_json::json!({}))
}

async fn duplicate_deliveries_have_one_effect(store: Arc<dyn Store>, queue: Arc<dyn Queue>) {
    let probe = Probe::default();
    let consumer = consumer(store.clone(), queue.clone(), &probe);
    let event = tenant_event(store.as_ref(), "delivery-1").await;
    queue.send(&event).await.expect("send");
    queue.send(&event).await.expect("send duplicate");
    assert_eq!(next(&consumer).await, Outcome::Processed);
    assert_eq!(next(&consumer).await, Outcome::Duplicate);
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
    assert!(store.is_processed(event.tenant_id, "delivery-1").await.expect("processed"));
}

async fn unknown_event_types_are_dead_lettered(store: Arc<dyn Store>, queue: Arc<dyn Queue>) {
    let probe = Probe::default();
    let consumer = consumer(store.clone(), queue.clone(), &probe);
    let mut event = tenant_event(store.as_ref(), "unknown-1").await;
    event.event_type = "nobody.handles".into();
    queue.send(&event).await.expect("send");
    assert_eq!(next(&consumer).await, Outcome::DeadLettered);
    assert_eq!(queue.list_dead_letters(10).await.expect("dead").len(), 1, "kept, not dropped");
}

async fn transient_failures_retry_then_dead_letter(store: Arc<dyn Store>, queue: Arc<dyn Queue>) {
    let probe = Probe { fail_with: Some(ErrorCode::Unavailable), ..Probe::default() };
    let consumer = consumer(store.clone(), queue.clone(), &probe);
    queue.send(&tenant_event(store.as_ref(), "flaky-1").await).await.expect("send");
    assert_eq!(next(&consumer).await, Outcome::Retried);
    // Backoff hides it for a while; wait past it, then the second attempt.
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        if let Some(message) = queue.receive(1, Duration::from_secs(1)).await.expect("receive").into_iter().next() {
            outcomes.push(consumer.process(message).await.expect("process"));
        }
        if !queue.list_dead_letters(10).await.expect("dead").is_empty() {
            break;
        }
    }
    assert_eq!(outcomes, [Outcome::DeadLettered], "the second failure is the last of two attempts");
    assert_eq!(probe.calls.load(Ordering::SeqCst), 2);
    assert_eq!(queue.list_dead_letters(10).await.expect("dead").len(), 1);
}

async fn permanent_failures_dead_letter_at_once(store: Arc<dyn Store>, queue: Arc<dyn Queue>) {
    let probe = Probe { fail_with: Some(ErrorCode::InvalidArgument), ..Probe::default() };
    let consumer = consumer(store.clone(), queue.clone(), &probe);
    queue.send(&tenant_event(store.as_ref(), "bad-1").await).await.expect("send");
    assert_eq!(next(&consumer).await, Outcome::DeadLettered);
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
    assert_eq!(queue.list_dead_letters(10).await.expect("dead").len(), 1);
}

#[tokio::test]
async fn malformed_bodies_are_dead_lettered_not_dropped() {
    let Some(endpoint) = devops_integration_tests::aws_endpoint() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = devops_integration_tests::sqlite_store(dir.path()).await;
    let client = aws_sdk_sqs::Client::new(&devops_integration_tests::moto_sdk_config(&endpoint).await);
    let settings = devops_adapters::queue::QueueSettings {
        name: devops_integration_tests::unique("q-"),
        max_receives: 2,
        visibility_timeout: Duration::from_secs(1),
    };
    let sqs = devops_adapters::queue::SqsQueue::open(client.clone(), settings).await.expect("open");
    client.send_message().queue_url(sqs.queue_url()).message_body("{not an envelope").send().await.expect("send raw");
    let queue: Arc<dyn Queue> = Arc::new(sqs);
    let consumer = consumer(store, queue.clone(), &Probe::default());
    assert_eq!(next(&consumer).await, Outcome::DeadLettered);
    let dead = queue.list_dead_letters(10).await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "{not an envelope", "the body is kept as it was");
}

/// A downstream that is down until told otherwise.
#[derive(Clone, Default)]
struct Flaky {
    calls: Arc<AtomicU32>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl Handler for Flaky {
    async fn handle(&self, _event: &EventEnvelope) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(HandlerError::new(ErrorCode::Unavailable, "downstream is down"))
        } else {
            Ok(())
        }
    }

    fn downstream(&self) -> Option<&'static str> {
        Some("flaky-service")
    }
}

/// A consumer of `flaky`, which starts down, behind a circuit that opens
/// after `threshold` failures for `cooldown`.
fn flaky_consumer(
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    flaky: &Flaky,
    threshold: u32,
    cooldown: Duration,
) -> Consumer {
    flaky.down.store(true, Ordering::SeqCst);
    Consumer {
        handlers: Handlers::default().with("probe.event", flaky.clone()),
        store,
        queue,
        cache: Arc::new(devops_adapters::cache::MemoryCache::new()),
        breakers: Arc::new(devops_worker::breaker::Breakers::new(threshold, cooldown)),
        visibility_timeout: Duration::from_secs(1),
    }
}

/// While the downstream is down its circuit opens and messages wait on the
/// queue without calling it; when it is back, every message is processed
/// once and none is lost.
async fn an_outage_opens_the_circuit_and_loses_nothing(store: Arc<dyn Store>, queue: Arc<dyn Queue>) {
    let flaky = Flaky::default();
    let consumer = flaky_consumer(store.clone(), queue.clone(), &flaky, 2, Duration::from_secs(2));
    let tenant = store.create_tenant(&devops_integration_tests::unique("w")).await.expect("tenant");
    let keys = ["outage-1", "outage-2", "outage-3", "outage-4"];
    for key in keys {
        queue.send(&EventEnvelope::new("probe.event", tenant.id, key, serde_json::json!({}))).await.expect("send");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut deferred_while_down = 0;
    let mut processed = 0;
    while processed < keys.len() {
        assert!(std::time::Instant::now() < deadline, "not every message was processed: {processed}");
        let Some(message) = queue.receive(1, Duration::from_secs(1)).await.expect("receive").into_iter().next() else {
            continue;
        };
        let calls_before = flaky.calls.load(Ordering::SeqCst);
        match consumer.process(message).await.expect("process") {
            Outcome::Deferred => {
                assert_eq!(flaky.calls.load(Ordering::SeqCst), calls_before, "an open circuit makes no call");
                deferred_while_down += 1;
                // The downstream comes back once the circuit has held messages back.
                flaky.down.store(false, Ordering::SeqCst);
            }
            Outcome::Processed => processed += 1,
            Outcome::Retried => assert!(flaky.down.load(Ordering::SeqCst)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(deferred_while_down >= 1, "the circuit opened");
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 2 + 4, "two failures open it; then each message once");
    for key in keys {
        assert!(store.is_processed(tenant.id, key).await.expect("processed"), "{key}");
    }
    assert!(queue.list_dead_letters(10).await.expect("dead").is_empty(), "nothing dead-lettered");
}

/// A key held by another consumer for longer than the message has
/// receives: every receipt is deferred, and each deferral requeues a fresh
/// copy, so once the key is free the event is processed, not dead-lettered.
async fn waiting_on_a_busy_key_spends_no_receives(store: Arc<dyn Store>, queue: Arc<dyn Queue>) {
    let probe = Probe::default();
    let consumer = consumer(store.clone(), queue.clone(), &probe);
    let event = tenant_event(store.as_ref(), "busy-key").await;
    let lock = devops_worker::event_lock_key(event.tenant_id, &event.idempotency_key);
    let token = consumer.cache.try_lock(&lock, Duration::from_secs(60)).await.expect("lock").expect("free");
    queue.send(&event).await.expect("send");
    for attempt in 1..=3 {
        let message = receive(&consumer).await;
        assert_eq!(message.receive_count, 1, "deferral {attempt} spent no receive");
        assert_eq!(consumer.process(message).await.expect("process"), Outcome::Deferred);
    }
    consumer.cache.unlock(&lock, &token).await.expect("unlock");
    assert_eq!(next(&consumer).await, Outcome::Processed);
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
    assert!(queue.list_dead_letters(10).await.expect("dead").is_empty(), "nothing dead-lettered");
}

/// An event whose every call fails keeps opening its downstream's circuit,
/// so it is deferred (requeued as a fresh message) between attempts; its
/// failures still add up across the copies and it is dead-lettered after
/// `max_receives` (2) calls, rather than cycling forever.
async fn an_event_that_keeps_failing_runs_out_of_attempts_across_deferrals(
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
) {
    let flaky = Flaky::default();
    let consumer = flaky_consumer(store.clone(), queue.clone(), &flaky, 1, Duration::from_millis(1500));
    queue.send(&tenant_event(store.as_ref(), "always-fails").await).await.expect("send");
    let mut outcomes = Vec::new();
    while outcomes.last() != Some(&Outcome::DeadLettered) {
        assert!(outcomes.len() < 8, "still cycling: {outcomes:?}");
        outcomes.push(next(&consumer).await);
    }
    assert!(outcomes.contains(&Outcome::Deferred), "the open circuit deferred it: {outcomes:?}");
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 2, "{outcomes:?}");
    assert_eq!(queue.list_dead_letters(10).await.expect("dead").len(), 1);
}

mod outage {
    #[tokio::test]
    async fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = devops_integration_tests::sqlite_store(dir.path()).await;
        super::an_outage_opens_the_circuit_and_loses_nothing(store, crate::queue::sqlite_queue(dir.path(), 10).await)
            .await;
    }

    #[tokio::test]
    async fn sqs() {
        let Some(endpoint) = devops_integration_tests::aws_endpoint() else { return };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = devops_integration_tests::sqlite_store(dir.path()).await;
        super::an_outage_opens_the_circuit_and_loses_nothing(store, crate::queue::sqs_queue(&endpoint, 10).await).await;
    }
}

/// Hangs on its first call (the worker dies there), then has its effect.
#[derive(Clone, Default)]
struct DiesOnce {
    calls: Arc<AtomicU32>,
    effects: Arc<AtomicU32>,
    started: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Handler for DiesOnce {
    async fn handle(&self, _event: &EventEnvelope) -> Result<(), HandlerError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.started.notify_one();
            std::future::pending::<()>().await;
        }
        self.effects.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A worker killed mid-message (its task aborted: no ack, no unlock, no more
/// heartbeats): the message comes back after its visibility timeout, another
/// worker processes it, and it has exactly one effect.
async fn a_crash_mid_message_redelivers_and_processes_once(store: Arc<dyn Store>, queue: Arc<dyn Queue>) {
    let handler = DiesOnce::default();
    let cache: Arc<dyn devops_adapters::cache::Cache> = Arc::new(devops_adapters::cache::MemoryCache::new());
    let worker = || Consumer {
        handlers: Handlers::default().with("probe.event", handler.clone()),
        store: store.clone(),
        queue: queue.clone(),
        cache: cache.clone(),
        breakers: Arc::new(devops_worker::breaker::Breakers::new(5, Duration::from_secs(30))),
        visibility_timeout: Duration::from_secs(1),
    };
    let event = tenant_event(store.as_ref(), "crash-1").await;
    queue.send(&event).await.expect("send");
    let doomed = worker();
    let message = loop {
        if let Some(m) = queue.receive(1, Duration::from_secs(1)).await.expect("receive").into_iter().next() {
            break m;
        }
    };
    let running = tokio::spawn(async move { doomed.process(message).await });
    handler.started.notified().await;
    running.abort();
    let _ = running.await;

    let survivor = worker();
    assert_eq!(next(&survivor).await, Outcome::Processed, "redelivered after the visibility timeout");
    assert_eq!(handler.effects.load(Ordering::SeqCst), 1);
    assert!(store.is_processed(event.tenant_id, "crash-1").await.expect("processed"));
    assert!(queue.receive(1, Duration::from_secs(2)).await.expect("receive").is_empty(), "nothing left");
    assert!(queue.list_dead_letters(10).await.expect("dead").is_empty());
}

/// A gRPC peer that dies after reading a call, as a killed reviewer does,
/// leaves the caller a transport status with no code of ours: an outage to
/// retry. Classed as `Internal`, it dead-lettered a pull request's review.
#[tokio::test]
async fn a_peer_that_dies_mid_call_is_an_outage_to_retry() {
    use tokio::io::AsyncReadExt;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        // The preface, the settings and the call's headers; then the process "dies".
        let mut read = vec![0; 4096];
        let _ = socket.read(&mut read).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{address}")).expect("endpoint").connect_lazy();
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest { service: "devops_mcp.reviewer.v1.Reviewer".into() });
    let status =
        tokio::time::timeout(Duration::from_secs(10), call).await.expect("an answer").expect_err("the peer died");
    let code = devops_errors::ApiError::from(&status).code;
    assert!(code.retry_safe(), "{code:?} from {status:?} must be retried");
}

/// Takes its time over every event.
#[derive(Clone)]
struct Slow(Duration);

#[async_trait]
impl Handler for Slow {
    async fn handle(&self, _event: &EventEnvelope) -> Result<(), HandlerError> {
        tokio::time::sleep(self.0).await;
        Ok(())
    }
}

/// The event's lock lives as long as its handler, not just the visibility
/// timeout it was taken for: a second copy of the event cannot run beside a
/// slow first one.
#[tokio::test]
async fn a_handler_that_outlasts_the_timeout_keeps_its_event_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = devops_integration_tests::sqlite_store(dir.path()).await;
    let queue = crate::queue::sqlite_queue(dir.path(), 10).await;
    let consumer = Consumer {
        handlers: Handlers::default().with("probe.event", Slow(Duration::from_millis(2500))),
        store: store.clone(),
        queue: queue.clone(),
        cache: Arc::new(devops_adapters::cache::MemoryCache::new()),
        breakers: Arc::new(devops_worker::breaker::Breakers::new(2, Duration::from_secs(2))),
        visibility_timeout: Duration::from_secs(1),
    };
    let event = tenant_event(store.as_ref(), "slow").await;
    let lock = devops_worker::event_lock_key(event.tenant_id, &event.idempotency_key);
    queue.send(&event).await.expect("send");
    let message = receive(&consumer).await;
    let cache = consumer.cache.clone();
    let second_copy = async {
        tokio::time::sleep(Duration::from_millis(1800)).await;
        cache.try_lock(&lock, Duration::from_secs(5)).await.expect("lock")
    };
    let (outcome, taken) = tokio::join!(consumer.process(message), second_copy);
    assert!(taken.is_none(), "the lock expired under a running handler");
    assert_eq!(outcome.expect("process"), Outcome::Processed);
}
