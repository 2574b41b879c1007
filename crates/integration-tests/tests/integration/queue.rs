//! One suite for both queues: the SQLite queue, and SQS on moto.

use std::sync::Arc;
use std::time::Duration;

use devops_adapters::queue::{Queue, QueueSettings, SqliteQueue, SqsQueue};
use devops_integration_tests::{moto_sdk_config, unique};
use devops_models::{EventEnvelope, TenantId};

const VISIBILITY: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(1);

fn settings(max_receives: u32) -> QueueSettings {
    QueueSettings { name: unique("q-"), max_receives, visibility_timeout: VISIBILITY }
}

pub async fn sqlite_queue(dir: &std::path::Path, max_receives: u32) -> Arc<dyn Queue> {
    Arc::new(SqliteQueue::open(&dir.join("queue.db"), settings(max_receives)).await.expect("open sqlite queue"))
}

pub async fn sqs_queue(endpoint: &str, max_receives: u32) -> Arc<dyn Queue> {
    let client = aws_sdk_sqs::Client::new(&moto_sdk_config(endpoint).await);
    Arc::new(SqsQueue::open(client, settings(max_receives)).await.expect("open sqs queue"))
}

macro_rules! queue_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    super::$name(super::sqlite_queue(dir.path(), 2).await).await;
                }
            )*
        }
        mod sqs {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(endpoint) = devops_integration_tests::aws_endpoint() else { return };
                    super::$name(super::sqs_queue(&endpoint, 2).await).await;
                }
            )*
        }
    };
}

queue_suite!(
    acknowledged_messages_are_gone,
    unacknowledged_messages_come_back_after_the_visibility_timeout,
    extended_messages_stay_hidden,
    exhausted_messages_move_to_the_dlq_and_can_be_redriven,
    poison_can_be_dead_lettered_at_once,
    messages_sent_later_wait_and_count_their_own_receives,
);

fn event(key: &str) -> EventEnvelope {
    EventEnvelope::new("test.event", TenantId::new(), key, serde_json::json!({ "key": key }))
}

async fn receive_one(queue: &dyn Queue) -> devops_adapters::queue::ReceivedMessage {
    for _ in 0..5 {
        if let Some(message) = queue.receive(1, WAIT).await.expect("receive").into_iter().next() {
            return message;
        }
    }
    panic!("no message arrived");
}

async fn acknowledged_messages_are_gone(queue: Arc<dyn Queue>) {
    let sent = event("ack");
    queue.send(&sent).await.expect("send");
    let message = receive_one(queue.as_ref()).await;
    assert_eq!(message.envelope().expect("envelope"), sent);
    assert_eq!(message.receive_count, 1);
    queue.ack(&message.receipt).await.expect("ack");
    tokio::time::sleep(VISIBILITY + Duration::from_millis(300)).await;
    assert!(queue.receive(10, Duration::ZERO).await.expect("receive").is_empty());
    queue.ping().await.expect("ping");
}

async fn unacknowledged_messages_come_back_after_the_visibility_timeout(queue: Arc<dyn Queue>) {
    queue.send(&event("redeliver")).await.expect("send");
    let first = receive_one(queue.as_ref()).await;
    assert!(queue.receive(10, Duration::ZERO).await.expect("receive").is_empty(), "hidden while in flight");
    tokio::time::sleep(VISIBILITY + Duration::from_millis(300)).await;
    let second = receive_one(queue.as_ref()).await;
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt, "every receipt has its own handle");
    queue.ack(&second.receipt).await.expect("ack");
}

async fn extended_messages_stay_hidden(queue: Arc<dyn Queue>) {
    queue.send(&event("extend")).await.expect("send");
    let message = receive_one(queue.as_ref()).await;
    queue.extend_visibility(&message.receipt, Duration::from_secs(4)).await.expect("extend");
    tokio::time::sleep(VISIBILITY + Duration::from_millis(500)).await;
    assert!(queue.receive(10, Duration::ZERO).await.expect("receive").is_empty(), "still hidden");
    queue.release(&message.receipt).await.expect("release");
    let again = receive_one(queue.as_ref()).await;
    assert_eq!(again.message_id, message.message_id, "released messages are visible at once");
    queue.ack(&again.receipt).await.expect("ack");
}

async fn exhausted_messages_move_to_the_dlq_and_can_be_redriven(queue: Arc<dyn Queue>) {
    let sent = event("poison-by-receives");
    queue.send(&sent).await.expect("send");
    for attempt in 1..=2 {
        let message = receive_one(queue.as_ref()).await;
        assert_eq!(message.receive_count, attempt);
        queue.release(&message.receipt).await.expect("release");
    }
    // The third receive finds the message exhausted and moves it to the DLQ.
    assert!(queue.receive(10, Duration::from_millis(500)).await.expect("receive").is_empty());
    let mut dead = Vec::new();
    for _ in 0..10 {
        dead = queue.list_dead_letters(10).await.expect("list dead");
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(dead.len(), 1, "exactly one dead letter");
    assert_eq!(serde_json::from_str::<EventEnvelope>(&dead[0].body).expect("body"), sent);
    assert_eq!(queue.list_dead_letters(10).await.expect("list twice").len(), 1, "listing does not consume");
    assert_eq!(queue.redrive(10).await.expect("redrive"), 1);
    let back = receive_one(queue.as_ref()).await;
    assert_eq!(back.envelope().expect("envelope"), sent);
    queue.ack(&back.receipt).await.expect("ack");
    assert!(queue.list_dead_letters(10).await.expect("list").is_empty());
}

async fn poison_can_be_dead_lettered_at_once(queue: Arc<dyn Queue>) {
    let sent = event("poison-now");
    queue.send(&sent).await.expect("send");
    let message = receive_one(queue.as_ref()).await;
    queue.dead_letter(&message).await.expect("dead letter");
    tokio::time::sleep(VISIBILITY + Duration::from_millis(300)).await;
    assert!(queue.receive(10, Duration::ZERO).await.expect("receive").is_empty());
    let dead = queue.list_dead_letters(10).await.expect("list");
    assert_eq!(dead.len(), 1);
    let depth = queue.depth().await.expect("depth");
    assert_eq!(depth.dead, 1);
}

#[tokio::test]
async fn sqs_start_fails_clearly_when_unreachable() {
    let client = aws_sdk_sqs::Client::new(&moto_sdk_config("http://127.0.0.1:9").await);
    let err = match SqsQueue::open(client, settings(2)).await {
        Ok(_) => panic!("no SQS listens on port 9"),
        Err(err) => err,
    };
    assert_eq!(devops_errors::HasErrorCode::code(&err), devops_errors::ErrorCode::Unavailable, "{err}");
}

/// A delayed copy of a message is hidden for its delay, then delivered with
/// a receive count of its own (what the worker's deferral relies on).
async fn messages_sent_later_wait_and_count_their_own_receives(queue: Arc<dyn Queue>) {
    let sent = event("later");
    queue.send(&sent).await.expect("send");
    let original = receive_one(queue.as_ref()).await;
    queue.send_later(&sent, Duration::from_secs(2)).await.expect("send later");
    queue.ack(&original.receipt).await.expect("ack");
    assert!(queue.receive(10, Duration::from_millis(1200)).await.expect("receive").is_empty(), "hidden for its delay");
    let copy = receive_one(queue.as_ref()).await;
    assert_eq!(copy.envelope().expect("envelope"), sent);
    assert_eq!(copy.receive_count, 1);
    queue.ack(&copy.receipt).await.expect("ack");
}
